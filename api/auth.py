"""Bearer JWT authentication. HS256 with ONESTOP_JWT_SECRET for development and tests."""

from __future__ import annotations

import time
from typing import Any

import jwt
from aiohttp import web

from api.app_key import CTX
from api.problems import HttpProblem
from domain.actors import Actor

ROLES = ("citizen", "officer", "auditor", "integrator", "admin")
STAFF = ("officer", "admin")
ISSUER = "onestop"


def make_token(secret: str, *, sub: str, role: str, org: str | None = None, ttl_seconds: int = 12 * 3600, pid: str | None = None) -> str:
    """A development token. Production tokens come from the identity provider (ThaiD)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "officer" and not org:
        raise ValueError("an officer's token needs --org")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl_seconds, "iss": ISSUER}
    if org:
        claims["org"] = org
    if pid:
        claims["pid"] = pid
    return jwt.encode(claims, secret, algorithm="HS256")


def _unauthorized(detail: str) -> HttpProblem:
    return HttpProblem(401, "Unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="onestop"'})


_verified: dict[tuple[str, str], tuple[Actor, float]] = {}
_VERIFIED_MAX = 10_000


def actor_from_token(secret: str, token: str) -> Actor:
    """The actor a token names. A verified token is remembered until it expires, since a client
    sends the same token with many requests and checking its signature each time costs more
    than the rest of a small request's parsing."""
    cached = _verified.get((secret, token))
    if cached is not None:
        actor, expires = cached
        if time.time() < expires:
            return actor
        del _verified[(secret, token)]
    actor, expires = _verify(secret, token)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[(secret, token)] = (actor, expires)
    return actor


def _verify(secret: str, token: str) -> tuple[Actor, float]:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "role", "exp"]}, leeway=30)
    except jwt.PyJWTError as error:
        raise _unauthorized(f"the bearer token is not valid: {error}") from None
    role = claims.get("role")
    if role not in ROLES:
        raise _unauthorized(f"unknown role {role!r}")
    org = claims.get("org")
    if role == "officer" and not org:
        raise _unauthorized("an officer's token must carry an org claim")
    pid = claims.get("pid") or (claims["sub"] if role == "citizen" else None)
    return Actor(sub=str(claims["sub"]), role=role, org=org, pid=pid), float(claims["exp"])


def authenticate(request: web.Request, *roles: str) -> Actor:
    """The caller, from the Authorization header; 403 unless their role is one of ``roles``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("a bearer token is required")
    actor = actor_from_token(request.app[CTX].jwt_secret, token.strip())
    if roles and actor.role not in roles:
        raise HttpProblem(403, "Forbidden", f"the {actor.role} role may not do this")
    return actor
