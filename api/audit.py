"""Auditors over HTTP: the global log, its export, hash-chain verification, and as-of reads of
requests and payments (the ``as_of`` hooks of the request and payment routes)."""

from __future__ import annotations

import logging
from datetime import datetime

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.http import etag, json_response, parse_uuid, query_int
from api.problems import HttpProblem
from application.cloudevents import cursor_of, position_of
from application.history import History
from application.ports import AuditTrail, LogFilter
from domain.actors import Actor

AUDITORS = ("auditor", "admin")
MAX_PURPOSE = 200
access_log = logging.getLogger("onestop.privacy.access")


def plain_reads(request: web.Request, actor: Actor) -> bool:
    """``?plain=1`` with an ``X-Purpose`` header: personal fields in the clear, and the read
    logged (actor, purpose, what). Without ``plain`` they stay ciphertext with the subject
    reference."""
    raw = request.query.get("plain")
    if raw is None or raw in ("0", "false"):
        return False
    if raw not in ("1", "true"):
        raise HttpProblem(400, "Bad query parameter", "plain must be 1 or 0", [("plain", "must be 1, true, 0 or false")])
    purpose = request.headers.get("X-Purpose", "").strip()
    if not purpose or len(purpose) > MAX_PURPOSE:
        raise HttpProblem(400, "Purpose required", "reading personal data in the clear needs the purpose of the read in X-Purpose",
                          [("X-Purpose", f"must say why, in 1 to {MAX_PURPOSE} characters")])
    access_log.info("plain read of personal data by %s (%s): %s %s, purpose: %s",
                    actor.sub, actor.role, request.method, request.path_qs, purpose)
    return True


def query_time(request: web.Request, name: str) -> datetime | None:
    """An RFC 3339 time from the query string (with its offset), or None when absent."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace(" ", "+").replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise HttpProblem(400, "Bad query parameter", f"{name} must be an RFC 3339 time with an offset, such as 2026-05-01T09:30:00+07:00",
                          [(name, "must be an RFC 3339 date-time with an offset")])
    return value


def query_position(request: web.Request, name: str) -> int:
    """A cursor (a log position, as ``next_cursor`` and the feed's ``sequence`` give it)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return 0
    try:
        return position_of(raw)
    except ValueError:
        raise HttpProblem(400, "Bad cursor", f"{name} must be a cursor this API issued", [(name, "is not a valid cursor")]) from None


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
        plain = plain_reads(request, actor)
        items, next_position = await self.log.page(after, limit, log_filter, plain=plain)
        return json_response({"items": items, "next_cursor": None if next_position is None else cursor_of(next_position)})

    async def export(self, request: web.Request) -> web.StreamResponse:
        """The log (or a time range of it) as NDJSON, streamed."""
        actor = authenticate(request, *AUDITORS)
        log_filter = self._filter(request)
        plain = plain_reads(request, actor)
        response = web.StreamResponse(headers={
            "Content-Type": "application/x-ndjson",
            "Content-Disposition": 'attachment; filename="onestop-events.ndjson"',
        })
        await response.prepare(request)
        async for chunk in self.log.export(log_filter, plain=plain):
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
        _only_auditors(actor)
        as_of = query_time(request, "as_of")
        assert as_of is not None
        state = await self.history.request_as_of(request_id, as_of)
        if state is None:
            raise HttpProblem(404, "Not found", "the service request did not exist at that time")
        return json_response(state, headers={"ETag": etag(state["version"])})

    async def as_of_payment(self, request: web.Request) -> web.Response:
        """``GET /v1/payments/{id}?as_of=``: the payment as it was then."""
        _only_auditors(authenticate(request, "citizen", "officer", "auditor", "admin"))
        payment_id = parse_uuid(request.match_info["id"])
        as_of = query_time(request, "as_of")
        assert as_of is not None
        state = await self.history.payment_as_of(payment_id, as_of)
        if state is None:
            raise HttpProblem(404, "Not found", "the payment did not exist at that time")
        return json_response(state, headers={"ETag": etag(state["version"])})


def _only_auditors(actor: Actor) -> None:
    if actor.role not in AUDITORS:
        raise HttpProblem(403, "Forbidden", "only auditors and admins may read past states (as_of)")
