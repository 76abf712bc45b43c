"""Integrators over HTTP: the catch-up feed and the live stream (Server-Sent Events) of
CloudEvents, in log order, each carrying its cursor in the ``sequence`` attribute.

Both read the published feed (see infrastructure.integrations.event_feed), whose rows are the encoded
CloudEvents: a page is the rows' bytes joined, with no decoding or encoding per event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.http import parse_position, query_int, query_position, json_response, next_link
from api.limits import STREAM_CLAIM
from api.problems import HttpProblem
from application.access import INTEGRATORS
from application.cloudevents import PUBLISHED_TYPES, cursor_of
from application.ports import EventFeed, StreamTickets
from domain.actors import Actor

MAX_PAGE = 5000


@dataclass(frozen=True)
class StreamSettings:
    """How the live stream behaves. Read once, in the composition root."""

    heartbeat_seconds: float = 15.0
    batch_size: int = 500
    # A lost notification delays a stream by at most this long.
    poll_seconds: float = 1.0
    # How long a ticket for the live stream may wait to be redeemed.
    ticket_ttl_seconds: float = 60.0


class StreamsApi:
    def __init__(self, feed: EventFeed, settings: StreamSettings, tickets: StreamTickets | None = None) -> None:
        self.feed = feed
        self.settings = settings
        self.tickets = tickets
        self._closing = False

    def routes(self) -> web.RouteTableDef:
        routes = web.RouteTableDef()
        routes.get("/v1/streams/events")(self.events)
        routes.get("/v1/streams/events/live")(self.live)
        if self.tickets is not None:
            routes.post("/v1/streams/tickets")(self.issue_ticket)
        return routes

    async def issue_ticket(self, request: web.Request) -> web.Response:
        """``POST /v1/streams/tickets``: a short-lived, single-use ticket that opens the live
        stream as the caller (``?ticket=``), for a browser's ``EventSource``, which cannot send
        an Authorization header. No Idempotency-Key: a replayed answer would hand out a secret
        again; a client that lost the answer asks for another ticket."""
        actor = authenticate(request, *INTEGRATORS)
        assert self.tickets is not None
        ticket, expires_at = await self.tickets.issue(actor, self.settings.ticket_ttl_seconds)
        return json_response({"ticket": ticket, "expires_at": expires_at}, status=201,
                             headers={"Cache-Control": "no-store", "Location": "/v1/streams/events/live?ticket=" + ticket})

    async def _stream_caller(self, request: web.Request) -> Actor:
        """The caller of the live stream: the ticket's, when ``?ticket=`` is given, else the
        bearer token's."""
        if "ticket" not in request.query:
            return authenticate(request, *INTEGRATORS)
        actor = await self.tickets.redeem(request.query["ticket"]) if self.tickets is not None else None
        if actor is None:
            raise HttpProblem(401, "Unauthorized", "the stream ticket is unknown, expired or already used; ask POST /v1/streams/tickets for another",
                              [("ticket", "is not a valid ticket")], headers={"WWW-Authenticate": 'Bearer error="invalid_token", realm="onestop"'})
        if actor.role not in INTEGRATORS:
            raise HttpProblem(403, "Forbidden", f"the {actor.role} role may not do this")
        claim = request.get(STREAM_CLAIM)
        if claim is not None:
            claim(actor.sub)
        return actor

    async def shutdown(self, _app: web.Application) -> None:
        """Let open streams end, so the server does not wait for them."""
        self._closing = True

    def _filters(self, request: web.Request, actor: Actor) -> tuple[list[str] | None, str | None]:
        types = None
        if request.query.get("types"):
            types = [t.strip() for t in request.query["types"].split(",") if t.strip()]
            unknown = [t for t in types if t not in PUBLISHED_TYPES]
            if unknown:
                raise HttpProblem(400, "Bad query parameter", f"unknown event type {unknown[0]!r}",
                                  [("types", "must be CloudEvents types such as th.onestop.service-request.submitted.v1, comma-separated")])
        organization = request.query.get("organization") or None
        if organization is not None and organization not in request.app[CTX].app.directory:
            raise HttpProblem(400, "Bad query parameter", f"unknown organisation {organization!r}", [("organization", "is not a known organisation")])
        if actor.role == "integrator" and actor.org:
            # An integrator of one organisation sees that organisation's events only.
            if organization not in (None, actor.org):
                raise HttpProblem(403, "Forbidden", f"this token sees the events of {actor.org} only")
            organization = actor.org
        return types, organization

    async def events(self, request: web.Request) -> web.Response:
        """``GET /v1/streams/events``: a page of the catch-up feed."""
        actor = authenticate(request, *INTEGRATORS)
        types, organization = self._filters(request, actor)
        after = query_position(request, "after")
        limit = query_int(request, "limit", 100, 1, MAX_PAGE)
        page = await self.feed.page(after, limit, types=types, organization=organization)
        next_cursor = cursor_of(page.next_position)
        body = b'{"items":[' + b",".join(event for _, event in page.items) + b'],"next_cursor":"' + next_cursor.encode() + b'"}'
        # The next page's address in a header too, so a client can ask for it before it has
        # decoded this one (RFC 8288).
        return web.Response(body=body, content_type="application/json", headers=next_link(request, next_cursor, "after"))

    async def live(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/streams/events/live``: Server-Sent Events from ``Last-Event-ID`` (or
        ``?after=``), with comment heartbeats. Each client reads the feed at its own cursor in
        bounded batches and each write waits for the client, so a slow client holds at most one
        batch in this server's memory. ``?ticket=`` stands for the Authorization header."""
        actor = await self._stream_caller(request)
        types, organization = self._filters(request, actor)
        last_id = request.headers.get("Last-Event-ID")
        if last_id is not None and last_id.strip():
            position = parse_position(last_id, "Last-Event-ID")
        else:
            position = query_position(request, "after")
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # proxies must not hold events back
        })
        await response.prepare(request)
        heartbeat = self.settings.heartbeat_seconds
        try:
            await response.write(b"retry: 2000\n: connected\n\n")
            last_write = time.monotonic()
            while not self._closing and request.transport is not None and not request.transport.is_closing():
                waiter = self.feed.waiter()
                page = await self.feed.page(position, self.settings.batch_size, types=types, organization=organization)
                if page.items:
                    await response.write(b"".join(
                        b"id: " + cursor_of(p).encode() + b"\ndata: " + body + b"\n\n" for p, body in page.items
                    ))
                    last_write = time.monotonic()
                position = page.next_position
                if len(page.items) == self.settings.batch_size:
                    continue
                idle = time.monotonic() - last_write
                if idle >= heartbeat:
                    await response.write(b": heartbeat\n\n")
                    last_write = time.monotonic()
                    continue
                await self.feed.wait(waiter, min(self.settings.poll_seconds, heartbeat - idle))
        except ConnectionResetError:
            pass  # the client went away; it resumes with Last-Event-ID
        return response
