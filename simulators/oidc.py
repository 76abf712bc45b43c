"""An OpenID Connect provider simulator: a ThaiD-shaped issuer for citizens (`pid`, `ial`) or an
organisation's provider for staff (role and organisation claims), as a real aiohttp server.

- `GET /.well-known/openid-configuration`, `GET /jwks` (the published keys; Cache-Control max-age)
- `GET /authorize`: the code flow with PKCE (S256). No password: `login_hint` names the test
  person or officer to sign in; without it, a page lists them as links.
- `POST /token`: authorization code + PKCE verifier → ID token (aud = client id, nonce) and
  access token (aud = the audience), both JWTs signed with the current key.
- Admin: `GET /admin/people`, `PUT /admin/people/{login}` (claims, such as `ial`),
  `POST /admin/tokens` (mint a token directly: login, ial, claims, ttl_seconds, audience, kid,
  expired), `POST /admin/keys/rotate` (a new signing key, the old one still published unless
  `retire_old`), `DELETE /admin/keys/{kid}` (stop publishing a key), `GET|PUT /admin/faults`
  (`slow_jwks_seconds`, `expired_tokens`, `jwks_max_age`), `GET /admin/stats`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from .faults import ProblemError, json_response, problem_response, read_json_object
from simulators.errors import InvalidSimulatorSetting

ALGORITHMS = ("RS256", "ES256", "EdDSA")
CODE_SECONDS = 120
CITIZENS: dict[str, dict[str, Any]] = {
    "3100600445635": {"name": "สมชาย ใจดี", "name_en": "Somchai Jaidee", "birthdate": "1954-03-02"},
    "1101700230708": {"name": "สมหญิง รักดี", "name_en": "Somying Rakdee", "birthdate": "1980-11-20"},
}
STAFF: dict[str, dict[str, Any]] = {
    "officer.saensuk": {"onestop_role": "officer", "onestop_org": "MUN-SAENSUK", "name": "Officer of Saen Suk"},
    "officer.phrae": {"onestop_role": "officer", "onestop_org": "MUN-PHRAE", "name": "Officer of Phrae"},
    "officer.cbi": {"onestop_role": "officer", "onestop_org": "PAO-CBI", "name": "Officer of Chonburi PAO"},
    "auditor.oag": {"onestop_role": "auditor", "name": "Auditor"},
    "admin.ops": {"onestop_role": "admin", "name": "Operator"},
}


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    @classmethod
    def generate(cls, alg: str, kid: str | None = None) -> SigningKey:
        if alg == "RS256":
            private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        elif alg == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
        else:
            raise InvalidSimulatorSetting(f"algorithm must be one of {', '.join(ALGORITHMS)}")
        return cls(kid or secrets.token_hex(8), alg, private)

    def jwk(self) -> dict[str, Any]:
        exporter = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[self.alg]
        data: dict[str, Any] = exporter.to_jwk(self.private.public_key(), as_dict=True)  # type: ignore[attr-defined]
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid})


@dataclass
class OidcFaults:
    slow_jwks_seconds: float = 0.0
    expired_tokens: bool = False
    jwks_max_age: int = 300


@dataclass
class OidcProvider:
    """The provider's state: people, keys, pending codes and faults."""

    kind: str = "citizen"  # citizen | staff
    audience: str = "onestop"
    client_id: str = "onestop"
    client_secret: str | None = None
    issuer: str | None = None  # None: the origin the request arrived at
    ial: str = "2.3"
    alg: str = "RS256"
    token_ttl_seconds: int = 3600
    faults: OidcFaults = field(default_factory=OidcFaults)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, SigningKey] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    current: str = ""
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=lambda: {"jwks": 0, "tokens": 0, "authorizations": 0})

    def __post_init__(self) -> None:
        if self.kind not in ("citizen", "staff"):
            raise InvalidSimulatorSetting("kind must be citizen or staff")
        if not self.people:
            self.people = {login: dict(claims) for login, claims in (CITIZENS if self.kind == "citizen" else STAFF).items()}
        if not self.keys:
            self.rotate()

    def rotate(self, *, retire_old: bool = False) -> SigningKey:
        key = SigningKey.generate(self.alg)
        if retire_old:
            self.published.clear()
        self.keys[key.kid] = key
        self.published.append(key.kid)
        self.current = key.kid
        return key

    def person(self, login: str) -> dict[str, Any] | None:
        if login in self.people:
            return self.people[login]
        if self.kind == "citizen" and _valid_national_id(login):
            return {"name": "ผู้ทดสอบ ระบบ", "name_en": "Test Person"}  # any valid national ID signs in
        return None

    def claims_for(self, issuer: str, login: str, audience: str, *, ttl: int | None = None, extra: dict[str, Any] | None = None,
                   expired: bool | None = None) -> dict[str, Any]:
        person = self.person(login) or {}
        now = int(time.time())
        ttl = ttl or self.token_ttl_seconds
        if expired if expired is not None else self.faults.expired_tokens:
            issued, expires = now - ttl - 300, now - 300
        else:
            issued, expires = now, now + ttl
        claims: dict[str, Any] = {"iss": issuer, "aud": audience, "iat": issued, "exp": expires, "jti": secrets.token_hex(8)}
        if self.kind == "citizen":
            # ThaiD's subject is not the national ID; `pid` carries that.
            claims.update({"sub": hashlib.sha256(f"{issuer}|{login}".encode()).hexdigest()[:32], "pid": login, "ial": self.ial})
        else:
            claims["sub"] = login
        claims.update({k: v for k, v in person.items()})
        claims.update(extra or {})
        return claims

    def sign(self, claims: dict[str, Any], kid: str | None = None) -> str:
        if kid is not None and kid not in self.keys:
            self.keys[kid] = SigningKey.generate(self.alg, kid)  # a key never published
        return self.keys[kid or self.current].sign(claims)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.keys[kid].jwk() for kid in self.published]}


