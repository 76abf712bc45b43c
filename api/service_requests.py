"""Service requests over HTTP: file, read, list, history and the officers' and applicants' actions."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.consistency import read_one, read_change, visible, written
from api.http import json_response, parse_uuid, read_idempotent, state_response
from api.privacy import disclose
from api.problems import HttpProblem
from application import disclosures
from application.access import FILERS, READERS, STAFF
from application.commands import ACTION_SCHEMAS, SubmitCommand
from api.pagination import keyset_page, time_and_id
from domain.actors import Actor
from domain.catalogue import SERVICES
from domain.service_request import STATUSES

routes = web.RouteTableDef()


def _channel(actor: Actor, request: web.Request) -> str:
    if actor.role in STAFF:
        return "counter"
    channel = request.headers.get("X-OneStop-Channel", "web")
    return channel if channel in ("web", "mobile") else "web"


@routes.post("/v1/service-requests")
async def submit(request: web.Request) -> web.Response:
    started = perf_counter()
    actor = authenticate(request, *FILERS)
    key, body, body_hash = await read_idempotent(request)
    command = SubmitCommand(body=body, actor=actor, request_hash=body_hash, idempotency_key=key)
    bus = request.app[CTX].bus
    read = perf_counter()
    outcome = await bus.submit(command)
    answered = perf_counter()
    headers = {"Location": f"/v1/service-requests/{outcome.state['id']}"}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    response = written(outcome.state, status=201, headers=headers)
    profile = getattr(bus, "profile", None)
    if profile is not None:
        profile.submits += 1
        profile.read_seconds += read - started
        profile.respond_seconds += perf_counter() - answered
    return response


@routes.get("/v1/service-requests/{id}")
async def get_request(request: web.Request) -> web.Response:
    actor = authenticate(request, *READERS)
    request_id = parse_uuid(request.match_info["id"])
    if "as_of" in request.query:
        return await _as_of(request, actor, request_id)
    found = await read_one(request, "request", request_id)
    state = visible(found, actor, "service request")
    disclose(request, actor, disclosures.REQUEST, request_id, [found[1]["applicant_national_id"]])  # type: ignore[index]
    return state_response(state)


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
    return await keyset_page(request, lambda limit, after: request.app[CTX].read_model.list_requests(filters, scope, limit, after),
                             time_and_id("submitted_at", "id"), default=20, most=100,
                             on_items=lambda items: disclose(request, actor, disclosures.REQUEST_LIST, None,
                                                             [(item.get("applicant") or {}).get("national_id") for item in items]))


@routes.get("/v1/service-requests/{id}/events")
async def request_events(request: web.Request) -> web.Response:
    actor = authenticate(request, *READERS)
    request_id = parse_uuid(request.match_info["id"])
    found = await request.app[CTX].read_model.request_history(request_id)
    events = visible(found, actor, "service request")
    disclose(request, actor, disclosures.REQUEST_EVENTS, request_id, [found[1]["applicant_national_id"]])  # type: ignore[index]
    return json_response({"items": events})


# Any name but "events" (a GET path of its own): a POST there is 405 with Allow: GET, and an
# unknown action is a 404 naming it.
@routes.post("/v1/service-requests/{id}/{action:(?!events$)[^{}/]+}")
async def act(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in ACTION_SCHEMAS:
        raise HttpProblem(404, "Unknown action", f"there is no action {action!r}", [("action", "must be one of " + ", ".join(ACTION_SCHEMAS))])
    actor, request_id, version, body = await read_change(request, FILERS, empty={})
    ctx = request.app[CTX]
    outcome = await ctx.bus.call(ctx.app.act, request_id, action, body, actor, _channel(actor, request), version)
    return written(outcome.state)
