"""The core back office over HTTP, against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.integration.api_harness import (
    AUDITOR, CITIZEN, INTEGRATOR, OFFICER, OTHER_CITIZEN, OTHER_OFFICER, PAO_OFFICER, Harness, complaint,
)

pytestmark = pytest.mark.postgres


async def test_a_read_with_min_position_right_after_a_write_sees_the_write(api: Harness) -> None:
    for _ in range(5):
        state = await api.submit()
        response = await api.client.get(f"/v1/service-requests/{state['id']}?min_position={state['position']}", headers=CITIZEN)
        assert response.status == 200
        seen = await response.json()
        assert seen["version"] == state["version"] and seen["status"] == "in_review"
        approved = await api.act(state["id"], "approve", {"note": "ok"}, version=state["version"])
        after = await approved.json()
        response = await api.client.get(f"/v1/service-requests/{state['id']}?min_position={after['position']}", headers=OFFICER)
        assert (await response.json())["status"] == "approved"


async def test_a_command_response_and_a_later_read_have_the_same_shape_and_values(api: Harness) -> None:
    state = await api.submit()
    response = await api.client.get(f"/v1/service-requests/{state['id']}?min_position={state['position']}", headers=CITIZEN)
    assert response.headers["ETag"] == f'"{state["version"]}"'
    assert await response.json() == state


async def test_an_idempotency_key_replay_returns_the_first_response_and_creates_nothing(api: Harness) -> None:
    first = await api.client.post("/v1/service-requests", json=complaint(), headers={**CITIZEN, "Idempotency-Key": "key-1"})
    assert first.status == 201
    first_body = await first.json()
    count = api.event_count()
    again = await api.client.post("/v1/service-requests", json=complaint(), headers={**CITIZEN, "Idempotency-Key": "key-1"})
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    replayed = await again.json()
    assert {k: v for k, v in replayed.items() if k != "position"} == {k: v for k, v in first_body.items() if k != "position"}
    assert api.event_count() == count


async def test_the_same_idempotency_key_with_another_body_is_refused(api: Harness) -> None:
    await api.submit(key="key-2")
    count = api.event_count()
    other = complaint(details={"subject": "อื่น", "description": "ต่างกัน"})
    response = await api.client.post("/v1/service-requests", json=other, headers={**CITIZEN, "Idempotency-Key": "key-2"})
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    assert api.event_count() == count


async def test_concurrent_submissions_with_one_idempotency_key_file_one_request(api: Harness) -> None:
    responses = await asyncio.gather(*(
        api.client.post("/v1/service-requests", json=complaint(), headers={**CITIZEN, "Idempotency-Key": "same"}) for _ in range(8)
    ))
    bodies = [await r.json() for r in responses]
    assert {r.status for r in responses} == {201}
    assert len({b["id"] for b in bodies}) == 1
    assert len({b["reference"] for b in bodies}) == 1
    assert api.event_count() == 2


async def test_two_concurrent_approvals_of_one_request_exactly_one_succeeds(api: Harness) -> None:
    state = await api.submit()
    first, second = await asyncio.gather(
        api.act(state["id"], "approve", {"note": "a"}, version=state["version"]),
        api.act(state["id"], "approve", {"note": "b"}, version=state["version"]),
    )
    statuses = sorted([first.status, second.status])
    assert statuses[0] == 200 and statuses[1] in (409, 412)
    events = await (await api.client.get(f"/v1/service-requests/{state['id']}/events", headers=OFFICER)).json()
    assert [e["type"] for e in events["items"]].count("ServiceRequest.Approved") == 1


async def test_a_stale_if_match_gets_412_and_a_forbidden_transition_gets_409(api: Harness) -> None:
    state = await api.submit()
    assigned = await api.act(state["id"], "assign", {"officer": "officer.b"}, version=state["version"])
    assert assigned.status == 200
    stale = await api.act(state["id"], "approve", {}, version=state["version"])
    assert stale.status == 412
    fresh = await assigned.json()
    assert (await api.act(state["id"], "complete", {}, version=fresh["version"])).status == 409


BAD_INPUTS = [
    ("malformed JSON", b"{not json", {}, 400, "(body)"),
    ("unknown service", complaint(service="civil.unknown"), {}, 422, "service"),
    ("unknown organisation", complaint(organization="MUN-NOWHERE"), {}, 422, "organization"),
    ("service not offered there", complaint(service="local.hotel-fee", details={"month": "2026-10", "room_revenue_satang": 100000}), {}, 422, "organization"),
    ("bad national ID checksum", complaint(applicant={"national_id": "3100600445636", "name": "x"}), {}, 422, "applicant.national_id"),
    ("missing field", {k: v for k, v in complaint().items() if k != "channel"}, {}, 422, "channel"),
    ("wrong-typed field", complaint(details={"subject": 42, "description": "x"}), {}, 422, "details.subject"),
    ("unknown field in details", complaint(details={"subject": "a", "description": "b", "colour": "red"}), {}, 422, "details.colour"),
    ("body over 1 MiB", complaint(details={"subject": "a", "description": "x" * (1024 * 1024 + 10)}), {}, 413, None),
    ("no Idempotency-Key", complaint(), {"Idempotency-Key": ""}, 400, "Idempotency-Key"),
]


@pytest.mark.parametrize(("case", "body", "headers", "status", "field"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
async def test_each_bad_input_gets_a_problem_naming_the_field_and_leaves_the_event_count_unchanged(
    api: Harness, case: str, body: object, headers: dict, status: int, field: str | None
) -> None:
    await api.submit()
    count = api.event_count()
    all_headers = {**CITIZEN, "Idempotency-Key": str(uuid.uuid4()), **headers}
    if not all_headers["Idempotency-Key"]:
        del all_headers["Idempotency-Key"]
    if isinstance(body, bytes):
        response = await api.client.post("/v1/service-requests", data=body, headers={**all_headers, "Content-Type": "application/json"})
    else:
        response = await api.client.post("/v1/service-requests", json=body, headers=all_headers)
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys() and problem["status"] == status
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]]
    assert api.event_count() == count


async def test_an_unknown_action_or_a_bad_action_body_changes_nothing(api: Harness) -> None:
    state = await api.submit()
    count = api.event_count()
    unknown = await api.act(state["id"], "teleport", {})
    assert unknown.status == 404 and "action" in [e["field"] for e in (await unknown.json())["errors"]]
    bad = await api.act(state["id"], "reject", {"reason": 7})
    assert bad.status == 422 and "reason" in [e["field"] for e in (await bad.json())["errors"]]
    assert api.event_count() == count


async def test_citizens_see_only_their_own_requests(api: Harness) -> None:
    state = await api.submit()
    other = await api.client.get(f"/v1/service-requests/{state['id']}?min_position={state['position']}", headers=OTHER_CITIZEN)
    assert other.status == 404
    listing = await (await api.client.get(f"/v1/service-requests?min_position={state['position']}", headers=OTHER_CITIZEN)).json()
    assert listing["items"] == []
    mine = await (await api.client.get(f"/v1/service-requests?min_position={state['position']}", headers=CITIZEN)).json()
    assert [i["id"] for i in mine["items"]] == [state["id"]]


async def test_a_citizen_cannot_file_for_someone_else(api: Harness) -> None:
    count = api.event_count()
    response = await api.client.post("/v1/service-requests", json=complaint(), headers={**OTHER_CITIZEN, "Idempotency-Key": "x"})
    assert response.status == 403
    assert api.event_count() == count


async def test_an_officer_files_at_their_counter_and_the_responsible_organisation_decides(api: Harness) -> None:
    body = complaint(channel="counter", organization="MUN-SAENSUK")
    state = await api.submit(body, headers=PAO_OFFICER)
    assert state["filed_at"] == "PAO-CBI" and state["organization"] == "MUN-SAENSUK" and state["channel"] == "counter"
    seen = await api.client.get(f"/v1/service-requests/{state['id']}?min_position={state['position']}", headers=PAO_OFFICER)
    assert seen.status == 200
    assert (await api.act(state["id"], "approve", {}, headers=PAO_OFFICER)).status == 403
    assert (await api.act(state["id"], "approve", {}, headers=OTHER_OFFICER)).status == 404
    assert (await api.act(state["id"], "approve", {}, headers=OFFICER)).status == 200
    events = await (await api.client.get(f"/v1/service-requests/{state['id']}/events", headers=AUDITOR)).json()
    assert events["items"][0]["actor"] == {"sub": "officer.cbi", "role": "officer", "org": "PAO-CBI", "issuer": "onestop"}
    assert events["items"][-1]["actor"]["org"] == "MUN-SAENSUK"


async def test_auditors_read_but_change_nothing_and_other_roles_are_refused(api: Harness) -> None:
    state = await api.submit()
    assert (await api.client.get(f"/v1/service-requests/{state['id']}?min_position={state['position']}", headers=AUDITOR)).status == 200
    assert (await api.act(state["id"], "approve", {}, headers=AUDITOR)).status == 403
    assert (await api.client.get("/v1/service-requests", headers=INTEGRATOR)).status == 403
    assert (await api.client.get("/v1/service-requests")).status == 401
    assert (await api.client.get("/v1/service-requests", headers={"Authorization": "Bearer not.a.token"})).status == 401


async def test_listing_filters_and_pages_with_an_opaque_cursor(api: Harness) -> None:
    ids = [(await api.submit())["id"] for _ in range(5)]
    flyer = complaint(service="local.flyer-permit", details={"description": "d", "area": "ตลาด", "start_date": "2026-12-01", "end_date": "2026-12-02", "quantity": 5})
    paying = await api.submit(flyer)
    seen: list[str] = []
    cursor = None
    while True:
        query = f"/v1/service-requests?service=complaint&limit=2&min_position={paying['position']}" + (f"&cursor={cursor}" if cursor else "")
        page = await (await api.client.get(query, headers=OFFICER)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    awaiting = await (await api.client.get("/v1/service-requests?status=awaiting_payment", headers=OFFICER)).json()
    assert [i["id"] for i in awaiting["items"]] == [paying["id"]]
    assert (await api.client.get("/v1/service-requests?cursor=garbage", headers=OFFICER)).status == 400


async def test_a_fee_is_paid_in_cash_and_the_request_moves_on_in_the_same_transaction(api: Harness) -> None:
    flyer = complaint(service="local.flyer-permit", details={"description": "d", "area": "ตลาด", "start_date": "2026-12-01", "end_date": "2026-12-02", "quantity": 5})
    state = await api.submit(flyer)
    assert state["status"] == "awaiting_payment" and state["payment"]["amount_satang"] == 20000
    payment_url = f"/v1/payments/{state['payment']['id']}"
    payment = await (await api.client.get(f"{payment_url}", headers=CITIZEN)).json() if False else None
    await api.client.get(f"/v1/service-requests/{state['id']}?min_position={state['position']}", headers=CITIZEN)
    payment = await (await api.client.get(payment_url, headers=CITIZEN)).json()
    assert payment["promptpay_payload"].startswith("000201010212") and state["reference"] in payment["promptpay_payload"]
    png = await api.client.get(f"{payment_url}/qr?format=png", headers=CITIZEN)
    assert png.status == 200 and (await png.read()).startswith(b"\x89PNG")
    svg = await api.client.get(f"{payment_url}/qr?format=svg", headers=CITIZEN)
    assert b"<svg" in await svg.read()
    wrong = await api.client.post(f"{payment_url}/record-cash", json={"amount_satang": 100}, headers=OFFICER)
    assert wrong.status == 409
    paid = await api.client.post(f"{payment_url}/record-cash", json={"amount_satang": 20000}, headers=OFFICER)
    assert paid.status == 200
    body = await paid.json()
    assert body["status"] == "paid" and body["request"]["status"] == "in_review"
    events = await (await api.client.get(f"/v1/service-requests/{state['id']}/events", headers=OFFICER)).json()
    received = [e for e in events["items"] if e["type"] in ("Payment.Received", "Payment.ReceiptIssued", "ServiceRequest.PaymentSettled")]
    # One transaction: the money, its receipt and the request's move are consecutive in the log.
    assert [e["position"] - received[0]["position"] for e in received] == [0, 1, 2]


async def test_catalogue_organisations_health_and_openapi_are_served(api: Harness) -> None:
    services = await (await api.client.get("/v1/services")).json()
    # civil.appointment is replaced by /v1/appointments and no longer listed.
    assert len(services["items"]) == 8 and "civil.appointment" not in {s["code"] for s in services["items"]}
    copy = await (await api.client.get("/v1/services/civil.certified-copy")).json()
    assert copy["details_schema"]["required"] == ["document", "copies"] and copy["fee"]["per_copy_satang_by_document"]["house-registration"] == 500
    assert (await api.client.get("/v1/services/nothing")).status == 404
    orgs = await (await api.client.get("/v1/organizations?kind=pao")).json()
    assert len(orgs["items"]) == 5
    health = await (await api.client.get("/v1/health")).json()
    assert health["dependencies"]["database"]["status"] == "up"
    spec = await (await api.client.get("/v1/openapi.json")).json()
    assert spec["openapi"].startswith("3.1") and "/v1/service-requests" in spec["paths"]
    assert spec["components"]["schemas"]["Details.complaint"] == (await (await api.client.get("/v1/services/complaint")).json())["details_schema"]


async def test_a_withdrawal_by_the_applicant_expires_an_open_payment(api: Harness) -> None:
    copy = complaint(service="local.flyer-permit", details={"description": "d", "area": "a", "start_date": "2026-12-01", "end_date": "2026-12-01", "quantity": 1})
    state = await api.submit(copy)
    withdrawn = await api.act(state["id"], "withdraw", {"reason": "no longer needed"}, headers=CITIZEN)
    body = await withdrawn.json()
    assert withdrawn.status == 200 and body["status"] == "withdrawn" and body["payment"]["status"] == "expired"
    assert (await api.act(state["id"], "approve", {})).status == 409


async def test_an_organisation_sees_its_work_queue_oldest_first_and_its_daily_counts(api: Harness) -> None:
    first = await api.submit()
    second = await api.submit()
    await api.act(first["id"], "reject", {"reason": "duplicate"})
    third = await api.submit()
    await api.client.get(f"/v1/service-requests/{third['id']}?min_position={third['position']}", headers=OFFICER)
    queue = await (await api.client.get("/v1/organizations/MUN-SAENSUK/work-queue?limit=1", headers=OFFICER)).json()
    assert [i["request_id"] for i in queue["items"]] == [second["id"]] and queue["next_cursor"]
    rest = await (await api.client.get(f"/v1/organizations/MUN-SAENSUK/work-queue?cursor={queue['next_cursor']}", headers=OFFICER)).json()
    assert [i["request_id"] for i in rest["items"]] == [third["id"]] and rest["items"][0]["due_at"] > rest["items"][0]["submitted_at"]
    counts = await (await api.client.get("/v1/organizations/MUN-SAENSUK/daily-counts", headers=AUDITOR)).json()
    assert [(c["service"], c["submitted"], c["rejected"]) for c in counts["items"]] == [("complaint", 3, 1)]
    assert (await api.client.get("/v1/organizations/MUN-SAENSUK/work-queue", headers=OTHER_OFFICER)).status == 403
    assert (await api.client.get("/v1/organizations/MUN-NOWHERE/work-queue", headers=AUDITOR)).status == 404
    assert (await api.client.get("/v1/organizations/MUN-SAENSUK/daily-counts?from=yesterday", headers=AUDITOR)).status == 400


async def test_land_and_building_tax_is_assessed_from_the_value_and_paid(api: Harness) -> None:
    body = complaint(service="local.land-building-tax", details={"parcel_id": "CBI-12-3456", "tax_year": 2026})
    state = await api.submit(body)
    assert state["status"] == "in_review" and state["payment"] is None
    count = api.event_count()
    wrong = await api.act(state["id"], "assess-fee", {"assessed_value_satang": 6_000_000_000})
    assert wrong.status == 422 and "land_use" in [e["field"] for e in (await wrong.json())["errors"]]
    exempt = await api.act(state["id"], "assess-fee", {"assessed_value_satang": 4_000_000_000, "land_use": "main_residence"})
    assert exempt.status == 409 and api.event_count() == count
    # 60M baht of commercial land: 50M at 0.3% + 10M at 0.4% = 190,000 baht
    assessed = await api.act(state["id"], "assess-fee", {"assessed_value_satang": 6_000_000_000, "land_use": "commercial"}, version=state["version"])
    body = await assessed.json()
    assert assessed.status == 200 and body["status"] == "awaiting_payment" and body["payment"]["amount_satang"] == 19_000_000


async def test_a_signed_notice_for_a_reference_nobody_owes_is_kept_as_unmatched_once(settings) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import hmac
    import time
    from dataclasses import replace

    import orjson

    from tests.integration.api_harness import INTEGRATOR, FollowingProjectorThread, serving, wait_until_followed

    secret = "a-callback-secret-for-this-test-0123456789"
    async with serving(replace(settings, bank_callback_secret=secret), FollowingProjectorThread) as api:
        raw = orjson.dumps({"notice_id": "N9", "payment_id": "PAY-9", "reference": "OS69-9999999", "amount_satang": 500})
        timestamp = str(int(time.time()))
        signature = hmac.new(secret.encode(), f"{timestamp}.sim-bank.".encode() + raw, hashlib.sha256).hexdigest()
        headers = {"X-Bank-Timestamp": timestamp, "X-Bank-Signature": signature, "Content-Type": "application/json"}
        first = await api.client.post("/v1/payment-notifications/sim-bank", data=raw, headers=headers)
        assert first.status == 202
        for _ in range(100):  # the bank sends again; until the views have the first, it hears 503
            again = await api.client.post("/v1/payment-notifications/sim-bank", data=raw, headers=headers)
            if again.status != 503:
                break
            await asyncio.sleep(0.05)
        assert again.status == 202
        assert ((await first.json())["recorded"], (await again.json())["recorded"]) == (True, False)
        audit = await (await api.client.get("/v1/audit/events?type=UnmatchedPayment.Recorded", headers=AUDITOR)).json()
        assert len(audit["items"]) == 1 and audit["items"][0]["data"]["reference"] == "OS69-9999999"
        await wait_until_followed(api.settings)
        feed = await (await api.client.get("/v1/streams/events", headers=INTEGRATOR)).json()
        assert [e["type"] for e in feed["items"]] == ["th.onestop.unmatched-payment.recorded.v1"]
