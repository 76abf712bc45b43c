"""Each trusted issuer's signing keys: discovery, then its JWKS, fetched with aiohttp (never on
the event loop's critical path twice: one fetch at a time per issuer, others wait for it),
cached until they expire, and fetched again when a token names an unknown `kid` (at most once
per ``min_refresh_seconds``, so a flood of forged kids cannot make OneStop hammer the issuer)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import aiohttp
import jwt

from application.errors import IdentityProviderUnavailable, InvalidToken
from infrastructure.identity.issuers import IssuerConfig

log = logging.getLogger("onestop.identity")
DEFAULT_KEYS_TTL_SECONDS = 300.0
MAX_KEYS_TTL_SECONDS = 86_400.0
DISCOVERY_TTL_SECONDS = 3_600.0
_MAX_AGE = re.compile(r"max-age=(\d+)")


class IssuerKeys:
    """The keys of one issuer."""

    def __init__(self, issuer: IssuerConfig, http: HttpSessions, *, min_refresh_seconds: float = 10.0,
                 default_ttl_seconds: float = DEFAULT_KEYS_TTL_SECONDS) -> None:
        self.issuer = issuer
        self.http = http
        self.min_refresh_seconds = min_refresh_seconds
        self.default_ttl_seconds = default_ttl_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._unnamed: list[jwt.PyJWK] = []
        self._expires = 0.0
        self._fetched = float("-inf")
        self._metadata: dict[str, Any] | None = None
        self._metadata_expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (checked: its `issuer` is the configured url)."""
        if self._metadata is None or time.monotonic() >= self._metadata_expires:
            document, _ = await self._get_json(self.issuer.discovery_url)
            if document.get("issuer") != self.issuer.url:
                raise IdentityProviderUnavailable(
                    f"{self.issuer.name}: discovery says issuer {document.get('issuer')!r}, not {self.issuer.url!r}")
            if not isinstance(document.get("jwks_uri"), str):
                raise IdentityProviderUnavailable(f"{self.issuer.name}: discovery has no jwks_uri")
            self._metadata, self._metadata_expires = document, time.monotonic() + DISCOVERY_TTL_SECONDS
        return self._metadata

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The key a token's header names; InvalidToken when the issuer does not publish it."""
        now = time.monotonic()
        if now >= self._expires:
            await self._refresh(stale_ok=bool(self._keys or self._unnamed))
        found = self._find(kid)
        if found is None and time.monotonic() - self._fetched >= self.min_refresh_seconds:
            await self._refresh(stale_ok=True, if_fetched_before=now)  # rotation: the issuer may have a new key
            found = self._find(kid)
        if found is None:
            raise InvalidToken(f"the key {kid!r} is not among {self.issuer.name}'s published keys")
        return found

    def _find(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        every = [*self._keys.values(), *self._unnamed]
        return every[0] if len(every) == 1 else None

    async def _refresh(self, *, stale_ok: bool, if_fetched_before: float | None = None) -> None:
        async with self._lock:
            # Another request may have fetched while this one waited for the lock.
            if if_fetched_before is not None and self._fetched > if_fetched_before:
                return
            if if_fetched_before is None and time.monotonic() < self._expires:
                return
            try:
                metadata = await self.metadata()
                document, ttl = await self._get_json(metadata["jwks_uri"])
            except IdentityProviderUnavailable as error:
                self._fetched = time.monotonic()
                if stale_ok:
                    log.warning("keeping %s's keys after a failed refresh: %s", self.issuer.name, error)
                    self._expires = time.monotonic() + min(self.min_refresh_seconds, 30.0)
                    return
                raise
            keys, unnamed = _parse_jwks(document, self.issuer)
            self._keys, self._unnamed = keys, unnamed
            self._fetched = time.monotonic()
            self._expires = self._fetched + (ttl if ttl is not None else self.default_ttl_seconds)
            self.fetches += 1

    async def _get_json(self, url: str) -> tuple[dict[str, Any], float | None]:
        session = await self.http.get()
        try:
            async with session.get(url, headers={"Accept": "application/json"}) as response:
                if response.status != 200:
                    raise IdentityProviderUnavailable(f"{self.issuer.name}: {url} answered {response.status}")
                document = await response.json(content_type=None)
                match = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise IdentityProviderUnavailable(f"{self.issuer.name}: {url}: {type(error).__name__} {error}".strip()) from None
        if not isinstance(document, dict):
            raise IdentityProviderUnavailable(f"{self.issuer.name}: {url} is not a JSON object")
        ttl = min(float(match.group(1)), MAX_KEYS_TTL_SECONDS) if match else None
        return document, ttl


def _parse_jwks(document: dict[str, Any], issuer: IssuerConfig) -> tuple[dict[str, jwt.PyJWK], list[jwt.PyJWK]]:
    keys: dict[str, jwt.PyJWK] = {}
    unnamed: list[jwt.PyJWK] = []
    for entry in document.get("keys", []):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError) as error:
            log.warning("%s publishes a key OneStop cannot use (%s): skipped", issuer.name, error)
            continue
        if key.algorithm_name not in issuer.algorithms:
            continue
        kid = entry.get("kid")
        if isinstance(kid, str):
            keys[kid] = key
        else:
            unnamed.append(key)
    return keys, unnamed


class HttpSessions:
    """One aiohttp client session for every issuer, made on first use inside the running loop."""

    def __init__(self, timeout_seconds: float = 5.0) -> None:
        self.timeout_seconds = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_seconds))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
