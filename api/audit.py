"""Auditors over HTTP: the global log, its export, hash-chain verification, and as-of reads of
requests and payments (the ``as_of`` hooks of the request and payment routes)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Awaitable, Callable

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.http import json_response, parse_uuid, query_int, query_position, query_time, next_link, state_response
from api.privacy import disclose, disclose_events, purpose
from api.problems import HttpProblem
from application import disclosures
from application.access import AUDITORS, READERS
from application.cloudevents import cursor_of
from application.history import History
from application.ports import AuditTrail, LogFilter
from domain.actors import Actor

access_log = logging.getLogger("onestop.privacy.access")



def plain_reads(request: web.Request, actor: Actor) -> str | None:
    """``?plain=1`` needs an ``X-Purpose`` header: personal fields in the clear, and the read
    recorded in the access log with that purpose. Without ``plain`` they stay ciphertext with
    the subject reference. Returns the purpose of a plain read, or None."""
    raw = request.query.get("plain")
    if raw is None or raw in ("0", "false"):
        return None
    if raw not in ("1", "true"):
        raise HttpProblem(400, "Bad query parameter", "plain must be 1 or 0", [("plain", "must be 1, true, 0 or false")])
    reason = purpose(request)
    if not reason:
        raise HttpProblem(400, "Purpose required", "reading personal data in the clear needs the purpose of the read in X-Purpose",
                          [("X-Purpose", "must say why, in 1 to 200 characters")])
    access_log.info("plain read of personal data by %s (%s): %s %s, purpose: %s",
                    actor.sub, actor.role, request.method, request.path_qs, reason)
    return reason


class AuditApi:
    def __init__(self, log: AuditTrail, history: History, known_topics: dict[str, str]) -> None:
        self.log = log
        self.history = history
        # "ServiceRequest.Submitted" -> "onestop:ServiceRequest.Submitted"
        self.known_topics = known_topics

    def routes(self) -> web.RouteTableDef:
        routes = web.RouteTableDef()
        routes.get("/v1/audit/events")(self.events)
        routes.get("/v1/audit/export")(self.export)
        routes.get("/v1/audit/verify")(self.verify)
        return routes

    def _filter(self, request: web.Request, *, with_types: bool = True) -> LogFilter:
        topics = None
        if with_types and request.query.get("type"):
            names = [t.strip() for t in request.query["type"].split(",") if t.strip()]
            unknown = [n for n in names if n not in self.known_topics]
            if unknown:
                raise HttpProblem(400, "Bad query parameter", f"unknown event type {unknown[0]!r}",
                                  [("type", "must be event types such as ServiceRequest.Submitted, comma-separated")])
            topics = [self.known_topics[n] for n in names]
        organization = request.query.get("organization") or None
        if organization is not None and organization not in request.app[CTX].app.directory:
            raise HttpProblem(400, "Bad query parameter", f"unknown organisation {organization!r}", [("organization", "is not a known organisation")])
        since, until = query_time(request, "from"), query_time(request, "to")
        if since is not None and until is not None and since > until:
            raise HttpProblem(400, "Bad query parameter", "from must not be after to", [("from", "is after to")])
        return LogFilter(topics=topics, organization=organization, since=since, until=until)

    async def events(self, request: web.Request) -> web.Response:
        """The global, ordered log: every event, as stored, in position order."""
        actor = authenticate(request, *AUDITORS)
        log_filter = self._filter(request)
        after = query_position(request, "after")
        limit = query_int(request, "limit", 100, 1, 1000)
        reason = purpose(request)
        plain = plain_reads(request, actor) is not None
        items, next_position = await self.log.page(after, limit, log_filter, plain=plain)
        await disclose_events(request, actor, disclosures.AUDIT_EVENTS, None, items, reason)
        next_cursor = None if next_position is None else cursor_of(next_position)
        return json_response({"items": items, "next_cursor": next_cursor}, headers=next_link(request, next_cursor, "after"))

    async def export(self, request: web.Request) -> web.StreamResponse:
        """The log (or a time range of it) as NDJSON, streamed."""
        actor = authenticate(request, *AUDITORS)
        log_filter = self._filter(request)
        # Parsed before the answer starts: a bad header must still get its 400.
        reason = purpose(request)
        plain = plain_reads(request, actor) is not None

        async def observe(events: list[dict]) -> None:
            await disclose_events(request, actor, disclosures.AUDIT_EXPORT, None, events, reason)

        response = web.StreamResponse(headers={
            "Content-Type": "application/x-ndjson",
            "Content-Disposition": 'attachment; filename="onestop-events.ndjson"',
        })
        await response.prepare(request)
        async for chunk in self.log.export(log_filter, observe, plain=plain):
            # Each write waits for the client when the transport's buffer is full.
            await response.write(chunk)
        await response.write_eof()
        return response

    async def verify(self, request: web.Request) -> web.Response:
        """Recompute the hash chain from the log and compare."""
        authenticate(request, *AUDITORS)
        return json_response(await self.log.verify())

    async def as_of_request(self, request: web.Request, actor: Actor, request_id: str) -> web.Response:
        """``GET /v1/service-requests/{id}?as_of=``: the request as it was then."""
        return await _as_of(request, actor, self.history.request_as_of, request_id, "service request",
                            on_state=lambda state: disclose(request, actor, disclosures.REQUEST_AS_OF, request_id,
                                                            [(state.get("applicant") or {}).get("national_id")]))

    async def as_of_payment(self, request: web.Request) -> web.Response:
        """``GET /v1/payments/{id}?as_of=``: the payment as it was then."""
        actor = authenticate(request, *READERS)
        return await _as_of(request, actor, self.history.payment_as_of, parse_uuid(request.match_info["id"]), "payment")


async def _as_of(request: web.Request, actor: Actor, read: Callable[[str, datetime], Awaitable[dict[str, Any] | None]],
                 aggregate_id: str, noun: str, on_state: Callable[[dict[str, Any]], None] | None = None) -> web.Response:
    """The aggregate's state at ``?as_of=``, for auditors and admins only."""
    if actor.role not in AUDITORS:
        raise HttpProblem(403, "Forbidden", "only auditors and admins may read past states (as_of)")
    as_of = query_time(request, "as_of")
    assert as_of is not None
    state = await read(aggregate_id, as_of)
    if state is None:
        raise HttpProblem(404, "Not found", f"the {noun} did not exist at that time")
    if on_state is not None:
        on_state(state)  # e.g. the access log of who read a person's data
    return state_response(state)
