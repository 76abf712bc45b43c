"""Read-your-writes over HTTP: ``?min_position=`` on reads, the ``OneStop-Position`` header on
writes, and single reads that fall back to the event store when the views are behind."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable
from uuid import UUID

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.http import if_match, parse_position, parse_uuid, read_json, state_response
from api.problems import HttpProblem
from application.access import check_can_see
from domain.actors import Actor

POSITION_HEADER = "OneStop-Position"
MAX_WAIT_SECONDS = 5.0


def min_position(request: web.Request) -> int | None:
    raw = request.query.get("min_position")
    return None if raw is None else parse_position(raw, "min_position")


async def _check_not_ahead_of_the_log(request: web.Request, wanted: int) -> None:
    """A position the log has not reached was never answered for a write: 400, not a wait."""
    if wanted > await request.app[CTX].read_model.log_position():
        raise HttpProblem(400, "Bad query parameter", f"min_position {wanted} is beyond the end of the log",
                          [("min_position", "must be a position this API answered with")])


async def wait_for_views(request: web.Request) -> None:
    """Wait (bounded) until the views reached ``?min_position=``; 503 when they do not in time."""
    wanted = min_position(request)
    if wanted is None:
        return
    await _check_not_ahead_of_the_log(request, wanted)
    if not await request.app[CTX].read_model.wait_for_position(wanted, MAX_WAIT_SECONDS):
        raise HttpProblem(503, "Views behind", f"the views have not reached position {wanted} yet; retry shortly", headers={"Retry-After": "1"})


async def wait_for_follower(request: web.Request, position: Callable[[], Awaitable[int]], what: str) -> None:
    """Wait (bounded, as lists wait for the views) until a follower with its own position (the
    allowance register) reached ``?min_position=``; 503 when it does not in time."""
    wanted = min_position(request)
    if wanted is None:
        return
    await _check_not_ahead_of_the_log(request, wanted)
    deadline = time.monotonic() + MAX_WAIT_SECONDS
    while await position() < wanted:
        if time.monotonic() > deadline:
            raise HttpProblem(503, "Views behind", f"the {what} has not reached position {wanted} yet; retry shortly",
                              headers={"Retry-After": "1"})
        await asyncio.sleep(0.05)


async def read_one(request: web.Request, kind: str, aggregate_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """One request or payment (``kind``): from the views when they have it and have reached
    ``?min_position=`` (waited for as lists wait), else from the event store, so never older
    than a write the caller was answered for and never 503. None only when the aggregate does
    not exist at all."""
    ctx = request.app[CTX]
    wanted = min_position(request)
    if wanted is not None:
        await _check_not_ahead_of_the_log(request, wanted)
    found = None
    if wanted is None or await ctx.read_model.wait_for_position(wanted, MAX_WAIT_SECONDS):
        found = await (ctx.read_model.get_request if kind == "request" else ctx.read_model.get_payment)(aggregate_id)
    if found is None and ctx.current is not None:
        found = await (ctx.current.request if kind == "request" else ctx.current.payment)(aggregate_id)
    return found


_NOUNS = {"request": "service request", "payment": "payment"}


def visible(found: tuple[Any, dict[str, Any]] | None, actor: Actor, noun: str) -> Any:
    """The document of ``found`` (a document and its access facts), or 404 when there is none;
    404 too when ``actor`` may not see it, so that its existence does not leak."""
    if found is None:
        raise HttpProblem(404, "Not found", f"no such {noun}")
    document, access = found
    check_can_see(actor, access)
    return document


async def read_visible(request: web.Request, actor: Actor, kind: str, aggregate_id: str) -> dict[str, Any]:
    """One request or payment (``kind``) as ``read_one`` finds it, if ``actor`` may see it."""
    return visible(await read_one(request, kind, aggregate_id), actor, _NOUNS[kind])


def position_headers(state: dict[str, Any]) -> dict[str, str]:
    """``OneStop-Position`` of a write's response: the log position of its last event."""
    position = state.get("position")
    return {POSITION_HEADER: str(position)} if isinstance(position, int) else {}


async def read_change(request: web.Request, roles: tuple[str, ...], *, empty: Any = None) -> tuple[Actor, UUID, int | None, Any]:
    """What a call that changes one request or payment sends: the caller (one of ``roles``), the
    id in the path, the ``If-Match`` version, and the JSON body (``empty`` when there is none)."""
    actor = authenticate(request, *roles)
    aggregate_id = UUID(parse_uuid(request.match_info["id"]))
    version = if_match(request)
    return actor, aggregate_id, version, await read_json(request, empty=empty)


def written(state: dict[str, Any], *, body: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A write's response: the state (or ``body``), its ETag and its log position (``OneStop-Position``)."""
    return state_response(state, body=body, status=status, headers={**position_headers(state), **(headers or {})})
