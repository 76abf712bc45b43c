"""Fault injection, idempotency and statistics shared by the outside-system simulators.

Every non-admin route goes through one middleware that may refuse the call (outage, injected
error) or apply it and answer too late (injected timeout). Effects are recorded per kind and per
idempotency key, so that tests can check that a retried call had exactly one effect.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson
from aiohttp import web
from simulators.errors import InvalidSimulatorSetting, SimulatorError

PROBLEM_BASE = "https://onestop.invalid/problems/simulator/"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
MAX_LATENCY_MS = 600_000
MAX_TIMEOUT_SECONDS = 3_600.0


@dataclass(frozen=True)
class Faults:
    """How a simulator misbehaves: added latency, injected errors and timeouts, or an outage."""

    latency_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    outage: bool = False

    def __post_init__(self) -> None:
        _check_faults(asdict(self))

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """Return a copy with ``changes`` applied; ValueError on an unknown field or bad value."""
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise InvalidSimulatorSetting(f"unknown fault fields: {', '.join(sorted(unknown))}")
        _check_faults(dict(changes))
        values = dict(changes)
        for name in ("error_rate", "timeout_rate", "timeout_seconds"):
            if name in values:
                values[name] = float(values[name])
        return replace(self, **values)

    def as_dict(self) -> dict[str, Any]:
        """The faults as JSON-ready data."""
        return asdict(self)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_faults(values: Mapping[str, Any]) -> None:
    if "latency_ms" in values:
        v = values["latency_ms"]
        if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_LATENCY_MS):
            raise InvalidSimulatorSetting(f"latency_ms must be an integer from 0 to {MAX_LATENCY_MS}")
    for name in ("error_rate", "timeout_rate"):
        if name in values:
            v = values[name]
            if not (_is_number(v) and 0.0 <= v <= 1.0):
                raise InvalidSimulatorSetting(f"{name} must be a number from 0 to 1")
    if "timeout_seconds" in values:
        v = values["timeout_seconds"]
        if not (_is_number(v) and 0.0 < v <= MAX_TIMEOUT_SECONDS):
            raise InvalidSimulatorSetting(f"timeout_seconds must be a number above 0 and at most {MAX_TIMEOUT_SECONDS:g}")
    if "outage" in values and not isinstance(values["outage"], bool):
        raise InvalidSimulatorSetting("outage must be true or false")


class ProblemError(SimulatorError):
    """An RFC 9457 problem to answer with; raise it from a handler or an effect."""

    def __init__(self, status: int, title: str, detail: str, *, slug: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.slug = slug or title.lower().replace(" ", "-")

    def response(self) -> web.Response:
        """The problem as an ``application/problem+json`` response."""
        return problem_response(self.status, self.title, self.detail, slug=self.slug)


def problem_response(status: int, title: str, detail: str, *, slug: str | None = None) -> web.Response:
    """An ``application/problem+json`` response with type, title, status and detail."""
    body = {
        "type": PROBLEM_BASE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    return web.Response(status=status, body=orjson.dumps(body), content_type=PROBLEM_JSON)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """A JSON response serialised with orjson."""
    return web.Response(status=status, body=orjson.dumps(data), content_type=JSON)


def bad_request(detail: str) -> ProblemError:
    """A 400 problem for a malformed request."""
    return ProblemError(400, "Bad request", detail, slug="bad-request")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; a 400 problem otherwise."""
    raw = await request.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise bad_request("body must be a JSON object")
    return data


@dataclass(frozen=True)
class StoredResponse:
    """The first answer given for an idempotency key, replayed for every repeat."""

    status: int
    body: bytes
    content_type: str

    def response(self) -> web.Response:
        resp = web.Response(status=self.status, body=self.body, content_type=self.content_type)
        resp.headers["Idempotent-Replayed"] = "true"
        return resp