def _valid_national_id(value: str) -> bool:
    if len(value) != 13 or not value.isdigit():
        return False
    check = (11 - sum(int(d) * (13 - i) for i, d in enumerate(value[:12])) % 11) % 10
    return check == int(value[12])


PROVIDER: web.AppKey[OidcProvider] = web.AppKey("oidc_provider")


def _provider(request: web.Request) -> OidcProvider:
    return request.app[PROVIDER]


def _issuer(request: web.Request) -> str:
    provider = _provider(request)
    return provider.issuer or f"{request.scheme}://{request.host}"


async def discovery(request: web.Request) -> web.Response:
    issuer = _issuer(request)
    provider = _provider(request)
    claims = ["sub", "pid", "ial", "name", "name_en", "birthdate"] if provider.kind == "citizen" else ["sub", "onestop_role", "onestop_org", "name"]
    return json_response({
        "issuer": issuer, "authorization_endpoint": f"{issuer}/authorize", "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks", "response_types_supported": ["code"], "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": [provider.alg],
        "code_challenge_methods_supported": ["S256"], "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": ["openid", "pid", "name", "birthdate", "address", "ial"] if provider.kind == "citizen" else ["openid", "profile"],
        "claims_supported": claims,
    })


async def jwks(request: web.Request) -> web.Response:
    provider = _provider(request)
    provider.stats["jwks"] += 1
    if provider.faults.slow_jwks_seconds:
        await asyncio.sleep(provider.faults.slow_jwks_seconds)
    response = json_response(provider.jwks())
    response.headers["Cache-Control"] = f"public, max-age={provider.faults.jwks_max_age}"
    return response


async def authorize(request: web.Request) -> web.Response:
    provider = _provider(request)
    query = request.query
    for name in ("response_type", "client_id", "redirect_uri", "state", "code_challenge"):
        if not query.get(name):
            return problem_response(400, "Bad request", f"{name} is required")
    if query["response_type"] != "code" or query["client_id"] != provider.client_id:
        return problem_response(400, "Bad request", "only response_type=code for the registered client_id")
    if query.get("code_challenge_method", "plain") != "S256":
        return problem_response(400, "Bad request", "code_challenge_method must be S256")
    login = query.get("login_hint")
    if not login:
        links = "".join(
            f'<li><a href="/authorize?{html.escape(urlencode({**query, "login_hint": who}))}">{html.escape(who)}'
            f' {html.escape(str(claims.get("name", "")))}</a></li>' for who, claims in provider.people.items())
        return web.Response(text=f"<!doctype html><title>Sign in</title><h1>Sign in as</h1><ul>{links}</ul>", content_type="text/html")
    if provider.person(login) is None:
        return problem_response(400, "Bad request", f"no test person {login!r}")
    code = secrets.token_urlsafe(24)
    provider.codes[code] = {"login": login, "redirect_uri": query["redirect_uri"], "challenge": query["code_challenge"],
                            "nonce": query.get("nonce"), "expires": time.monotonic() + CODE_SECONDS}
    provider.stats["authorizations"] += 1
    separator = "&" if "?" in query["redirect_uri"] else "?"
    raise web.HTTPFound(f"{query['redirect_uri']}{separator}{urlencode({'code': code, 'state': query['state']})}")


def _token_error(error: str, status: int = 400) -> web.Response:
    return web.json_response({"error": error}, status=status)


