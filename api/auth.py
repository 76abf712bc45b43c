"""Who is calling: a bearer token of a trusted issuer (the TokenVerifier port), an HS256
development token when ONESTOP_DEV_TOKENS=1, or a browser's session cookie (with a CSRF token on
writes). The caller is worked out once per request, asynchronously, by ``identity_middleware``
(or earlier by the limits, which need the subject); handlers call ``authenticate``."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import jwt
from aiohttp import web

from api.app_key import CTX
from api.problems import BadTokenRequest, HttpProblem
from application.access import ROLES
from application.errors import IdentityProviderUnavailable, InvalidToken
from application.ports import BrowserSession
from domain.actors import Actor

ISSUER = "onestop"
DEFAULT_MAX_TTL_SECONDS = 12 * 3600
# Clocks of the issuer and of OneStop may differ this much, and no more.
LEEWAY_SECONDS = 30


SESSION_COOKIE = "onestop_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# A trusted issuer's verified token is remembered at most this long (and never past its exp),
# so that a key the issuer withdraws stops working here within a minute.
OIDC_CACHE_SECONDS = 60.0
DEV_TOKENS_OFF = ("HS256 development tokens are accepted only when ONESTOP_DEV_TOKENS=1; sign in with a trusted"
                  " issuer (ThaiD for citizens, the organisation's provider for staff: README \"Signing in\")")


def make_token(secret: str, *, sub: str, role: str, org: str | None = None, ttl_seconds: int = DEFAULT_MAX_TTL_SECONDS, pid: str | None = None,
               ial: str | None = None) -> str:
    """A development token. Production tokens come from the identity provider (ThaiD)."""
    if role not in ROLES:
        raise BadTokenRequest(f"role must be one of {', '.join(ROLES)}")
    if role == "officer" and not org:
        raise BadTokenRequest("an officer's token needs --org")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl_seconds, "iss": ISSUER}
    if org:
        claims["org"] = org
    if pid:
        claims["pid"] = pid
    if ial:
        claims["ial"] = ial
    return jwt.encode(claims, secret, algorithm="HS256")


def _unauthorized(detail: str) -> HttpProblem:
    """No token at all (RFC 6750: no error code then)."""
    return HttpProblem(401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="onestop"'})


def _invalid_token(detail: str) -> HttpProblem:
    return HttpProblem(401, "Unauthorized", detail, [("Authorization", "is not a valid bearer token")],
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token", realm="onestop"'})


_verified: dict[tuple[str, int, str], tuple[Actor, float]] = {}
_VERIFIED_MAX = 10_000


def actor_from_token(secret: str, token: str, max_ttl_seconds: int = DEFAULT_MAX_TTL_SECONDS) -> Actor:
    """The actor a token names. A verified token is remembered until it expires, since a client
    sends the same token with many requests and checking its signature each time costs more
    than the rest of a small request's parsing."""
    key = (secret, max_ttl_seconds, token)
    cached = _verified.get(key)
    if cached is not None:
        actor, expires = cached
        if time.time() < expires:
            return actor
        del _verified[key]
    actor, expires = _verify(secret, token, max_ttl_seconds)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[key] = (actor, expires)
    return actor


def _known_dev_token(secret: str, token: str, max_ttl_seconds: int) -> Actor | None:
    """The actor of a development token verified before and not expired, else None."""
    cached = _verified.get((secret, max_ttl_seconds, token))
    if cached is not None and time.time() < cached[1]:
        return cached[0]
    return None


def _verify(secret: str, token: str, max_ttl_seconds: int) -> tuple[Actor, float]:
    try:
        # HS256 only: "none" and every other algorithm are refused before the claims are read.
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER, leeway=LEEWAY_SECONDS,
                            options={"require": ["sub", "role", "exp", "iat", "iss"]})
    except jwt.PyJWTError as error:
        raise _invalid_token(f"the bearer token is not valid: {error}") from None
    lifetime = float(claims["exp"]) - float(claims["iat"])
    if lifetime > max_ttl_seconds:
        raise _invalid_token(f"the bearer token lives {lifetime:.0f} s; at most {max_ttl_seconds} s is accepted")
    role = claims.get("role")
    if role not in ROLES:
        raise _invalid_token(f"unknown role {role!r}")
    org = claims.get("org")
    if role == "officer" and not org:
        raise _invalid_token("an officer's token must carry an org claim")
    pid = claims.get("pid") or (claims["sub"] if role == "citizen" else None)
    ial = claims.get("ial")
    return (Actor(sub=str(claims["sub"]), role=role, org=org, pid=pid, issuer=ISSUER, ial=str(ial) if ial is not None else None),
            float(claims["exp"]))


class VerifiedTokens:
    """Tokens of trusted issuers this API process has verified, until they may no longer be trusted."""

    def __init__(self, max_size: int = _VERIFIED_MAX) -> None:
        self.max_size = max_size
        self._entries: dict[str, tuple[Actor, float]] = {}

    def get(self, token: str) -> Actor | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if time.time() >= entry[1]:
            del self._entries[token]
            return None
        return entry[0]

    def put(self, token: str, actor: Actor, expires_at: float) -> None:
        if len(self._entries) >= self.max_size:
            self._entries.clear()
        self._entries[token] = (actor, min(expires_at, time.time() + OIDC_CACHE_SECONDS))


