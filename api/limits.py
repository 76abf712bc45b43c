"""Abuse limits at the HTTP edge: rate limits per subject and per client address, a cap on
open live streams per subject, and a deadline for reading a request's body.

Rate limits are token buckets from ``aiolimiter``: an ``AsyncLimiter(burst, burst / rate)`` is a
leaky bucket of capacity ``burst`` that drains ``rate`` per second, which admits exactly what a
token bucket of ``burst`` tokens refilled at ``rate`` per second admits. It is maintained, has no
dependencies, lives in the event loop (no locks, no storage round trip) and its
``has_capacity()`` lets a request be refused at once instead of queued.

Bank notices (``/v1/payment-notifications/{provider}``) do not count against the address's
general bucket. They have a bucket of their own per (provider, address), larger by default: the
bank's own addresses keep their allowance whatever anyone else sends, and a flood of forged
notices from elsewhere only empties the forger's bucket. The check runs before the body is read,
so the signature cannot be known yet; verified notices are therefore not exempt.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Hashable

from aiohttp import web
from aiolimiter import AsyncLimiter

from api.auth import identify
from api.problems import HttpProblem, problem_response
from domain.actors import Actor

NOTICES_PREFIX = "/v1/payment-notifications/"
LIVE_STREAM_PATH = "/v1/streams/events/live"
STREAM_RETRY_AFTER_SECONDS = 5
# The request key under which a live stream opened without a bearer token finds how to claim
# its place among its subject's open streams (a callable taking the subject).
STREAM_CLAIM = web.RequestKey("onestop.stream_claim", Callable[[str], None])


@dataclass(frozen=True)
class LimitSettings:
    """What the edge allows. Read once, in the composition root."""

    enabled: bool = True
    subject_per_second: float = 20.0
    subject_burst: int = 40
    ip_per_second: float = 50.0
    ip_burst: int = 100
    notice_per_second: float = 200.0
    notice_burst: int = 1000
    sse_max_streams_per_subject: int = 5
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0

    def handler_args(self) -> dict[str, Any]:
        """Arguments for aiohttp's connection handler. aiohttp has no header timeout, but its
        keep-alive timer runs from the moment a connection opens (and again after each response)
        and closes the connection if no complete request head has arrived by then: set to the
        header timeout, it drops a client that sends its headers too slowly. The price is that an
        idle keep-alive connection is also closed after this long; clients open a new one."""
        return {"keepalive_timeout": self.header_timeout_seconds}


class TokenBuckets:
    """One token bucket per key (a subject, an address), made on first use. Full buckets of
    keys not seen for a while are dropped when there are too many keys."""

    def __init__(self, per_second: float, burst: int, max_keys: int = 100_000) -> None:
        self.per_second = per_second
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[Hashable, AsyncLimiter] = {}
        # When the bucket is empty the next token comes within 1/rate seconds.
        self.retry_after = max(1, math.ceil(1 / per_second))

    async def take(self, key: Hashable) -> int | None:
        """Take a token for ``key``: None when there was one, else the seconds to wait."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune()
            bucket = self._buckets[key] = AsyncLimiter(self.burst, self.burst / self.per_second)
        if not bucket.has_capacity():
            return self.retry_after
        await bucket.acquire()  # does not wait: there is capacity, and nothing ran in between
        return None

    def _prune(self) -> None:
        # A bucket with its whole burst available holds no state worth keeping.
        for key in [key for key, bucket in self._buckets.items() if bucket.has_capacity(self.burst)]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # all busy: forget the oldest half
            for key in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[key]


