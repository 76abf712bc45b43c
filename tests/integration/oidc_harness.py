"""Trusted issuers for the tests: the OIDC provider simulator served in-process on real ports,
and the API configured to trust them (development tokens off)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
from aiohttp import web

from onestop.settings import Settings
from simulators.oidc import OidcProvider, build_oidc_app
from tests.conftest import free_port, settings_for


@dataclass
class Issuer:
    provider: OidcProvider
    url: str
    http: aiohttp.ClientSession

    async def token(self, login: str, **options: Any) -> str:
        """A token minted by the simulator's admin endpoint (ial, claims, audience, kid, expired, ttl_seconds)."""
        async with self.http.post(f"{self.url}/admin/tokens", json={"login": login, **options}) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["access_token"])

    async def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with self.http.request(method, f"{self.url}{path}", json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()


@asynccontextmanager
async def simulated_issuer(kind: str, **options: Any) -> AsyncIterator[Issuer]:
    provider = OidcProvider(kind=kind, **options)
    runner = web.AppRunner(build_oidc_app(provider), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    provider.issuer = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        try:
            yield Issuer(provider, provider.issuer, http)
        finally:
            await runner.cleanup()


def issuers_file(path: Path, citizen: Issuer, staff: Issuer) -> Path:
    path.write_text(f'''
[[issuer]]
name = "thaid"
url = "{citizen.url}"
audience = "onestop"
kind = "citizen"
client_id = "{citizen.provider.client_id}"

[[issuer]]
name = "staff"
url = "{staff.url}"
audience = "onestop"
kind = "staff"
role_claim = "onestop_role"
org_claim = "onestop_org"
client_id = "{staff.provider.client_id}"
''', encoding="utf-8")
    return path


def trusting_settings(database_url: str, issuers: Path, **extra: str) -> Settings:
    return settings_for(database_url, ONESTOP_DEV_TOKENS="0", ONESTOP_OIDC_ISSUERS=str(issuers), ONESTOP_JWKS_MIN_REFRESH_SECONDS="0.2", **extra)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