async def token(request: web.Request) -> web.Response:
    provider = _provider(request)
    form = await request.post()
    client_id, secret = form.get("client_id"), form.get("client_secret")
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    if client_id != provider.client_id:
        return _token_error("invalid_client", 401)
    if provider.client_secret is not None and not hmac.compare_digest(str(secret or ""), provider.client_secret):
        return _token_error("invalid_client", 401)
    if form.get("grant_type") != "authorization_code":
        return _token_error("unsupported_grant_type")
    pending = provider.codes.pop(str(form.get("code", "")), None)
    if pending is None or pending["expires"] < time.monotonic() or pending["redirect_uri"] != form.get("redirect_uri"):
        return _token_error("invalid_grant")
    verifier = str(form.get("code_verifier", ""))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    if not hmac.compare_digest(challenge, pending["challenge"]):
        return _token_error("invalid_grant")
    issuer = _issuer(request)
    extra = {"nonce": pending["nonce"]} if pending["nonce"] else {}
    id_token = provider.sign(provider.claims_for(issuer, pending["login"], provider.client_id, extra=extra))
    access_token = provider.sign(provider.claims_for(issuer, pending["login"], provider.audience))
    provider.stats["tokens"] += 1
    return web.json_response({"access_token": access_token, "id_token": id_token, "token_type": "Bearer",
                              "expires_in": provider.token_ttl_seconds}, headers={"Cache-Control": "no-store"})


async def admin_people(request: web.Request) -> web.Response:
    return json_response(_provider(request).people)


async def admin_put_person(request: web.Request) -> web.Response:
    provider = _provider(request)
    body = await read_json_object(request)
    login = request.match_info["login"]
    provider.people[login] = {**provider.people.get(login, {}), **body}
    return json_response(provider.people[login])


async def admin_tokens(request: web.Request) -> web.Response:
    provider = _provider(request)
    body = await read_json_object(request)
    login = str(body.get("login", ""))
    if provider.person(login) is None:
        return problem_response(400, "Bad request", f"no test person {login!r}")
    extra = dict(body.get("claims") or {})
    if "ial" in body:
        extra["ial"] = str(body["ial"])
    claims = provider.claims_for(_issuer(request), login, str(body.get("audience") or provider.audience),
                                 ttl=int(body.get("ttl_seconds") or provider.token_ttl_seconds), extra=extra, expired=body.get("expired"))
    kid = body.get("kid")
    return json_response({"access_token": provider.sign(claims, str(kid) if kid else None), "claims": claims})


async def admin_rotate(request: web.Request) -> web.Response:
    provider = _provider(request)
    body = await read_json_object(request) if request.body_exists else {}
    key = provider.rotate(retire_old=bool(body.get("retire_old")))
    return json_response({"kid": key.kid, "published": provider.published})


async def admin_remove_key(request: web.Request) -> web.Response:
    provider = _provider(request)
    kid = request.match_info["kid"]
    if kid not in provider.published:
        return problem_response(404, "Not found", f"no published key {kid!r}")
    provider.published.remove(kid)
    return json_response({"published": provider.published})


async def admin_get_faults(request: web.Request) -> web.Response:
    return json_response(_provider(request).faults.__dict__)


async def admin_put_faults(request: web.Request) -> web.Response:
    provider = _provider(request)
    body = await read_json_object(request)
    unknown = set(body) - set(provider.faults.__dict__)
    if unknown:
        return problem_response(400, "Bad request", f"unknown fault fields: {', '.join(sorted(unknown))}")
    for name, value in body.items():
        setattr(provider.faults, name, type(getattr(provider.faults, name))(value))
    return json_response(provider.faults.__dict__)


async def admin_stats(request: web.Request) -> web.Response:
    provider = _provider(request)
    return json_response({**provider.stats, "current_kid": provider.current, "published": provider.published})


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "up"})


@web.middleware
async def _problems(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except ProblemError as problem:
        return problem.response()


def build_oidc_app(provider: OidcProvider) -> web.Application:
    app = web.Application(middlewares=[_problems])
    app[PROVIDER] = provider
    app.add_routes([
        web.get("/.well-known/openid-configuration", discovery), web.get("/jwks", jwks), web.get("/authorize", authorize),
        web.post("/token", token), web.get("/health", health),
        web.get("/admin/people", admin_people), web.put("/admin/people/{login}", admin_put_person),
        web.post("/admin/tokens", admin_tokens), web.post("/admin/keys/rotate", admin_rotate),
        web.delete("/admin/keys/{kid}", admin_remove_key), web.get("/admin/faults", admin_get_faults),
        web.put("/admin/faults", admin_put_faults), web.get("/admin/stats", admin_stats),
    ])
    return app
