"""Browser sign-in (backend-for-frontend): the code flow with PKCE at a trusted issuer, ending in
an HttpOnly session cookie for OneStop's own origin; the browser never holds a token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets

from aiohttp import web
from yarl import URL

from api.app_key import CTX
from api.auth import SESSION_COOKIE, authenticate, identify
from api.http import json_response
from api.problems import HttpProblem
from application.errors import IdentityProviderUnavailable, SignInFailed

routes = web.RouteTableDef()
SIGN_IN_COOKIE = "onestop_sign_in"
SIGN_IN_COOKIE_PATH = "/v1/auth/"
SESSION_MAX_AGE_SECONDS = 12 * 3600


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL (default port left out), else None."""
    try:
        parsed = URL(url)
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.user is not None or parsed.password is not None:
        return None
    default = 443 if parsed.scheme == "https" else 80
    port = "" if parsed.port in (None, default) else f":{parsed.port}"
    return f"{parsed.scheme}://{parsed.host.lower()}{port}"


def _own_origin(request: web.Request) -> str:
    ctx = request.app[CTX]
    return (ctx.public_url or f"{request.scheme}://{request.host}").rstrip("/")


def _checked_return_to(request: web.Request) -> str:
    """Where the browser goes after signing in: only to OneStop itself or a configured origin,
    so the sign-in cannot be made into an open redirect."""
    raw = request.query.get("return_to")
    if raw is None:
        return _own_origin(request) + "/v1/auth/session"
    origin = origin_of(raw) if "\\" not in raw and len(raw) <= 2000 else None
    allowed = {origin_of(o) for o in request.app[CTX].browser_origins} | {origin_of(_own_origin(request))}
    if origin is None or origin not in allowed:
        raise HttpProblem(400, "Bad query parameter", "return_to must be an absolute URL on an allowed origin (ONESTOP_SIGN_IN_ORIGINS)",
                          [("return_to", "is not on an allowed origin")])
    return raw


def _secure(request: web.Request) -> bool:
    """Cookies are Secure except on a loopback address, where development runs plain HTTP."""
    if request.scheme == "https":
        return True
    host = (request.host or "").rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _sign_in_client(request: web.Request, issuer: str):  # type: ignore[no-untyped-def]
    ctx = request.app[CTX]
    if ctx.sign_in is None or ctx.sessions is None or not ctx.sign_in.can_sign_in(issuer):
        raise HttpProblem(404, "Not found", f"no issuer {issuer!r} with browser sign-in", [("issuer", "is not a configured issuer with a client_id")])
    return ctx.sign_in


@routes.get("/v1/auth/{issuer}/login")
async def login(request: web.Request) -> web.Response:
    issuer = request.match_info["issuer"]
    client = _sign_in_client(request, issuer)
    return_to = _checked_return_to(request)
    login_hint = request.query.get("login_hint")
    if login_hint is not None and not (0 < len(login_hint) <= 200 and login_hint.isprintable()):
        raise HttpProblem(400, "Bad query parameter", "login_hint must be 1 to 200 printable characters", [("login_hint", "is malformed")])
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect_uri = f"{_own_origin(request)}/v1/auth/{issuer}/callback"
    try:
        target = await client.authorization_url(issuer, redirect_uri=redirect_uri, state=state, nonce=nonce, code_challenge=challenge,
                                                login_hint=login_hint)
    except IdentityProviderUnavailable as error:
        raise HttpProblem(503, "Identity provider unavailable", str(error), headers={"Retry-After": "5"}) from None
    ctx = request.app[CTX]
    await ctx.sessions.begin_sign_in(state, {"issuer": issuer, "nonce": nonce, "code_verifier": verifier, "return_to": return_to,
                                             "redirect_uri": redirect_uri}, ctx.app.clock.now())
    response = web.Response(status=302, headers={"Location": target, "Cache-Control": "no-store"})
    # Binds the sign-in to this browser: a callback URL sent to someone else does not sign them in.
    response.set_cookie(SIGN_IN_COOKIE, state, max_age=600, path=SIGN_IN_COOKIE_PATH, httponly=True, secure=_secure(request), samesite="Lax")
    return response


@routes.get("/v1/auth/{issuer}/callback")
async def callback(request: web.Request) -> web.Response:
    issuer = request.match_info["issuer"]
    client = _sign_in_client(request, issuer)
    if "error" in request.query:
        raise HttpProblem(401, "Sign-in refused", f"{issuer} refused the sign-in: {request.query['error'][:200]}", [("error", "from the identity provider")])
    code, state = request.query.get("code"), request.query.get("state")
    if not code or not state:
        raise HttpProblem(400, "Bad query parameter", "the callback needs code and state", [("code" if not code else "state", "is required")])
    bound = request.cookies.get(SIGN_IN_COOKIE, "")
    if not hmac.compare_digest(bound.encode(), state.encode()):
        raise HttpProblem(400, "Bad query parameter", "this sign-in was not started in this browser", [("state", "does not match this browser's sign-in")])
    ctx = request.app[CTX]
    now = ctx.app.clock.now()
    pending = await ctx.sessions.finish_sign_in(state, now)
    if pending is None or pending.get("issuer") != issuer:
        raise HttpProblem(400, "Bad query parameter", "unknown, used or expired sign-in; start again", [("state", "is not a pending sign-in")])
    try:
        verified = await client.exchange(issuer, code=code, redirect_uri=pending["redirect_uri"], code_verifier=pending["code_verifier"],
                                         nonce=pending["nonce"])
    except SignInFailed as error:
        raise HttpProblem(401, "Sign-in failed", str(error), [("code", "was not accepted")]) from None
    except IdentityProviderUnavailable as error:
        raise HttpProblem(503, "Identity provider unavailable", str(error), headers={"Retry-After": "5"}) from None
    session_id, _ = await ctx.sessions.create(verified.actor, now)
    response = web.Response(status=303, headers={"Location": pending["return_to"], "Cache-Control": "no-store"})
    response.set_cookie(SESSION_COOKIE, session_id, max_age=SESSION_MAX_AGE_SECONDS, path="/", httponly=True, secure=_secure(request), samesite="Lax")
    response.del_cookie(SIGN_IN_COOKIE, path=SIGN_IN_COOKIE_PATH)
    return response


@routes.get("/v1/auth/session")
async def session(request: web.Request) -> web.Response:
    """The signed-in browser's actor and the CSRF token its writes must send."""
    actor = authenticate(request)
    found = await identify(request)
    if found.session is None:
        raise HttpProblem(401, "Unauthorized", "no browser session: this call is for signed-in browsers", headers={"WWW-Authenticate": 'Bearer realm="onestop"'})
    return json_response({"actor": {**actor.as_dict(), "pid": actor.pid}, "csrf_token": found.session.csrf_token,
                          "expires_at": found.session.expires_at.isoformat()}, headers={"Cache-Control": "no-store"})


@routes.post("/v1/auth/logout")
async def logout(request: web.Request) -> web.Response:
    """End the browser's session (a cookie write: CSRF token required); its cookie stops working."""
    authenticate(request)
    found = await identify(request)
    if found.session_id is None:
        raise HttpProblem(401, "Unauthorized", "no browser session to end", headers={"WWW-Authenticate": 'Bearer realm="onestop"'})
    ctx = request.app[CTX]
    await ctx.sessions.revoke(found.session_id, ctx.app.clock.now())
    response = web.Response(status=204)
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