async def actor_from_bearer(ctx: Any, token: str) -> Actor:
    """The actor a bearer token names: HS256 development tokens only when they are on, every
    other algorithm only from a trusted issuer (401 ``invalid_token`` otherwise)."""
    if not token.isascii():  # a JWT is base64url and dots; other bytes would break the decoder
        raise _invalid_token("the bearer token is not valid: it holds characters a JWT cannot have")
    if token.count(".") == 2:
        # A token this process verified already, not expired and still trusted: no need to
        # decode its header again (a client sends the same token with many requests). Only
        # the trusted issuers' verifier fills their cache, and it never takes HS256.
        known = _known_dev_token(ctx.jwt_secret, token, ctx.jwt_max_ttl_seconds) if ctx.dev_tokens else None
        if known is None and ctx.token_verifier is not None:
            known = ctx.verified_tokens.get(token)
        if known is not None:
            return known
    try:
        alg = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError as error:
        raise _invalid_token(f"the bearer token is not valid: {error}") from None
    if alg == "HS256":
        if not ctx.dev_tokens:
            raise _invalid_token(DEV_TOKENS_OFF)
        return actor_from_token(ctx.jwt_secret, token, ctx.jwt_max_ttl_seconds)
    verifier = ctx.token_verifier
    if verifier is None:
        raise _invalid_token(f"the algorithm {alg!r} is not accepted: no trusted issuers are configured (ONESTOP_OIDC_ISSUERS)")
    cache: VerifiedTokens = ctx.verified_tokens
    actor = cache.get(token)
    if actor is not None:
        return actor
    try:
        verified = await verifier.verify(token)
    except InvalidToken as error:
        raise _invalid_token(f"the bearer token is not valid: {error}") from None
    except IdentityProviderUnavailable as error:
        raise HttpProblem(503, "Identity provider unavailable", f"the token's issuer cannot be reached to check it: {error}",
                          headers={"Retry-After": "5"}) from None
    cache.put(token, verified.actor, verified.expires_at)
    return verified.actor


@dataclass(frozen=True)
class Identity:
    """What a request's credentials say: the actor, or the problem to answer when one is needed."""

    actor: Actor | None
    problem: HttpProblem | None = None
    session: BrowserSession | None = None
    session_id: str | None = None


_IDENTITY: web.RequestKey[Identity] = web.RequestKey("onestop_identity", Identity)
_NO_CREDENTIALS = Identity(None, _unauthorized("a bearer token or a signed-in session is required"))


async def identify(request: web.Request) -> Identity:
    """The request's caller, worked out once (later calls return the same)."""
    found = request.get(_IDENTITY)
    if found is None:
        found = await _identify(request)
        request[_IDENTITY] = found
    return found  # type: ignore[no-any-return]


async def _identify(request: web.Request) -> Identity:
    ctx = request.app[CTX]
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Identity(None, _unauthorized("a bearer token is required"))
        try:
            return Identity(await actor_from_bearer(ctx, token.strip()))
        except HttpProblem as problem:
            return Identity(None, problem)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id and ctx.sessions is not None:
        session = await ctx.sessions.get(session_id, ctx.app.clock.now())
        if session is None:
            return Identity(None, _unauthorized("the session has ended or was signed out; sign in again"))
        return Identity(session.actor, _csrf_problem(request, session, ctx.browser_origins), session, session_id)
    return _NO_CREDENTIALS


def _csrf_problem(request: web.Request, session: BrowserSession, origins: tuple[str, ...]) -> HttpProblem | None:
    """A cookie rides along with any request the browser makes, even one another site's page
    starts: writes must also carry the session's CSRF token (which only a page that may read
    OneStop's answers can have), and come from an allowed origin when the browser names one."""
    if request.method in SAFE_METHODS:
        return None
    origin = request.headers.get("Origin")
    own = f"{request.scheme}://{request.host}"
    if origin is not None and origin != own and origin not in origins:
        return HttpProblem(403, "Forbidden", f"writes with a session cookie are not accepted from {origin}", [("Origin", "is not an allowed origin")])
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        return HttpProblem(403, "Forbidden", f"a write with a session cookie needs the {CSRF_HEADER} header from GET /v1/auth/session",
                           [(CSRF_HEADER, "is missing or does not match the session")])
    return None


def identity_middleware() -> Callable[[web.Request, Any], Awaitable[web.StreamResponse]]:
    """Works out the caller before the handler runs (the handler's ``authenticate`` is then a lookup)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        await identify(request)
        return await handler(request)  # type: ignore[no-any-return]

    return middleware


def authenticate(request: web.Request, *roles: str) -> Actor:
    """The caller; 401 without valid credentials, 403 unless their role is one of ``roles``."""
    found: Identity = request.get(_IDENTITY, _NO_CREDENTIALS)
    if found.problem is not None:
        raise found.problem
    actor = found.actor
    assert actor is not None
    if roles and actor.role not in roles:
        raise HttpProblem(403, "Forbidden", f"the {actor.role} role may not do this")
    return actor
