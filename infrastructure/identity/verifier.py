"""OneStop as an OIDC resource server: verifies the trusted issuers' tokens with PyJWT, on keys
fetched asynchronously (infrastructure.identity.keys)."""

from __future__ import annotations

import hmac
from typing import Any

import jwt

from application.errors import InvalidToken
from application.ports import TokenVerifier, VerifiedToken
from infrastructure.identity.issuers import IssuerConfig
from infrastructure.identity.keys import HttpSessions, IssuerKeys

# Clocks of the issuer and of OneStop may differ this much, and no more.
LEEWAY_SECONDS = 30


class OidcTokenVerifier(TokenVerifier):
    """Verifies tokens of the issuers it is given; every other token is refused."""

    def __init__(self, issuers: list[IssuerConfig], *, max_ttl_seconds: int, min_refresh_seconds: float = 10.0,
                 fetch_timeout_seconds: float = 5.0) -> None:
        self.issuers = issuers
        self.max_ttl_seconds = max_ttl_seconds
        self.http = HttpSessions(fetch_timeout_seconds)
        self._by_url = {issuer.url: issuer for issuer in issuers}
        self.keys = {issuer.name: IssuerKeys(issuer, self.http, min_refresh_seconds=min_refresh_seconds) for issuer in issuers}

    def issuer_names(self) -> list[str]:
        return [issuer.name for issuer in self.issuers]

    def issuer(self, name: str) -> IssuerConfig | None:
        return next((issuer for issuer in self.issuers if issuer.name == name), None)

    async def verify(self, token: str, *, audience: str | None = None, nonce: str | None = None) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise InvalidToken(f"the token is not a JWT: {error}") from None
        issuer = self._by_url.get(unverified.get("iss"))  # type: ignore[arg-type]
        if issuer is None:
            raise InvalidToken(f"the issuer {unverified.get('iss')!r} is not trusted")
        alg = header.get("alg")
        # Checked before any key is looked up: "none" and HS* never reach a verifier.
        if alg not in issuer.algorithms:
            raise InvalidToken(f"the algorithm {alg!r} is not accepted from {issuer.name} (accepted: {', '.join(issuer.algorithms)})")
        key = await self.keys[issuer.name].key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[alg], audience=audience or issuer.audience, issuer=issuer.url, leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(f"the token is not valid: {error}") from None
        lifetime = float(claims["exp"]) - float(claims["iat"])
        if lifetime > self.max_ttl_seconds:
            raise InvalidToken(f"the token lives {lifetime:.0f} s; at most {self.max_ttl_seconds} s is accepted")
        if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise InvalidToken("the ID token's nonce is not the one this sign-in sent")
        return VerifiedToken(issuer.actor(claims), float(claims["exp"]))

    async def close(self) -> None:
        await self.http.close()
