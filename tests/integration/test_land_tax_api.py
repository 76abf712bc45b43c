"""The land-tax year over HTTP on the real stack: roll import (CSV and NDJSON) → notices →
the owner's self-check → QR payment of instalment 1 → instalment 2 paid late with penalties →
the notice paid; and who may see what."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import orjson
import pytest

from api.app_key import CTX
from application.ports import Clock
from domain.promptpay import parse_payload
from onestop.settings import Settings
from tests.integration.api_harness import CITIZEN, CITIZEN_ID, OFFICER, OTHER_CITIZEN, OTHER_OFFICER, PAO_OFFICER, Harness, eventually, serving

SECRET = "a-callback-secret-for-the-land-tax-test-0123"
COMPANY = "0105551234567"
CSV_ROLL = (
    "parcel_id,owner_id,owner_kind,owner_name,land_use,value_satang,vacant_years\n"
    f"SS-001,{CITIZEN_ID},individual,สมชาย ใจดี,commercial,300000000,\n"          # 3M baht at 0.3%: 9,000 baht
    f"SS-002,{CITIZEN_ID},individual,สมชาย ใจดี,main_residence,400000000,\n"      # exempt to 50M baht
    f"SS-003,{COMPANY},juristic,บริษัท ตัวอย่าง จำกัด,main_residence,1000000000,\n"  # juristic: residential 0.02%
    "SS-004,3100600445636,individual,ผิด,commercial,1,\n"                           # bad check digit
    f"SS-005,{CITIZEN_ID},individual,สมชาย ใจดี,farm,1,\n"                           # unknown use
)


class ControlledClock(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def signed(body: bytes, at: datetime) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    signature = hmac.new(SECRET.encode(), timestamp.encode() + b".sim-bank." + body, hashlib.sha256).hexdigest()
    return {"X-Bank-Timestamp": timestamp, "X-Bank-Signature": signature, "Content-Type": "application/json"}


@pytest.fixture
async def tax_api(settings: Settings) -> AsyncIterator[tuple[Harness, ControlledClock]]:
    async with serving(replace(settings, bank_callback_secret=SECRET)) as harness:
        clock = ControlledClock(datetime(2026, 2, 2, 3, 0, tzinfo=timezone.utc))
        harness.client.app[CTX].app.clock = clock
        yield harness, clock


async def _import(api: Harness, body: str, content_type: str, headers: dict[str, str] = OFFICER) -> Any:
    return await api.client.post("/v1/land-tax/2569/parcels", data=body.encode(), headers={**headers, "Content-Type": content_type})


async def _pay_by_bank(api: Harness, payment: dict[str, Any], clock: ControlledClock, provider_id: str) -> dict[str, Any]:
    body = orjson.dumps({"payment_id": provider_id, "reference": payment["reference"], "amount_satang": payment["amount_satang"]})
    response = await api.client.post("/v1/payment-notifications/sim-bank", data=body, headers=signed(body, clock.at))
    assert response.status == 200, await response.text()
    return await response.json()


async def _notice(api: Harness, notice_id: str, on: str, headers: dict[str, str] = CITIZEN) -> dict[str, Any]:
    response = await api.client.get(f"/v1/land-tax/notices/{notice_id}?on={on}", headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_the_whole_year_from_roll_to_a_notice_paid_late_with_penalties(tax_api: tuple[Harness, ControlledClock]) -> None:
    api, clock = tax_api
    response = await _import(api, CSV_ROLL, "text/csv")
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert (answer["accepted"], answer["unchanged"]) == (3, 0)
    assert [(r["line"], r["field"]) for r in answer["rejected"]] == [(5, "owner_id"), (6, "land_use")]

    again = await (await _import(api, CSV_ROLL, "text/csv")).json()
    assert (again["accepted"], again["unchanged"]) == (0, 3)
    revaluation = orjson.dumps({"parcel_id": "SS-001", "owner_id": CITIZEN_ID, "owner_kind": "individual", "owner_name": "สมชาย ใจดี",
                                "land_use": "commercial", "value_satang": 400_000_000}).decode()  # now 4M baht: 12,000 baht
    revalued_response = await _import(api, revaluation + "\n{not json\n", "application/x-ndjson")
    revalued = await revalued_response.json()
    assert (revalued["accepted"], revalued["unchanged"]) == (1, 0)
    assert revalued["rejected"] == [{"line": 2, "field": "(line)", "message": "is not JSON"}]

    assert int(revalued_response.headers["OneStop-Position"]) > 0
    issuing = await api.client.post("/v1/land-tax/2569/notices", headers=OFFICER)
    issued = await issuing.json()
    assert (issued["issued"], issued["already_issued"]) == (2, 0)
    # Read your writes: the notices are listed at once with the position.
    at = int(issuing.headers["OneStop-Position"])
    listed = await api.client.get(f"/v1/land-tax/notices?tax_year=2569&min_position={at}", headers=OFFICER)
    assert listed.status == 200 and len((await listed.json())["items"]) == 2
    assert (await (await api.client.post("/v1/land-tax/2569/notices", headers=OFFICER)).json())["issued"] == 0

    async def own_notices() -> list[dict[str, Any]]:
        page = await (await api.client.get(f"/v1/land-tax/notices?owner_id={CITIZEN_ID}&tax_year=2569", headers=CITIZEN)).json()
        return page["items"]

    [notice] = await eventually(own_notices, 10, "the citizen's notice in the views")
    assert notice["owner_id"] == CITIZEN_ID and notice["number"].isalnum() and notice["number"].upper() == notice["number"]
    assert [(p["parcel_id"], p["tax_satang"]) for p in notice["parcels"]] == [("SS-001", 1_200_000), ("SS-002", 0)]
    assert notice["tax_satang"] == 1_200_000 and notice["due_date"] == "2026-06-30" and notice["status"] == "issued"
    assert [i["amount_satang"] for i in notice["instalments"]] == [400_000, 400_000, 400_000]

    # Instalment 1, paid by QR on time.
    clock.at = datetime(2026, 6, 15, 3, 0, tzinfo=timezone.utc)
    response = await api.client.post(f"/v1/land-tax/notices/{notice['id']}/payments", json={"instalment": 1}, headers=CITIZEN)
    assert response.status == 201, await response.text()
    assert int(response.headers["OneStop-Position"]) > at
    first = await response.json()
    assert first["notice_id"] == notice["id"] and first["amount_satang"] == 400_000 and first["reference"] == notice["number"]
    assert parse_payload(first["promptpay_payload"]).ref1 == notice["number"]
    assert first["expires_at"].startswith("2026-06-15T16:59:59")
    paid_first = await _pay_by_bank(api, first, clock, "PAY-LT-1")
    assert paid_first["status"] == "recorded"
    # The bank's answer carries the log position: a read may ask to wait until the views have it.
    after_first = await _notice(api, notice["id"], f"2026-06-15&min_position={paid_first['payment']['position']}")
    assert after_first["status"] == "partly_paid" and after_first["paid_satang"] == 400_000
    assert [i["status"] for i in after_first["instalments"]] == ["paid", "unpaid", "unpaid"]

    # Instalment 2 missed (31 July): on 10 August everything unpaid bears 10% and a month's 1%.
    late_view = await _notice(api, notice["id"], "2026-08-10")
    assert late_view["status"] == "overdue"
    assert late_view["amount_due"] == {"on": "2026-08-10", "tax_satang": 800_000, "surcharge_satang": 80_000, "interest_satang": 8_000, "total_satang": 888_000}
    clock.at = datetime(2026, 8, 10, 3, 0, tzinfo=timezone.utc)
    response = await api.client.post(f"/v1/land-tax/notices/{notice['id']}/payments", json={"instalment": 2}, headers=CITIZEN)
    assert response.status == 201, await response.text()
    late = await response.json()
    assert late["amount_satang"] == 888_000
    assert (await _pay_by_bank(api, late, clock, "PAY-LT-2"))["status"] == "recorded"

    async def paid() -> dict[str, Any] | None:
        document = await _notice(api, notice["id"], "2026-08-10")
        return document if document["status"] == "paid" else None

    final = await eventually(paid, 10, "the notice paid")
    assert final["amount_due"]["total_satang"] == 0 and [i["status"] for i in final["instalments"]] == ["paid", "paid", "paid"]
    payment = await (await api.client.get(f"/v1/payments/{late['id']}", headers=CITIZEN)).json()
    assert payment["status"] == "paid" and payment["request_id"] is None


async def test_cash_at_the_counter_pays_a_notice_and_a_warning_raises_the_surcharge(tax_api: tuple[Harness, ControlledClock]) -> None:
    api, clock = tax_api
    row = {"parcel_id": "C-1", "owner_id": COMPANY, "owner_kind": "juristic", "owner_name": "บริษัท ตัวอย่าง จำกัด",
           "land_use": "commercial", "value_satang": 50_000_000}  # 500k baht: 1,500 baht, no instalments
    assert (await _import(api, orjson.dumps(row).decode(), "application/x-ndjson")).status == 200
    await api.client.post("/v1/land-tax/2569/notices", headers=OFFICER)

    async def listed() -> list[dict[str, Any]]:
        return (await (await api.client.get("/v1/land-tax/notices?tax_year=2569", headers=OFFICER)).json())["items"]

    [notice] = await eventually(listed, 10, "the notice in the officer's list")
    assert notice["owner_id"] == "0XXXXXXXX4567" and notice["instalments"] is None
    clock.at = datetime(2026, 9, 1, 3, 0, tzinfo=timezone.utc)
    response = await api.client.post(f"/v1/land-tax/notices/{notice['id']}/warnings", json={"deadline": "2026-09-30"}, headers=OFFICER)
    assert response.status == 201, await response.text()
    assert int(response.headers["OneStop-Position"]) > 0
    warned = await response.json()
    # within the warning's period: 20% (s.69); July, August and a day of September: 3 months (s.70)
    assert warned["amount_due"]["surcharge_satang"] == 30_000 and warned["amount_due"]["interest_satang"] == 4_500
    opened = await (await api.client.post(f"/v1/land-tax/notices/{notice['id']}/payments", json={"instalment": None}, headers=OFFICER)).json()
    assert opened["amount_satang"] == 184_500
    response = await api.client.post(f"/v1/payments/{opened['id']}/record-cash", json={"amount_satang": 184_500}, headers=OFFICER)
    assert response.status == 200, await response.text()
    paid = await response.json()
    assert paid["notice"]["status"] == "paid"
    # The money trail: the receipt, numbered in the organisation's book, with the tax and each
    # penalty on its own line, read over HTTP as the owner and the officer would.
    receipt = await api.client.get(f"/v1/receipts/{paid['receipt']['id']}", headers=OFFICER)
    assert receipt.status == 200, await receipt.text()
    receipt = await receipt.json()
    assert receipt["amount_satang"] == 184_500 and receipt["number"].startswith("R")
    assert [i["description"].split(" (")[0] for i in receipt["items"]] == ["ภาษีที่ดินและสิ่งปลูกสร้าง", "เบี้ยปรับ", "เงินเพิ่ม"]
    assert sum(i["amount_satang"] for i in receipt["items"]) == 184_500


async def test_a_citizen_sees_only_their_notices_and_another_organisations_officer_gets_404(tax_api: tuple[Harness, ControlledClock]) -> None:
    api, _ = tax_api
    await _import(api, CSV_ROLL, "text/csv")
    await api.client.post("/v1/land-tax/2569/notices", headers=OFFICER)

    async def listed() -> list[dict[str, Any]]:
        return (await (await api.client.get("/v1/land-tax/notices", headers=OFFICER)).json())["items"]

    notices = await eventually(listed, 10, "notices in the views")
    mine = next(n for n in notices if n["owner_id"].endswith("5635"))
    assert (await api.client.get(f"/v1/land-tax/notices/{mine['id']}", headers=OTHER_CITIZEN)).status == 404
    assert (await api.client.get(f"/v1/land-tax/notices/{mine['id']}", headers=OTHER_OFFICER)).status == 404
    assert (await api.client.post(f"/v1/land-tax/notices/{mine['id']}/payments", json={}, headers=OTHER_OFFICER)).status == 404
    assert (await (await api.client.get("/v1/land-tax/notices", headers=OTHER_CITIZEN)).json())["items"] == []
    assert (await (await api.client.get("/v1/land-tax/notices", headers=OTHER_OFFICER)).json())["items"] == []
    citizen = await (await api.client.get(f"/v1/land-tax/notices?owner_id={COMPANY}", headers=CITIZEN)).json()
    assert citizen["items"] == []


async def test_a_pao_officer_may_not_import_a_roll_and_a_bad_header_names_the_field(tax_api: tuple[Harness, ControlledClock]) -> None:
    api, _ = tax_api
    count = api.event_count()
    refused = await _import(api, CSV_ROLL, "text/csv", PAO_OFFICER)
    assert refused.status == 403 and refused.content_type == "application/problem+json"
    bad = await _import(api, "parcel_id,owner,land_use\nX,1,commercial\n", "text/csv")
    assert bad.status == 422 and (await bad.json())["errors"][0]["field"] == "owner"
    wrong_type = await _import(api, CSV_ROLL, "application/json")
    assert wrong_type.status == 415
    assert (await _import(api, CSV_ROLL, "text/csv", {**OFFICER})).status == 200
    assert api.event_count() > count
    year = await api.client.post("/v1/land-tax/1999/parcels", data=b"x", headers={**OFFICER, "Content-Type": "text/csv"})
    assert year.status == 400 and (await year.json())["errors"][0]["field"] == "tax_year"


async def test_rebuilding_the_views_in_small_batches_gives_the_same_parcels_and_notices(tax_api: tuple[Harness, ControlledClock]) -> None:
    from infrastructure.views.projector import Projector
    from onestop.bootstrap import build_back_office, build_views

    api, clock = tax_api
    await _import(api, CSV_ROLL, "text/csv")
    revaluation = orjson.dumps({"parcel_id": "SS-001", "owner_id": CITIZEN_ID, "owner_kind": "individual", "owner_name": "สมชาย ใจดี",
                                "land_use": "commercial", "value_satang": 350_000_000}).decode()
    await _import(api, revaluation, "application/x-ndjson")
    await api.client.post("/v1/land-tax/2569/notices", headers=OFFICER)
    [notice] = await eventually(lambda: _own(api), 10, "the notice in the views")
    clock.at = datetime(2026, 6, 15, 3, 0, tzinfo=timezone.utc)
    opened = await (await api.client.post(f"/v1/land-tax/notices/{notice['id']}/payments", json={"instalment": 1}, headers=CITIZEN)).json()
    head = (await _pay_by_bank(api, opened, clock, "PAY-RB-1"))["payment"]["position"]
    assert await api.client.app[CTX].read_model.wait_for_position(head, 10)
    api.stop_projector()
    app = build_back_office(api.settings)
    try:
        views = build_views(app)
        before = views.checksum()
        assert before["land_tax_parcels"].startswith("3:") and before["land_tax_notices"].startswith("2:")
        Projector(app, views, batch_size=2).rebuild(api.settings.database.conninfo())
        assert views.checksum() == before
    finally:
        app.close()


async def _own(api: Harness) -> list[dict[str, Any]]:
    return (await (await api.client.get("/v1/land-tax/notices", headers=CITIZEN)).json())["items"]
