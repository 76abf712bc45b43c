"""OneStop as an OIDC resource server, against the provider simulator as a real issuer over HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from api.auth import make_token
from onestop.settings import Settings
from tests.conftest import JWT_SECRET
from tests.integration.api_harness import CITIZEN_ID, Harness, complaint, serving
from tests.integration.oidc_harness import Issuer, bearer, issuers_file, simulated_issuer, trusting_settings

pytestmark = pytest.mark.postgres
OTHER_CITIZEN_ID = "1101700230708"  # a valid checksum: trusted issuers vouch only for real national IDs


class Stack:
    def __init__(self, api: Harness, citizens: Issuer, staff: Issuer) -> None:
        self.api, self.citizens, self.staff = api, citizens, staff

    async def submit(self, token: str, body: dict[str, Any] | None = None) -> Any:
        return await self.api.client.post("/v1/service-requests", json=body or complaint(),
                                          headers={**bearer(token), "Idempotency-Key": str(uuid.uuid4())})


@pytest.fixture
async def stack(settings: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    async with simulated_issuer("citizen") as citizens, simulated_issuer("staff", alg="ES256") as staff:
        trusted = trusting_settings(settings.database_url or "", issuers_file(tmp_path / "issuers.toml", citizens, staff))
        async with serving(trusted) as api:
            yield Stack(api, citizens, staff)


async def _refused(stack: Stack, token: str, why: str) -> None:
    response = await stack.api.client.get("/v1/service-requests", headers=bearer(token))
    body = await response.text()
    assert response.status == 401, f"{why}: {response.status} {body}"
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"'), why
    assert response.content_type == "application/problem+json", why


async def test_a_thaid_shaped_token_lists_that_persons_requests_and_records_issuer_and_ial(stack: Stack) -> None:
    token = await stack.citizens.token(CITIZEN_ID)
    response = await stack.submit(token)
    assert response.status == 201, await response.text()
    filed = await response.json()
    mine = await stack.api.client.get(f"/v1/service-requests?min_position={filed['position']}", headers=bearer(token))
    assert [item["id"] for item in (await mine.json())["items"]] == [filed["id"]]
    other = await stack.api.client.get("/v1/service-requests", headers=bearer(await stack.citizens.token(OTHER_CITIZEN_ID)))
    assert (await other.json())["items"] == []
    events = await (await stack.api.client.get(f"/v1/service-requests/{filed['id']}/events", headers=bearer(token))).json()
    actor = events["items"][0]["actor"]
    assert actor["issuer"] == stack.citizens.url and actor["ial"] == "2.3" and actor["role"] == "citizen"


async def test_a_citizen_below_the_services_assurance_level_gets_403_naming_ial(stack: Stack) -> None:
    service = await (await stack.api.client.get("/v1/services/civil.certified-copy")).json()
    assert service["min_ial"] == "2.3"
    weak = await stack.citizens.token(CITIZEN_ID, ial="2.1")
    copy = complaint(service="civil.certified-copy", details={"document": "house-registration", "copies": 1})
    before = stack.api.event_count()
    refused = await stack.submit(weak, copy)
    assert refused.status == 403
    assert [e["field"] for e in (await refused.json())["errors"]] == ["ial"]
    assert stack.api.event_count() == before
    assert (await stack.submit(weak)).status == 201  # a complaint needs only 2.1


async def test_an_officers_organisation_comes_from_the_staff_issuers_claim(stack: Stack) -> None:
    token = await stack.staff.token("officer.saensuk")
    response = await stack.submit(token, complaint(channel="counter"))
    assert response.status == 201, await response.text()
    filed = await response.json()
    assert filed["filed_at"] == "MUN-SAENSUK"
    events = await (await stack.api.client.get(f"/v1/service-requests/{filed['id']}/events", headers=bearer(token))).json()
    assert events["items"][0]["actor"] == {"sub": "officer.saensuk", "role": "officer", "org": "MUN-SAENSUK", "issuer": stack.staff.url}
    await _refused(stack, await stack.staff.token("officer.saensuk", claims={"onestop_role": "chief-of-everything"}), "no OneStop role")


def _unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_tokens_that_must_not_be_trusted_get_401_invalid_token(stack: Stack) -> None:
    citizens = stack.citizens
    now = int(time.time())
    await _refused(stack, await citizens.token(CITIZEN_ID, expired=True), "expired")
    await _refused(stack, await citizens.token(CITIZEN_ID, audience="someone-else"), "wrong aud")
    await _refused(stack, await citizens.token(CITIZEN_ID, claims={"iss": "https://imposter.example"}), "unlisted iss")
    await _refused(stack, await citizens.token(CITIZEN_ID, claims={"iss": stack.staff.url}), "another trusted issuer's iss")
    await _refused(stack, await citizens.token(CITIZEN_ID, kid="never-published"), "unknown kid")
    await _refused(stack, await citizens.token(CITIZEN_ID, ttl_seconds=13 * 3600), "longer than ONESTOP_JWT_MAX_TTL")
    await _refused(stack, await citizens.token(CITIZEN_ID, claims={"pid": "1234567890123"}), "pid with a bad checksum")
    await _refused(stack, _unsigned({"iss": citizens.url, "aud": "onestop", "sub": "x", "pid": CITIZEN_ID, "ial": "3",
                                     "iat": now, "exp": now + 600}), "alg=none")
    await _refused(stack, make_token(JWT_SECRET, sub=CITIZEN_ID, role="citizen"), "HS256 with development tokens off")


async def test_a_key_removed_from_the_jwks_stops_working_once_the_cached_keys_expire(stack: Stack) -> None:
    citizens = stack.citizens
    await citizens.admin("PUT", "/admin/faults", {"jwks_max_age": 1})
    old = citizens.provider.current
    ok = await stack.api.client.get("/v1/service-requests", headers=bearer(await citizens.token(CITIZEN_ID)))
    assert ok.status == 200
    await citizens.admin("POST", "/admin/keys/rotate")
    await citizens.admin("DELETE", f"/admin/keys/{old}")
    await asyncio.sleep(1.2)
    await _refused(stack, await citizens.token(CITIZEN_ID, kid=old), "signed by a key removed from the JWKS")


async def test_a_rotated_key_is_picked_up_without_a_restart(stack: Stack) -> None:
    citizens = stack.citizens
    first = await stack.api.client.get("/v1/service-requests", headers=bearer(await citizens.token(CITIZEN_ID)))
    assert first.status == 200
    fetched = citizens.provider.stats["jwks"]
    new = (await citizens.admin("POST", "/admin/keys/rotate", {"retire_old": True}))["kid"]
    await asyncio.sleep(0.25)  # ONESTOP_JWKS_MIN_REFRESH_SECONDS in these tests
    token = await citizens.token(CITIZEN_ID)
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")).get("kid") == new
    second = await stack.api.client.get("/v1/service-requests", headers=bearer(token))
    assert second.status == 200, await second.text()
    assert citizens.provider.stats["jwks"] == fetched + 1


async def test_a_flood_of_unknown_key_ids_does_not_flood_the_issuer(stack: Stack) -> None:
    citizens = stack.citizens
    assert (await stack.api.client.get("/v1/service-requests", headers=bearer(await citizens.token(CITIZEN_ID)))).status == 200
    fetched = citizens.provider.stats["jwks"]
    forged = [await citizens.token(CITIZEN_ID, kid=f"forged-{i}") for i in range(20)]
    for token in forged:
        await _refused(stack, token, "unknown kid")
    # One refresh at most per ONESTOP_JWKS_MIN_REFRESH_SECONDS (0.2 s here), not one per token.
    assert citizens.provider.stats["jwks"] - fetched <= 3


async def test_a_slow_jwks_does_not_hold_up_other_requests(stack: Stack) -> None:
    staff = stack.staff
    await staff.admin("PUT", "/admin/faults", {"slow_jwks_seconds": 1.5})
    token = await staff.token("auditor.oag")
    started = time.monotonic()
    slow = asyncio.ensure_future(stack.api.client.get("/v1/service-requests", headers=bearer(token)))
    await asyncio.sleep(0.1)
    catalogue = await stack.api.client.get("/v1/services")
    assert catalogue.status == 200 and time.monotonic() - started < 1.0
    assert (await slow).status == 200
    assert time.monotonic() - started >= 1.4
