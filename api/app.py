"""The aiohttp application: routes, middleware and what handlers need, handed in by the
composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web

from api import catalogue, health, metrics, money_trail, organizations, payments, privacy, service_requests, docs, land_tax
from api.app_key import CTX
from api.http import MAX_BODY, check_query, shown
from api.cors import enable_cors
from api.limits import EdgeLimits, LimitSettings, limits_middleware
from api.problems import HttpProblem, problem_middleware
from application.back_office import BackOffice
from application.ports import LandTaxViews, ReadModel, UseCaseRunner, SessionStore, SignInClient, TokenVerifier
from api.auth import VerifiedTokens, identity_middleware

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
    # Personal data: application.disclosures.Disclosures (who looked), the AccessLog port it
    # writes, and the SubjectDataSource list of access and portability exports.
    disclosures: Any = None
    access_log: Any = None
    subject_sources: list[Any] = field(default_factory=list)
    # Origins of browser front-ends allowed to call the API (api/cors.py); none: no CORS.
    cors_origins: tuple[str, ...] = ()
    land_tax: LandTaxViews | None = None

    # Identity: HS256 development tokens only when on; trusted issuers' tokens; browser sessions.
    dev_tokens: bool = False
    token_verifier: TokenVerifier | None = None
    verified_tokens: VerifiedTokens = field(default_factory=VerifiedTokens)
    sessions: SessionStore | None = None
    sign_in: SignInClient | None = None
    browser_origins: tuple[str, ...] = ()  # where sign-in may return to and cookie writes may come from
    public_url: str | None = None  # the API's own origin as browsers see it (callback URLs); None: from the request

    # The keyed blind index of a national ID (lists by applicant filter on it, never the plain ID).
    blind_index: Callable[[str], str] = field(default=lambda national_id: national_id)

    # The money trail: application.ports.MoneyTrailQueries and ReceiptPrinter; the public base
    # URL printed in receipts' QR codes (None: the URL the request came to).
    money_trail: Any = None
    receipt_printer: Any = None


def documented_query_middleware() -> Any:
    """Refuse (400 naming it) a query parameter with characters no store should take
    (``check_query``), or one the operation does not take (see the OpenAPI document). A request
    without a query string costs one test."""
    from api.openapi import QueryParameters, openapi_document

    known = QueryParameters(openapi_document())

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.query_string:
            check_query(request)
            route = request.match_info.route
            resource = route.resource if request.match_info.http_exception is None else None
            allowed = known.allowed(request.method, request.path, resource.canonical if resource is not None else None)
            if allowed is not None:
                for name in request.query:
                    if name not in allowed:
                        raise HttpProblem(400, "Bad query parameter", f"{shown(name)} is not a parameter of this operation",
                                          [(shown(name), "is not a parameter of this operation; see /v1/openapi.json")])
        return await handler(request)

    return middleware


def create_app(ctx: ApiContext) -> web.Application:
    # The limits run inside the problem middleware, so what they refuse is problem+json too; then
    # who is calling (once per request), then the query check, before any handler parses a parameter.
    app = web.Application(middlewares=[problem_middleware, limits_middleware(EdgeLimits(ctx.limits)), identity_middleware(),
                                       documented_query_middleware()],
                          client_max_size=MAX_BODY, handler_args=ctx.limits.handler_args())
    app[CTX] = ctx
    metrics.install(app)
    app.add_routes(catalogue.routes)
    app.add_routes(health.routes)
    app.add_routes(payments.routes)
    app.add_routes(organizations.routes)
    app.add_routes(privacy.routes)
    app.add_routes(docs.routes)
    app.add_routes(land_tax.routes)
    app.add_routes(money_trail.routes)
    for extra in ctx.extra_routes:
        app.add_routes(extra)
    # The request routes last: /v1/service-requests/{id}/{action} would shadow more specific ones.
    app.add_routes(service_requests.routes)
    # Last: every route must exist to get its preflight route.
    enable_cors(app, ctx.cors_origins)

    async def cleanup(_: web.Application) -> None:
        for hook in ctx.on_cleanup:
            await hook()

    app.on_cleanup.append(cleanup)
    return app
