"""Personal data over HTTP: a citizen's own data (`/v1/me/data`), a data subject's export and
access log for the DPO, and the recording of staff reads (`disclose`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.consistency import wait_for_views
from api.encoding import dumps
from api.http import json_response, next_link, query_int, query_position, shown
from api.problems import HttpProblem
from application.disclosures import SUBJECT_EXPORT, purpose_problem
from application.errors import AccessLogUnavailable
from domain.actors import Actor
from domain.national_id import is_valid_national_id

routes = web.RouteTableDef()
DPO = ("dpo", "admin")
PURPOSE_HEADER = "X-Purpose"
_CHUNK = 64 * 1024


def purpose(request: web.Request) -> str | None:
    """The optional ``X-Purpose`` header, as text (UTF-8, or Latin-1 when it is not UTF-8);
    400 naming the header when it is over 200 characters or holds a control character."""
    raw = request.headers.get(PURPOSE_HEADER)
    if raw is None:
        return None
    data = raw.encode("utf-8", "surrogateescape")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    text = text.strip()
    problem = purpose_problem(text)
    if problem is not None:
        raise HttpProblem(400, "Bad header", f"{PURPOSE_HEADER} {problem}", [(PURPOSE_HEADER, problem)])
    return text or None


def _unavailable(error: AccessLogUnavailable) -> HttpProblem:
    return HttpProblem(503, "Access log unavailable", str(error), headers={"Retry-After": "5"})


def disclose(request: web.Request, actor: Actor, what: str, resource: str | None, national_ids: list[str | None]) -> None:
    """Record that ``actor`` read these people's data (nothing for a citizen's own reads)."""
    disclosures = request.app[CTX].disclosures
    if disclosures is None or not disclosures.recorded(actor):
        return
    try:
        disclosures.note(actor, what, resource, national_ids, purpose(request))
    except AccessLogUnavailable as error:
        raise _unavailable(error) from None


async def disclose_events(request: web.Request, actor: Actor, what: str, resource: str | None, events: list[dict[str, Any]],
                          reason: str | None) -> None:
    """Record a read of stored events: one row per person they belong to."""
    disclosures = request.app[CTX].disclosures
    if disclosures is None:
        return
    try:
        await disclosures.note_events(actor, what, resource, events, reason)
    except AccessLogUnavailable as error:
        raise _unavailable(error) from None


def _national_id(request: web.Request) -> str:
    value = request.match_info["national_id"]
    if not is_valid_national_id(value):
        raise HttpProblem(400, "Bad national ID", f"{shown(value)!r} is not a Thai national ID (13 digits with a valid check digit)",
                          [("national_id", "must be 13 digits with a valid check digit")])
    return value


async def _stream_subject(request: web.Request, national_id: str, filename: str) -> web.StreamResponse:
    """Everything held about the person, as one JSON object written section by section."""
    sources = request.app[CTX].subject_sources
    response = web.StreamResponse(headers={
        "Content-Type": "application/json",
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    })
    await response.prepare(request)
    head = {"national_id": national_id, "generated_at": datetime.now(UTC), "sections": [s.name for s in sources]}
    buffer = bytearray(dumps(head)[:-1])
    for source in sources:
        buffer += b',"' + source.name.encode() + b'":['
        first = True
        async for record in source.records(national_id):
            if not first:
                buffer += b","
            first = False
            buffer += dumps(record)
            if len(buffer) >= _CHUNK:
                # Each write waits for the client when the transport's buffer is full.
                await response.write(bytes(buffer))
                buffer.clear()
        buffer += b"]"
    buffer += b"}"
    await response.write(bytes(buffer))
    await response.write_eof()
    return response


@routes.get("/v1/me/data")
async def my_data(request: web.Request) -> web.StreamResponse:
    """The caller's own data (a citizen, from the token's national ID), streamed as JSON."""
    actor = authenticate(request, "citizen")
    if not actor.pid:
        raise HttpProblem(403, "Forbidden", "the token names no national ID")
    await wait_for_views(request)
    return await _stream_subject(request, actor.pid, "onestop-my-data.json")


@routes.get("/v1/data-subjects/{national_id}/export")
async def export_subject(request: web.Request) -> web.StreamResponse:
    """Everything held about one person, for the DPO (access and portability requests)."""
    actor = authenticate(request, *DPO)
    national_id = _national_id(request)
    disclose(request, actor, SUBJECT_EXPORT, None, [national_id])
    await wait_for_views(request)
    return await _stream_subject(request, national_id, "onestop-data-subject.json")


@routes.get("/v1/data-subjects/{national_id}/access-log")
async def access_log(request: web.Request) -> web.Response:
    """Who read the person's data, oldest first, with cursor paging (the DPO)."""
    authenticate(request, *DPO)
    national_id = _national_id(request)
    ctx = request.app[CTX]
    after = query_position(request, "after")
    limit = query_int(request, "limit", 100, 1, 1000)
    # Reads answered just before are in the buffer: write them first, so the answer has them.
    await ctx.access_log.flush()
    items, next_id = await ctx.access_log.page(ctx.disclosures.index.reference(national_id), after, limit)
    next_cursor = None if next_id is None else str(next_id)
    return json_response({"items": items, "next_cursor": next_cursor}, headers=next_link(request, next_cursor, "after"))