class StreamSlots:
    """Open live streams per subject, at most ``limit`` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def take(self, subject: str) -> Callable[[], None]:
        """A place for one more stream of ``subject`` (429 when it has ``limit`` open); call
        what this returns when the stream ends."""
        count = self._open.get(subject, 0)
        if count >= self.limit:
            raise HttpProblem(429, "Too many requests", f"this subject already has {count} live streams open; close one first",
                              headers={"Retry-After": str(STREAM_RETRY_AFTER_SECONDS)})
        self._open[subject] = count + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._open.get(subject, 1) - 1
            if left > 0:
                self._open[subject] = left
            else:
                self._open.pop(subject, None)

        return release


class EdgeLimits:
    """The limits of one API process."""

    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self.subjects = TokenBuckets(settings.subject_per_second, settings.subject_burst)
        self.addresses = TokenBuckets(settings.ip_per_second, settings.ip_burst)
        self.notices = TokenBuckets(settings.notice_per_second, settings.notice_burst)
        self.streams = StreamSlots(settings.sse_max_streams_per_subject)

    async def _actor(self, request: web.Request) -> Actor | None:
        """The caller named by valid credentials, else None (the handler answers 401). They are
        checked once: ``identify`` keeps its answer on the request for ``authenticate``."""
        return (await identify(request)).actor

    async def admit(self, request: web.Request) -> tuple[int | None, Actor | None]:
        """(seconds to wait, or None when admitted; the caller when the token is valid)."""
        address = request.remote or "unknown"
        if request.path.startswith(NOTICES_PREFIX):
            return await self.notices.take((request.path[len(NOTICES_PREFIX):], address)), None
        wait = await self.addresses.take(address)
        if wait is not None:
            return wait, None
        actor = await self._actor(request)
        if actor is not None:
            return await self.subjects.take(actor.sub), actor
        return None, None


def too_many_requests(request: web.Request, retry_after: int, detail: str) -> web.Response:
    return problem_response(429, "Too many requests", detail, headers={"Retry-After": str(retry_after)}, instance=request.path)


def limits_middleware(limits: EdgeLimits) -> Callable[[web.Request, Any], Awaitable[web.StreamResponse]]:
    """Runs inside the problem middleware and before any handler: refuses a caller over its
    rate (429 with Retry-After) before the body is read, caps live streams per subject, and
    reads the body under a deadline so that a client sending it slowly is dropped."""
    settings = limits.settings

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        release: Callable[[], None] | None = None
        if settings.enabled:
            wait, actor = await limits.admit(request)
            if wait is not None:
                return too_many_requests(request, wait, f"too many requests; try again in {wait} s")
            if request.method == "GET" and request.path == LIVE_STREAM_PATH:
                if actor is not None:
                    release = limits.streams.take(actor.sub)
                else:
                    # A stream opened with a ticket: its subject is known once the handler has
                    # redeemed the ticket, and the handler claims the place then.
                    def claim(subject: str) -> None:
                        nonlocal release
                        release = limits.streams.take(subject)

                    request[STREAM_CLAIM] = claim
        try:
            # A handler marked ``streams_body`` (the tax-roll import) reads its body as a
            # stream, line by line under its own deadline, so it is not read here.
            if request.body_exists and not getattr(request.match_info.handler, "streams_body", False):
                if request.content.is_eof():
                    # The whole body has arrived already (a small one comes with the headers):
                    # nothing to wait for, so no deadline to set.
                    await request.read()
                else:
                    try:
                        # read() keeps the bytes: the handler's own read() gets them from memory.
                        async with asyncio.timeout(settings.body_timeout_seconds):
                            await request.read()
                    except TimeoutError:
                        return await _drop_slow_body(request, settings.body_timeout_seconds)
            return await handler(request)
        finally:
            if release is not None:
                release()

    return middleware


async def _drop_slow_body(request: web.Request, seconds: float) -> web.StreamResponse:
    """Answer 408 and close the connection now, rather than linger reading what is left."""
    response = problem_response(408, "Request timeout", f"the request body did not arrive within {seconds:g} s", instance=request.path)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.transport is not None:
        request.transport.close()
    return response


_RETRY_AFTER_HEADER = {"Retry-After": {"description": "whole seconds to wait before trying again", "schema": {"type": "integer", "minimum": 1}}}


def add_edge_responses(paths: dict[str, Any]) -> None:
    """Document what the edge may answer on any operation: 429 over a rate limit (and, on the
    live stream, over the cap on open streams), 400 for a malformed request or an oversize
    header, and 408 when a body arrives too slowly."""
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in paths.values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.setdefault("429", {"description": "too many requests; wait Retry-After seconds", "headers": _RETRY_AFTER_HEADER, "content": problem})
            responses.setdefault("400", {"description": "problem", "content": problem})
            if method in ("post", "put", "patch"):
                responses.setdefault("408", {"description": "the body did not arrive in time; the connection is closed", "content": problem})
