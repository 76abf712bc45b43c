"""``GET /metrics`` in Prometheus text format (prometheus-client): HTTP requests by route and
status with latency histograms (a middleware), the followers of the log, set-aside events, jobs
by kind and state, webhook deliveries by result, payment notices by outcome and open SSE
streams. Database figures are read when scraped, so any API process gives the same answer."""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Iterator

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

from api.app_key import CTX

log = logging.getLogger("onestop.metrics")
METRICS = web.AppKey("metrics", object)
NOTICES_ROUTE = "/v1/payment-notifications/{provider}"
LIVE_STREAM_ROUTE = "/v1/streams/events/live"

Query = Callable[[str], Awaitable[list[Any]]]


class Metrics:
    """One registry per API application (tests build many in one process)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("onestop_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=registry)
        self.latency = Histogram("onestop_http_request_duration_seconds", "Time to answer an HTTP request", ["route", "method"], registry=registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.notices = Counter("onestop_payment_notices", "Bank payment notices by outcome", ["outcome"], registry=registry)
        self.streams = Gauge("onestop_sse_streams_open", "Open Server-Sent Events streams", registry=registry)
        self.position = Gauge("onestop_follower_position", "Log position a follower has reached", ["follower"], registry=registry)
        self.lag = Gauge("onestop_follower_lag_events", "Events waiting for a follower", ["follower"], registry=registry)
        self.up = Gauge("onestop_follower_running", "1 when the follower is running, 0 when stalled or down", ["follower", "state"], registry=registry)
        self.log_position = Gauge("onestop_log_position", "The event log's head", registry=registry)
        self.failures = Gauge("onestop_projection_failures", "Events set aside by a view", ["view"], registry=registry)
        self.jobs = Gauge("onestop_jobs", "Jobs by kind and state (the jobs table)", ["kind", "state"], registry=registry)
        self.deliveries = Gauge("onestop_webhook_deliveries", "Webhook deliveries by result", ["result"], registry=registry)
        self.scrape_errors = Counter("onestop_metrics_scrape_errors", "Scrapes that could not read the database", registry=registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def refresh(self, ctx: Any) -> None:
        """Read what the database knows (followers, failures, jobs, deliveries) into the gauges."""
        pool = ctx.read_model.pool
        try:
            if ctx.followers is not None:
                state = await ctx.followers.read()
                self.log_position.set(state["log_position"])
                self.up.clear()
                for name, follower in state["followers"].items():
                    self.position.labels(name).set(follower["position"])
                    self.lag.labels(name).set(follower["lag"])
                    self.up.labels(name, follower["state"]).set(1 if follower["state"] == "running" else 0)
                self.failures.clear()
                for view, count in state["projection_failures"]["views"].items():
                    self.failures.labels(view).set(count)
                if state["projection_failures"]["count"] and not state["projection_failures"]["views"]:
                    self.failures.labels("unknown").set(state["projection_failures"]["count"])
            self.jobs.clear()
            for row in await pool.fetch("SELECT kind, status, count(*) AS n FROM jobs GROUP BY kind, status"):
                self.jobs.labels(row["kind"], row["status"]).set(row["n"])
            self.deliveries.clear()
            if await pool.fetchval("SELECT to_regclass('webhook_deliveries')") is not None:
                for row in await pool.fetch("SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status"):
                    self.deliveries.labels(row["status"]).set(row["n"])
        except Exception as error:  # the database is away: serve the HTTP figures anyway
            self.scrape_errors.inc()
            log.warning("metrics could not read the database: %s", error)

    def observe(self, request: web.Request, status: int, seconds: float, response: web.StreamResponse | None, route: str | None = None) -> None:
        route = route or _route(request)
        method = request.method
        # The labelled children, found once per (route, method, status): labels() takes a lock
        # and builds its key on every call.
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
            if len(self._children) < 10_000:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if route == NOTICES_ROUTE and method == "POST":
            self.notices.labels(_notice_outcome(status, response)).inc()


def _route(request: web.Request) -> str:
    """The route's canonical path (``/v1/service-requests/{id}``), never the raw URL, so that the
    label set stays small; requests that matched no route share one label."""
    info = request.match_info
    resource = info.route.resource if info is not None and info.http_exception is None else None
    return resource.canonical if resource is not None else "(unmatched)"


def _notice_outcome(status: int, response: web.StreamResponse | None) -> str:
    if status >= 400:
        return {401: "bad_signature", 503: "not_ready"}.get(status, "rejected")
    body = getattr(response, "body", None)
    try:
        verdict = orjson.loads(body)["status"] if isinstance(body, (bytes, bytearray)) else None
    except (ValueError, KeyError, TypeError):
        verdict = None
    return str(verdict or "accepted")


@web.middleware
async def metrics_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    metrics: Metrics = request.app[METRICS]  # type: ignore[assignment]
    started = time.perf_counter()
    route = _route(request)
    live = request.method == "GET" and route == LIVE_STREAM_ROUTE
    if live:
        metrics.streams.inc()
    response: web.StreamResponse | None = None
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        if live:
            metrics.streams.dec()
        metrics.observe(request, status, time.perf_counter() - started, response, route)


async def metrics_handler(request: web.Request) -> web.Response:
    metrics: Metrics = request.app[METRICS]  # type: ignore[assignment]
    await metrics.refresh(request.app[CTX])
    return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


class SubmitProfileCollector:
    """The command bus's running totals of where submissions spend their time
    (api.command_bus.SubmitProfile), read when scraped."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        profile = getattr(self.bus, "profile", None)
        if profile is None:
            return
        submits = CounterMetricFamily("onestop_submits", "Service requests filed through the command bus (POST /v1/service-requests)")
        submits.add_metric([], profile.submits)
        yield submits
        batches = CounterMetricFamily("onestop_submit_batches", "Transactions the command bus saved submissions in")
        batches.add_metric([], profile.batches)
        yield batches
        phases = CounterMetricFamily("onestop_submit_phase_seconds",
                                     "Seconds submissions spent per phase, summed over submissions (divide by onestop_submits_total)",
                                     labels=["phase"])
        for phase in profile.PHASES:
            phases.add_metric([phase], getattr(profile, f"{phase}_seconds"))
        yield phases
        batch = CounterMetricFamily("onestop_submit_batch_seconds", "Seconds the command bus's batches spent per phase, each batch once",
                                    labels=["phase"])
        batch.add_metric(["validate"], profile.batch_validate_seconds)
        batch.add_metric(["store"], profile.batch_store_seconds)
        yield batch


def install(app: web.Application) -> None:
    """Add the middleware (outermost, so it sees the problem responses too) and ``/metrics``."""
    app[METRICS] = metrics = Metrics()
    ctx = app.get(CTX)
    if ctx is not None:
        metrics.registry.register(SubmitProfileCollector(ctx.bus))  # type: ignore[arg-type]
    app.middlewares.insert(0, metrics_middleware)
    app.router.add_get("/metrics", metrics_handler)