class Simulator:
    """State shared by one simulator app: faults, random source, idempotency store, statistics."""

    def __init__(self, *, name: str, seed: int = 42, faults: Faults | None = None) -> None:
        self.name = name
        self.faults = faults or Faults()
        self.rng = random.Random(seed)
        self._stored: dict[tuple[str, str], StoredResponse] = {}
        self._auto_keys = 0
        self._stats_sources: list[Callable[[], Mapping[str, Any]]] = []
        self._reset_hooks: list[Callable[[], None]] = []
        self.reset_stats()

    def reset_stats(self) -> None:
        """Zero the counters; stored idempotent responses are kept, they are state, not stats."""
        self.calls = 0
        # Calls by method and route ("GET /houses/{house_id}"): what a request log would show,
        # for benches that run without one.
        self.calls_by_route: Counter[str] = Counter()
        self.duplicate_keys = 0
        self.effects: Counter[str] = Counter()
        self.effects_by_key: Counter[tuple[str, str]] = Counter()
        self.injected: Counter[str] = Counter()
        for hook in self._reset_hooks:
            hook()

    def add_stats_source(self, source: Callable[[], Mapping[str, Any]], reset: Callable[[], None]) -> None:
        """Merge ``source()`` into the stats and call ``reset`` on reset-stats."""
        self._stats_sources.append(source)
        self._reset_hooks.append(reset)

    def record_effect(self, kind: str, key: str) -> None:
        """Count one effect of ``kind`` done under idempotency ``key``."""
        self.effects[kind] += 1
        self.effects_by_key[(kind, key)] += 1

    def stats(self) -> dict[str, Any]:
        """Counters for ``GET /admin/stats``."""
        data: dict[str, Any] = {
            "calls": self.calls,
            "calls_by_route": dict(self.calls_by_route),
            "effects": dict(self.effects),
            "duplicate_keys": self.duplicate_keys,
            "keys_with_more_than_one_effect": sum(1 for n in self.effects_by_key.values() if n > 1),
            "injected": {k: self.injected.get(k, 0) for k in ("outage", "error", "timeout")},
        }
        for source in self._stats_sources:
            data.update(source())
        return data

    def once(
        self,
        request: web.Request,
        kind: str,
        effect: Callable[[], web.Response],
        *,
        key_required: bool = True,
    ) -> web.Response:
        """Run ``effect`` at most once per ``Idempotency-Key`` and replay its first response.

        ``effect`` is synchronous on purpose: nothing can interleave between looking the key up
        and storing the answer, so two concurrent calls with one key cannot both take effect.
        A 2xx answer counts as one effect of ``kind``; a ProblemError raised by ``effect`` (an
        unknown person, say) is a stored outcome too, with no effect.
        """
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            if key_required:
                raise ProblemError(
                    400, "Idempotency key required", "send an Idempotency-Key header with every POST that has an effect"
                )
            self._auto_keys += 1
            key = f"auto:{self._auto_keys}"
        elif len(key) > 255:
            raise bad_request("Idempotency-Key must be at most 255 characters")
        stored = self._stored.get((kind, key))
        if stored is not None:
            self.duplicate_keys += 1
            return stored.response()
        try:
            response = effect()
        except ProblemError as problem:
            response = problem.response()
        body = response.body
        assert isinstance(body, bytes)
        self._stored[(kind, key)] = StoredResponse(response.status, body, response.content_type)
        if 200 <= response.status < 300:
            self.record_effect(kind, key)
        return response


SIMULATOR = web.AppKey("simulator", Simulator)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _unfaulted(path: str) -> bool:
    return path == "/health" or path == "/admin" or path.startswith("/admin/")


def fault_middleware(sim: Simulator) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Middleware that applies ``sim.faults`` to every route but /health and /admin/*."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _unfaulted(request.path):
            return await _answer(request, handler)
        sim.calls += 1
        resource = request.match_info.route.resource
        sim.calls_by_route[f"{request.method} {resource.canonical if resource is not None else request.path}"] += 1
        faults = sim.faults
        # Draw both numbers on every call so the sequence for a seed does not depend on the rates.
        error_roll, timeout_roll = sim.rng.random(), sim.rng.random()
        if faults.outage:
            sim.injected["outage"] += 1
            return problem_response(503, "Service unavailable", f"the {sim.name} is down (simulated outage)", slug="outage")
        if error_roll < faults.error_rate:
            sim.injected["error"] += 1
            return problem_response(
                503, "Service unavailable", f"the {sim.name} failed the call (simulated error)", slug="injected-error"
            )
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        response = await _answer(request, handler)
        if timeout_roll < faults.timeout_rate:
            # The effect has happened; only the answer is late, so a client retry must be deduplicated.
            sim.injected["timeout"] += 1
            await asyncio.sleep(faults.timeout_seconds)
        return response

    return middleware


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as problem:
        return problem.response()
    except web.HTTPException as exc:
        if exc.status >= 400:
            return problem_response(exc.status, exc.reason, f"{request.method} {request.path}: {exc.reason.lower()}")
        raise


async def _health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _get_faults(request: web.Request) -> web.Response:
    return json_response(request.app[SIMULATOR].faults.as_dict())


async def _put_faults(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    changes = await read_json_object(request)
    try:
        sim.faults = sim.faults.updated(changes)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return json_response(sim.faults.as_dict())


async def _get_stats(request: web.Request) -> web.Response:
    return json_response(request.app[SIMULATOR].stats())


async def _reset_stats(request: web.Request) -> web.Response:
    sim = request.app[SIMULATOR]
    sim.reset_stats()
    return json_response(sim.stats())


def simulator_app(sim: Simulator) -> web.Application:
    """A new app with the fault middleware, /health and the admin routes of ``sim``."""
    app = web.Application(middlewares=[fault_middleware(sim)])
    app[SIMULATOR] = sim
    app.router.add_get("/health", _health)
    app.router.add_get("/admin/faults", _get_faults)
    app.router.add_put("/admin/faults", _put_faults)
    app.router.add_get("/admin/stats", _get_stats)
    app.router.add_post("/admin/reset-stats", _reset_stats)
    return app
