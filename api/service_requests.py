"""Service requests over HTTP: file, read, list, history and the officers' and applicants' actions."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.http import decode_cursor, encode_cursor, etag, if_match, json_response, parse_uuid, query_int, read_json
from api.problems import HttpProblem
from application.access import check_can_see
from application.commands import ACTION_SCHEMAS, SubmitCommand, request_hash
from domain.actors import Actor
from domain.catalogue import SERVICES
from domain.service_request import STATUSES

routes = web.RouteTableDef()
READERS = ("citizen", "officer", "auditor", "admin")
MAX_WAIT_SECONDS = 5.0


def _channel(actor: Actor, request: web.Request) -> str:
    if actor.role in ("officer", "admin"):
        return "counter"
    channel = request.headers.get("X-OneStop-Channel", "web")
    return channel if channel in ("web", "mobile") else "web"


def _state_response(state: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(state, status=status, headers={"ETag": etag(state["version"]), **(headers or {})})


@routes.post("/v1/service-requests")
async def submit(request: web.Request) -> web.Response:
    actor = authenticate(request, "citizen", "officer", "admin")
    key = request.headers.get("Idempotency-Key")
    if not key or len(key) > 255 or not key.isprintable():
        raise HttpProblem(400, "Idempotency-Key required", "send an Idempotency-Key header (1 to 255 printable characters) with every submission", [("Idempotency-Key", "is required")])
    body = await read_json(request)
    command = SubmitCommand(body=body, actor=actor, request_hash=request_hash(body), idempotency_key=key)
    outcome = await request.app[CTX].bus.submit(command)
    headers = {"Location": f"/v1/service-requests/{outcome.state['id']}"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _state_response(outcome.state, 201, headers)


async def _wait_for_views(request: web.Request) -> None:
    raw = request.query.get("min_position")
    if raw is None:
        return
    if not raw.isdigit():
        raise HttpProblem(400, "Bad query parameter", "min_position must be a log position", [("min_position", "must be a non-negative integer")])
    reached = await request.app[CTX].read_model.wait_for_position(int(raw), MAX_WAIT_SECONDS)
    if not reached:
        raise HttpProblem(503, "Views behind", f"the views have not reached position {raw} yet; retry shortly", headers={"Retry-After": "1"})


@routes.get("/v1/service-requests/{id}")
async def get_request(request: web.Request) -> web.Response:
    actor = authenticate(request, *READERS)
    request_id = parse_uuid(request.match_info["id"])
    if "as_of" in request.query:
        return await _as_of(request, actor, request_id)
    await _wait_for_views(request)
    found = await request.app[CTX].read_model.get_request(request_id)
    if found is None:
        raise HttpProblem(404, "Not found", "no such service request")
    state, access = found
    check_can_see(actor, access)
    return _state_response(state)


async def _as_of(request: web.Request, actor: Actor, request_id: str) -> web.Response:
    as_of_handler = request.app[CTX].as_of_request
    if as_of_handler is None:
        raise HttpProblem(400, "Not supported", "as_of is not available", [("as_of", "is not supported")])
    return await as_of_handler(request, actor, request_id)


@routes.get("/v1/service-requests")
async def list_requests(request: web.Request) -> web.Response:
    actor = authenticate(request, *READERS)
    filters: dict[str, Any] = {}
    allowed = {"status": STATUSES, "service": tuple(SERVICES)}
    for name in ("status", "service", "organization", "filed_at", "applicant"):
        value = request.query.get(name)
        if value is None:
            continue
        if name in allowed and value not in allowed[name]:
            raise HttpProblem(400, "Bad query parameter", f"unknown {name} {value!r}", [(name, "must be one of " + ", ".join(allowed[name]))])
        filters[name] = value
    blind_index = request.app[CTX].blind_index
    if "applicant" in filters:
        filters["applicant_index"] = blind_index(filters.pop("applicant"))
    scope: dict[str, Any] = {}
    if actor.role == "citizen":
        # A citizen without a national ID (pid) has no requests to list.
        scope["applicant_index"] = blind_index(actor.pid) if actor.pid else ""
    elif actor.role == "officer":
        scope["org"] = actor.org
    limit = query_int(request, "limit", 20, 1, 100)
    after = decode_cursor(request.query.get("cursor"), 2)
    await _wait_for_views(request)
    items = await request.app[CTX].read_model.list_requests(filters, scope, limit + 1, after)
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        next_cursor = encode_cursor([last["submitted_at"].isoformat(), last["id"]])
    return json_response({"items": items, "next_cursor": next_cursor})


@routes.get("/v1/service-requests/{id}/events")
async def request_events(request: web.Request) -> web.Response:
    actor = authenticate(request, *READERS)
    found = await request.app[CTX].read_model.request_history(parse_uuid(request.match_info["id"]))
    if found is None:
        raise HttpProblem(404, "Not found", "no such service request")
    events, access = found
    check_can_see(actor, access)
    return json_response({"items": events})


@routes.post("/v1/service-requests/{id}/{action}")
async def act(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in ACTION_SCHEMAS:
        raise HttpProblem(404, "Unknown action", f"there is no action {action!r}", [("action", "must be one of " + ", ".join(ACTION_SCHEMAS))])
    actor = authenticate(request, "citizen", "officer", "admin")
    request_id = UUID(parse_uuid(request.match_info["id"]))
    version = if_match(request)
    body = await read_json(request, empty={})
    ctx = request.app[CTX]
    outcome = await ctx.bus.call(ctx.app.act, request_id, action, body, actor, _channel(actor, request), version)
    return _state_response(outcome.state)
