"""Crafted and careless input over HTTP, against the real PostgreSQL: each is refused with a 4xx
problem naming the field or parameter, and nothing is stored."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import replace
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from application.back_office import SubmitCommand
from domain.actors import Actor
from onestop.bootstrap import build_back_office
from infrastructure.jobs.outside_systems import HttpCivilRegistry, HttpPaymentGateway
from onestop.settings import Settings
from application.bank_signature import notice_signature
from tests.integration.api_harness import AUDITOR, CITIZEN, CITIZEN_ID, INTEGRATOR, OFFICER, Harness, complaint, serving, token

pytestmark = pytest.mark.postgres

ADMIN = token("admin", "admin.one")
HOUSE_ID = "12345678901"


async def refused(api: Harness, response: Any, status: int, field: str) -> dict[str, Any]:
    body = await response.json(content_type=None)
    assert response.status == status, body
    assert response.content_type == "application/problem+json"
    assert field in [e["field"] for e in body.get("errors", [])], body
    return body


async def post_raw(api: Harness, path: str, raw: bytes, headers: dict[str, str]) -> Any:
    return await api.client.post(path, data=raw, headers={**headers, "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())})


@pytest.mark.parametrize(
    ("service", "organization", "details", "field"),
    [
        ("civil.address-change", "MUN-SAENSUK", {"to_house_id": "../people?limit=5"}, "details.to_house_id"),
        ("welfare.elderly-allowance", "MUN-SAENSUK", {"bank_account": "x"}, "details.bank_account"),
        # Replaced by /v1/appointments: refused for new submissions, naming the service.
        ("civil.appointment", "MUN-SAENSUK", {"service": "ทะเบียน", "slot": "2026-12-01T09:00:00+07:00"}, "service"),
        ("local.flyer-permit", "MUN-SAENSUK", {"description": "d", "area": "a", "start_date": "aaa", "end_date": "aaa", "quantity": 1}, "details.start_date"),
        ("local.hotel-fee", "PAO-CBI", {"month": "x", "room_revenue_satang": 100}, "details.month"),
        ("complaint", "MUN-SAENSUK", {"subject": "s", "description": "a\u0000b"}, "details.description"),
        ("complaint", "MUN-SAENSUK", {"subject": "s", "description": "d" * 2001}, "details.description"),
    ],
)
async def test_a_submission_breaking_a_schema_rule_is_refused_naming_the_field_and_stores_nothing(
    api: Harness, service: str, organization: str, details: dict[str, Any], field: str,
) -> None:
    before = api.event_count()
    raw = orjson.dumps(complaint(service=service, organization=organization, details=details))
    await refused(api, await post_raw(api, "/v1/service-requests", raw, CITIZEN), 422, field)
    assert api.event_count() == before


@pytest.mark.parametrize("depth", [256, 1023])
async def test_a_deeply_nested_body_is_refused_not_a_server_error(api: Harness, depth: int) -> None:
    before = api.event_count()
    raw = orjson.dumps(complaint(details={})).replace(b'"details":{}', b'"details":' + b"[" * depth + b"]" * depth)
    response = await post_raw(api, "/v1/service-requests", raw, CITIZEN)
    assert response.status == 400 and response.content_type == "application/problem+json"
    assert api.event_count() == before


async def test_an_officer_name_with_a_nul_is_refused_and_the_views_go_on(api: Harness) -> None:
    state = await api.submit()
    before = api.event_count()
    await refused(api, await api.act(state["id"], "assign", {"officer": "somchai\u0000"}), 422, "officer")
    assert api.event_count() == before
    # The views still follow the log: a later request is seen.
    later = await api.submit()
    response = await api.client.get(f"/v1/service-requests/{later['id']}?min_position={later['position']}", headers=CITIZEN)
    assert response.status == 200


@pytest.mark.parametrize(
    ("path", "headers", "field"),
    [
        ("/v1/service-requests?applicant=%00", OFFICER, "applicant"),
        ("/v1/service-requests?organization=%00", ADMIN, "organization"),
        ("/v1/service-requests?limit=%C2%B2", CITIZEN, "limit"),
        ("/v1/service-requests?limit=%D9%A3", CITIZEN, "limit"),
        ("/v1/service-requests?min_position=%C2%B2", CITIZEN, "min_position"),
        ("/v1/service-requests?min_position=99999999999999999999", CITIZEN, "min_position"),
        ("/v1/jobs?organization=%00", ADMIN, "organization"),
        ("/v1/audit/events?after=99999999999999999999", AUDITOR, "after"),
        ("/v1/audit/events?organization=%00", AUDITOR, "organization"),
        ("/v1/audit/events?from=0001-01-01T00:00:00%2B14:00", AUDITOR, "from"),
        ("/v1/audit/events?to=9999-12-31T23:59:59-14:00", AUDITOR, "to"),
        ("/v1/audit/export?from=0001-01-01T00:00:00%2B14:00", AUDITOR, "from"),
        ("/v1/streams/events?after=99999999999999999999", INTEGRATOR, "after"),
        ("/v1/streams/events?limit=%C2%B2", INTEGRATOR, "limit"),
        ("/v1/organizations/MUN-SAENSUK/daily-counts?from=%D9%A3%D9%A3", OFFICER, "from"),
    ],
)
async def test_a_crafted_query_parameter_is_a_400_naming_it(api: Harness, path: str, headers: dict[str, str], field: str) -> None:
    await refused(api, await api.client.get(path, headers=headers), 400, field)


@pytest.mark.parametrize("query", ["to=0001-01-01", "from=0001-01-01&to=0001-01-02", "to=9999-12-31"])
async def test_daily_counts_at_the_ends_of_the_calendar_are_no_server_error(api: Harness, query: str) -> None:
    response = await api.client.get(f"/v1/organizations/MUN-SAENSUK/daily-counts?{query}", headers=OFFICER)
    assert response.status in (200, 400), await response.text()


def _cursor(values: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


@pytest.mark.parametrize("values", [[[], {}], [1, 2], ["2026-01-01T00:00:00+00:00", 5], ["x", "y"], [None, None]])
@pytest.mark.parametrize(
    ("path", "headers"),
    [("/v1/service-requests", OFFICER), ("/v1/jobs", ADMIN), ("/v1/organizations/MUN-SAENSUK/work-queue", OFFICER), ("/v1/subscriptions", INTEGRATOR)],
)
async def test_a_cursor_of_the_wrong_shape_is_a_400(api: Harness, path: str, headers: dict[str, str], values: list[Any]) -> None:
    await refused(api, await api.client.get(f"{path}?cursor={_cursor(values)}", headers=headers), 400, "cursor")


async def test_a_unicode_digit_in_if_match_is_a_400(api: Harness) -> None:
    state = await api.submit()
    before = api.event_count()
    response = await api.client.post(f"/v1/service-requests/{state['id']}/approve", json={}, headers={**OFFICER, "If-Match": '"²"'})
    await refused(api, response, 400, "If-Match")
    assert api.event_count() == before


async def test_a_unicode_digit_in_last_event_id_is_a_400(api: Harness) -> None:
    response = await api.client.get("/v1/streams/events/live", headers={**INTEGRATOR, "Last-Event-ID": "²"})
    await refused(api, response, 400, "Last-Event-ID")


async def test_a_deliveries_or_replay_cursor_past_int64_is_a_400(settings: Settings) -> None:
    async with serving(replace(settings, webhooks_allow_private=True)) as api:
        created = await api.client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"},
                                        headers={**INTEGRATOR, "Idempotency-Key": str(uuid.uuid4())})
        assert created.status == 201, await created.text()
        subscription = (await created.json())["id"]
        response = await api.client.get(f"/v1/subscriptions/{subscription}/deliveries?after=99999999999999999999", headers=INTEGRATOR)
        await refused(api, response, 400, "after")
        response = await api.client.post(f"/v1/subscriptions/{subscription}/replay?from=99999999999999999999", headers=INTEGRATOR)
        await refused(api, response, 400, "from")


async def test_a_signed_notice_whose_reference_holds_a_nul_is_refused_and_stores_nothing(settings: Settings) -> None:
    secret = "a-callback-secret-for-this-test-0123456789"
    async with serving(replace(settings, bank_callback_secret=secret)) as api:
        before = api.event_count()
        raw = orjson.dumps({"notice_id": "N1", "payment_id": "PAY-1", "reference": "OS69\u00000000001", "amount_satang": 500})
        stamp = str(int(time.time()))
        headers = {"X-Bank-Timestamp": stamp, "X-Bank-Signature": notice_signature(secret, stamp, "sim-bank", raw), "Content-Type": "application/json"}
        response = await api.client.post("/v1/payment-notifications/sim-bank", data=raw, headers=headers)
        await refused(api, response, 422, "reference")
        assert api.event_count() == before


# -- outside systems ---------------------------------------------------------------------------


async def test_identifiers_reach_outside_systems_as_one_encoded_path_segment() -> None:
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        return web.json_response({"house_id": HOUSE_ID})

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", record)
    async with TestServer(app) as server:
        base = str(server.make_url("/registry"))
        registry, bank = HttpCivilRegistry(base), HttpPaymentGateway(base, "0105500000001")
        try:
            await registry.read_house("../people?limit=5")
            await registry.read_house("..")
            await bank.read_charge("../refunds#x")
        finally:
            await registry.http.close()
            await bank.http.close()
    assert seen == ["/registry/houses/%2E%2E%2Fpeople%3Flimit%3D5", "/registry/houses/%2E%2E", "/registry/charges/%2E%2E%2Frefunds%23x"]


async def test_a_registry_answer_is_stored_only_as_the_fields_the_rules_need(settings: Settings) -> None:
    app = build_back_office(settings)
    try:
        body = complaint(service="civil.address-change", details={"to_house_id": HOUSE_ID})
        applicant = Actor(sub=CITIZEN_ID, role="citizen", pid=CITIZEN_ID)
        state = app.submit(SubmitCommand(body=body, actor=applicant, request_hash="h", idempotency_key=str(uuid.uuid4()))).state
        answer = {
            "national_id": CITIZEN_ID, "found": True, "alive": True, "reason": None, "birth_date": "1950-01-01",
            "name_th": "สมชาย ใจดี", "first_name_th": "สมชาย", "last_name_th": "ใจดี", "house_id": "10000000001",
            "organization": "MUN-SAENSUK", "people": [{"national_id": "1101700230705", "first_name_th": "สมหญิง"}],
            "to_house": {"house_id": HOUSE_ID, "organization": "MUN-SAENSUK", "residents": [{"national_id": "1101700230705"}],
                         "address_th": "99 หมู่ 1"},
        }
        app.record_verification(uuid.UUID(state["id"]), answer, Actor(sub="worker", role="system"))
        request = app.get_request(uuid.UUID(state["id"]))
        assert request.registry == {
            "found": True, "alive": True, "reason": None, "house_id": "10000000001", "organization": "MUN-SAENSUK",
            "to_house": {"house_id": HOUSE_ID, "organization": "MUN-SAENSUK"},
        }
        stored = b"".join(bytes(item.state) for item in app.recorder.select_events(uuid.UUID(state["id"])))
        for personal in (b"1101700230705", b"first_name_th", b"people", b"residents", b"1950-01-01"):
            assert personal not in stored
    finally:
        app.close()
