"""Bearer JWT authentication. HS256 with ONESTOP_JWT_SECRET for development and tests."""

from __future__ import annotations

import time
from typing import Any

import jwt
from aiohttp import web

from api.app_key import CTX
from api.problems import HttpProblem
from domain.actors import Actor

ROLES = ("citizen", "officer", "auditor", "integrator", "admin", "dpo")
STAFF = ("officer", "admin")
ISSUER = "onestop"
DEFAULT_MAX_TTL_SECONDS = 12 * 3600
# Clocks of the issuer and of OneStop may differ this much, and no more.
LEEWAY_SECONDS = 30


def make_token(secret: str, *, sub: str, role: str, org: str | None = None, ttl_seconds: int = DEFAULT_MAX_TTL_SECONDS, pid: str | None = None) -> str:
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
    return Actor(sub=str(claims["sub"]), role=role, org=org, pid=pid), float(claims["exp"])


def authenticate(request: web.Request, *roles: str) -> Actor:
    """The caller, from the Authorization header; 403 unless their role is one of ``roles``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("a bearer token is required")
    ctx = request.app[CTX]
    actor = actor_from_token(ctx.jwt_secret, token.strip(), ctx.jwt_max_ttl_seconds)
    if roles and actor.role not in roles:
        raise HttpProblem(403, "Forbidden", f"the {actor.role} role may not do this")
    return actor
