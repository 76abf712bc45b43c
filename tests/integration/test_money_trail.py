"""The money trail on the real stack: receipts for QR and cash payments (numbered without gaps,
also under concurrent payments), void, PDF, public verification, reconciliation with the bank
simulator's settlement file over HTTP, and the revenue export."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import time
from dataclasses import replace
from datetime import datetime
from typing import Any, AsyncIterator

import orjson
import pypdf
import pytest
from aiohttp.test_utils import TestClient, TestServer

from application.presentation import amount_in_thai_words
from domain.calendar import BANGKOK
from domain.promptpay import bill_payment_payload
from domain.receipt import fiscal_year
from infrastructure.money_trail.receipt_pdf import THAI_MONTHS
from onestop.bootstrap import reconcile
from onestop.settings import Settings
from simulators.bank import build_bank_app
from tests.integration.api_harness import AUDITOR, CITIZEN, CITIZEN_ID, OFFICER, OTHER_OFFICER, Harness, eventually, serving

SECRET = "a-callback-secret-for-the-money-trail-0123"
ORG = "MUN-SAENSUK"


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[tuple[Harness, TestClient]]:
    """The API and projector, and the bank simulator (in-process, over real HTTP) that sends its
    signed notices to the API."""
    async with serving(replace(settings, bank_callback_secret=SECRET)) as api:
        callback = str(api.client.make_url("/v1/payment-notifications/sim-bank"))
        bank_app = build_bank_app(callback_url=callback, callback_secret=SECRET, duplicate_rate=0.0, late_rate=0.0,
                                  biller_ids=(settings.promptpay_biller_id,))
        bank = TestClient(TestServer(bank_app))
        await bank.start_server()
        api.settings = replace(api.settings, bank_url=str(bank.make_url("")).rstrip("/"))
        try:
            yield api, bank
        finally:
            await bank.close()


async def open_payment(api: Harness, amount_satang: int = 123_450) -> dict[str, Any]:
    """A land-tax request assessed by the officer: its payment, awaiting money."""
    body = {"service": "local.land-building-tax", "organization": ORG, "channel": "web",
            "applicant": {"national_id": CITIZEN_ID, "name": "สมชาย ใจดี"}, "details": {"parcel_id": "CBI-12-3456", "tax_year": 2026}}
    request = await api.submit(body)
    response = await api.act(request["id"], "assess-fee", {"amount_satang": amount_satang})
    assert response.status == 200, await response.text()
    payment_id = (await response.json())["payment"]["id"]
    return await (await api.client.get(f"/v1/payments/{payment_id}", headers=OFFICER)).json()


async def pay_cash(api: Harness, payment: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post(f"/v1/payments/{payment['id']}/record-cash", json={"amount_satang": payment["amount_satang"]}, headers=OFFICER)
    assert response.status == 200, await response.text()
    return await response.json()


async def receipt_of(api: Harness, payment_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        payment = await (await api.client.get(f"/v1/payments/{payment_id}", headers=OFFICER)).json()
        return payment["receipt"]
    return await eventually(check, 10, what="the payment's receipt")


async def receipts(api: Harness, limit: int = 3) -> list[dict[str, Any]]:
    """Every receipt of the organisation this fiscal year, page by page."""
    year = fiscal_year(datetime.now(BANGKOK).date())
    found, cursor = [], None
    while True:
        query = f"/v1/receipts?organization={ORG}&fiscal_year={year}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = await (await api.client.get(query, headers=OFFICER)).json()
        found += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def signed_notice(payment: dict[str, Any], notice_id: str) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps({"notice_id": notice_id, "payment_id": notice_id, "reference": payment["reference"], "amount_satang": payment["amount_satang"]})
    timestamp = str(int(time.time()))
    signature = hmac.new(SECRET.encode(), timestamp.encode() + b".sim-bank." + body, hashlib.sha256).hexdigest()
    return body, {"X-Bank-Timestamp": timestamp, "X-Bank-Signature": signature, "Content-Type": "application/json"}


async def test_qr_and_cash_payments_get_receipts_numbered_without_gaps_even_when_paid_at_once(stack: tuple[Harness, TestClient]) -> None:
    api, bank = stack
    qr = await open_payment(api)
    paid = await bank.post("/pay", json={"payload": qr["promptpay_payload"]})
    assert paid.status == 201
    first = await receipt_of(api, qr["id"])
    cash = await pay_cash(api, await open_payment(api, 5_000))
    assert cash["receipt"]["number"] != first["number"]
    many = [await open_payment(api, 1_000 + i) for i in range(8)]
    await asyncio.gather(*(pay_cash(api, p) for p in many))
    await eventually(lambda: _count(api, 10), 10, what="ten receipts in the view")
    listed = await receipts(api)
    year = fiscal_year(datetime.now(BANGKOK).date())
    assert [r["sequence"] for r in listed] == list(range(1, 11))
    assert [r["number"] for r in listed] == [f"R{year}{n:06d}" for n in range(1, 11)]
    assert listed[0]["method"] == "promptpay" and listed[1]["method"] == "cash"
    assert {r["payment_id"] for r in listed} == {qr["id"], cash["id"], *(p["id"] for p in many)}


async def _count(api: Harness, n: int) -> bool:
    return len(await receipts(api, limit=200)) == n


async def test_a_void_needs_a_reason_keeps_its_number_and_only_the_organisation_may_void(stack: tuple[Harness, TestClient]) -> None:
    api, _ = stack
    receipt = (await pay_cash(api, await open_payment(api)))["receipt"]
    blank = await api.client.post(f"/v1/receipts/{receipt['id']}/void", json={"reason": " "}, headers=OFFICER)
    assert blank.status == 422 and [e["field"] for e in (await blank.json())["errors"]] == ["reason"]
    other = await api.client.post(f"/v1/receipts/{receipt['id']}/void", json={"reason": "wrong payer"}, headers=OTHER_OFFICER)
    assert other.status == 404
    voided = await api.client.post(f"/v1/receipts/{receipt['id']}/void", json={"reason": "wrong payer"}, headers=OFFICER)
    state = await voided.json()
    assert voided.status == 200 and (state["status"], state["number"], state["void_reason"]) == ("void", receipt["number"], "wrong payer")
    again = await api.client.post(f"/v1/receipts/{receipt['id']}/void", json={"reason": "again"}, headers=OFFICER)
    assert again.status == 409
    next_one = (await pay_cash(api, await open_payment(api)))["receipt"]
    assert next_one["number"] == receipt["number"][:-6] + f"{int(receipt['number'][-6:]) + 1:06d}"


async def test_the_pdf_receipt_has_the_amount_in_thai_words_a_buddhist_era_date_and_a_qr_to_its_verification(stack: tuple[Harness, TestClient]) -> None:
    api, _ = stack
    receipt = (await pay_cash(api, await open_payment(api, 123_450)))["receipt"]
    response = await api.client.get(f"/v1/receipts/{receipt['id']}", headers={**CITIZEN, "Accept": "application/pdf"})
    assert response.status == 200 and response.content_type == "application/pdf"
    page = pypdf.PdfReader(io.BytesIO(await response.read())).pages[0]
    text = page.extract_text()
    assert amount_in_thai_words(123_450) == "หนึ่งพันสองร้อยสามสิบสี่บาทห้าสิบสตางค์" and amount_in_thai_words(123_450) in text
    assert receipt["number"] in text and "1,234.50" in text and "สมชาย ใจดี" in text
    now = datetime.now(BANGKOK)
    assert f"{now.day} {THAI_MONTHS[now.month - 1]} {now.year + 543}" in text  # the Buddhist era
    assert f"/v1/receipts/{receipt['id']}/verify" in text.replace("\n", "")  # the URL the QR holds, printed beside it
    assert len(page.images) == 1  # the QR
    verified = await api.client.get(f"/v1/receipts/{receipt['id']}/verify")
    shown = await verified.json()
    assert verified.status == 200 and shown["number"] == receipt["number"] and shown["amount_satang"] == 123_450
    assert "payer" not in shown and CITIZEN_ID not in orjson.dumps(shown).decode() and "สมชาย" not in orjson.dumps(shown).decode()


async def test_reconciliation_finds_matched_missing_and_unknown_lines(stack: tuple[Harness, TestClient]) -> None:
    api, bank = stack
    matched = await open_payment(api, 10_000)
    assert (await bank.post("/pay", json={"payload": matched["promptpay_payload"]})).status == 201
    await receipt_of(api, matched["id"])
    missing = await open_payment(api, 20_000)  # the notice comes, but the bank never settles it
    body, headers = signed_notice(missing, "ONLY-NOTICE-1")
    assert (await api.client.post("/v1/payment-notifications/sim-bank", data=body, headers=headers)).status == 200
    await receipt_of(api, missing["id"])
    stray = bill_payment_payload(biller_id=api.settings.promptpay_biller_id, ref1="ZZ0000001", amount_satang=700)
    assert (await bank.post("/pay", json={"payload": stray})).status == 201  # settled, matches nothing
    await pay_cash(api, await open_payment(api, 30_000))  # cash is not in the bank's file
    await eventually(lambda: _count(api, 3), 10, what="three receipts in the view")
    day = datetime.now(BANGKOK).date()
    results = await reconcile(api.settings, day)
    assert {r["organization"] for r in results} >= {ORG, "UNASSIGNED"}
    response = await api.client.get(f"/v1/reconciliations?organization={ORG}&day={day.isoformat()}", headers=OFFICER)
    shown = await response.json()
    assert response.status == 200 and shown["matched"] == {"count": 1, "amount_satang": 10_000}
    assert [m["reference"] for m in shown["missing"]] == [missing["reference"]] and shown["unknown"] == [] and shown["balanced"] is False
    unassigned = await (await api.client.get(f"/v1/reconciliations?organization=UNASSIGNED&day={day.isoformat()}", headers=AUDITOR)).json()
    assert [(u["reference"], u["amount_satang"]) for u in unassigned["unknown"]] == [("ZZ0000001", 700)]
    assert (await reconcile(api.settings, day)) and (await (await api.client.get(
        f"/v1/reconciliations?organization={ORG}&day={day.isoformat()}", headers=OFFICER)).json())["runs"] == 1
    other = await api.client.get(f"/v1/reconciliations?organization={ORG}&day={day.isoformat()}", headers=OTHER_OFFICER)
    assert other.status == 403


async def test_the_revenue_export_has_a_line_per_receipt_with_its_revenue_code(stack: tuple[Harness, TestClient]) -> None:
    api, _ = stack
    kept = (await pay_cash(api, await open_payment(api, 123_450)))["receipt"]
    voided = (await pay_cash(api, await open_payment(api, 5_000)))["receipt"]
    assert (await api.client.post(f"/v1/receipts/{voided['id']}/void", json={"reason": "paid twice"}, headers=OFFICER)).status == 200
    day = datetime.now(BANGKOK).date().isoformat()

    async def export() -> list[dict[str, str]] | None:
        response = await api.client.get(f"/v1/revenue?organization={ORG}&day={day}", headers=OFFICER)
        assert response.status == 200 and response.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        return rows if len(rows) == 2 and rows[1]["status"] == "void" else None

    rows = await eventually(export, 10, what="both receipts in the export")
    assert [(r["receipt_number"], r["revenue_code"], r["amount"], r["status"]) for r in rows] == [
        (kept["number"], "41100000", "1234.50", "issued"), (voided["number"], "41100000", "0.00", "void")]
    assert rows[0]["revenue_code_confirmed"] == "false" and rows[0]["description"] == "ภาษีที่ดินและสิ่งปลูกสร้าง"
    refused = await api.client.get(f"/v1/revenue?organization={ORG}", headers=OFFICER)
    assert refused.status == 400 and [e["field"] for e in (await refused.json())["errors"]] == ["day"]


async def test_the_sweeper_reconciles_the_day_before_once_each_morning(settings: Settings) -> None:
    from datetime import timedelta, timezone

    from infrastructure.jobs.sweeps import Sweeper
    from onestop.bootstrap import build_back_office

    class At:
        def __init__(self, at: datetime) -> None:
            self.at = at

        def now(self) -> datetime:
            return self.at

    clock = At(datetime(2026, 12, 3, 5, 59, tzinfo=BANGKOK))
    app = build_back_office(settings, clock=clock)  # type: ignore[arg-type]
    days: list[Any] = []
    try:
        sweeper = Sweeper(app, lambda job, delay: None, stale_seconds=60, reconcile=days.append)
        assert sweeper.reconcile_yesterday() is None  # before six in the morning in Bangkok
        clock.at = datetime(2026, 12, 3, 6, 0, tzinfo=BANGKOK).astimezone(timezone.utc)
        assert sweeper.reconcile_yesterday() is not None and sweeper.reconcile_yesterday() is None
        clock.at += timedelta(days=1)
        sweeper.reconcile_yesterday()
        assert [d.isoformat() for d in days] == ["2026-12-02", "2026-12-03"]
    finally:
        app.close()
