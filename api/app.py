"""The aiohttp application: routes, middleware and what handlers need, handed in by the
composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

from api import catalogue, health, metrics, money_trail, organizations, payments, service_requests
from api.app_key import CTX
from api.http import MAX_BODY, query_middleware
from api.limits import EdgeLimits, LimitSettings, limits_middleware
from api.problems import problem_middleware
from application.back_office import BackOffice
from application.ports import ReadModel, UseCaseRunner

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]


@dataclass
class ApiContext:
    app: BackOffice
    bus: UseCaseRunner
    read_model: ReadModel
    jwt_secret: str
    bank_callback_secret: str = ""
    jwt_max_ttl_seconds: int = 12 * 3600  # the longest bearer-token lifetime (exp - iat) accepted
    health_checks: list[HealthCheck] = field(default_factory=list)
    as_of_request: Callable[..., Awaitable[web.Response]] | None = None
    as_of_payment: Callable[..., Awaitable[web.Response]] | None = None
    extra_routes: list[web.RouteTableDef] = field(default_factory=list)
    # application.current.CurrentState: single reads from the event store when the views lag.
    current: Any = None
    # infrastructure.eventstore.follower_status.FollowerWatch: the followers of the log, for health.
    followers: Any = None
    on_cleanup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    limits: LimitSettings = field(default_factory=LimitSettings)
    # The money trail: application.ports.MoneyTrailQueries and ReceiptPrinter; the public base
    # URL printed in receipts' QR codes (None: the URL the request came to).
    money_trail: Any = None
    receipt_printer: Any = None
    public_url: str | None = None


def create_app(ctx: ApiContext) -> web.Application:
    # The limits run inside the problem middleware, so what they refuse is problem+json too; the
    # query check after them, before any handler parses a parameter.
    app = web.Application(middlewares=[problem_middleware, limits_middleware(EdgeLimits(ctx.limits, ctx.jwt_secret)), query_middleware],
                          client_max_size=MAX_BODY, handler_args=ctx.limits.handler_args())
    app[CTX] = ctx
    metrics.install(app)
    app.add_routes(catalogue.routes)
    app.add_routes(health.routes)
    app.add_routes(payments.routes)
    app.add_routes(organizations.routes)
    app.add_routes(money_trail.routes)
    for extra in ctx.extra_routes:
        app.add_routes(extra)
    # The request routes last: /v1/service-requests/{id}/{action} would shadow more specific ones.
    app.add_routes(service_requests.routes)

    async def cleanup(_: web.Application) -> None:
        for hook in ctx.on_cleanup:
            await hook()

    app.on_cleanup.append(cleanup)
    return app
