"""Receipts on the in-memory store: issued with every payment received, numbered per organisation
and fiscal year, voided with a reason and keeping their number."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Iterator
from uuid import UUID

import pytest

from application.back_office import BackOffice
from application.errors import Forbidden, NotFound
from application.presentation import amount_in_thai_words, verification_document
from domain.errors import InvalidCommand, TransitionNotAllowed
from domain.organizations import SEED_ORGANIZATIONS, Directory
from domain.receipt import fiscal_year, receipt_number
from domain.revenue_codes import revenue_code
from onestop.settings import DEMO_BILLER_ID
from tests.unit.test_back_office import (CITIZEN, FEES, OFFICER, OTHER_OFFICER, SYSTEM, CountingReferences, FakeClock,
                                         _awaiting_payment)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc))


@pytest.fixture
def app(clock: FakeClock) -> Iterator[BackOffice]:
    office = BackOffice({"PERSISTENCE_MODULE": "eventsourcing.popo"}, directory=Directory(SEED_ORGANIZATIONS), fees=FEES,
                        biller_id=DEMO_BILLER_ID, references=CountingReferences(), clock=clock)
    yield office
    office.close()


@pytest.mark.parametrize(("day", "year"), [
    (date(2025, 10, 1), 2569), (date(2026, 9, 30), 2569), (date(2026, 10, 1), 2570), (date(2027, 9, 30), 2570), (date(2026, 12, 31), 2570),
])
def test_the_fiscal_year_runs_from_october_to_september_named_after_the_later_buddhist_year(day: date, year: int) -> None:
    assert fiscal_year(day) == year


def test_a_receipt_number_holds_only_digits_and_capital_letters() -> None:
    assert receipt_number(2570, 42) == "R2570000042"


def test_cash_and_a_bank_payment_each_get_the_next_number_of_the_organisations_book(app: BackOffice) -> None:
    _, first = _awaiting_payment(app)
    cash = app.record_cash(first.id, {"amount_satang": first.amount_satang}, OFFICER, None).state
    _, second = _awaiting_payment(app)
    _, outcome = app.record_bank_payment(second.id, reference=second.reference, amount_satang=second.amount_satang,
                                         provider_payment_id="bank-1", actor=SYSTEM)
    assert cash["receipt"]["number"] == "R2570000001"
    assert outcome.state["receipt"]["number"] == "R2570000002"
    receipt = app.read_receipt(UUID(outcome.state["receipt"]["id"]), OFFICER)
    assert (receipt["method"], receipt["amount_satang"], receipt["organization"]) == ("promptpay", second.amount_satang, "MUN-SAENSUK")
    assert receipt["payer"] == {"name": "สมชาย ใจดี"} and receipt["items"][0]["amount_satang"] == second.amount_satang
    assert receipt["items"][0]["revenue_code"] == revenue_code("civil.certified-copy").code


def test_a_duplicate_bank_notice_issues_no_second_receipt(app: BackOffice) -> None:
    _, payment = _awaiting_payment(app)
    for _ in range(2):
        app.record_bank_payment(payment.id, reference=payment.reference, amount_satang=payment.amount_satang, provider_payment_id="bank-1", actor=SYSTEM)
    _, other = _awaiting_payment(app)
    state = app.record_cash(other.id, {"amount_satang": other.amount_satang}, OFFICER, None).state
    assert state["receipt"]["number"] == "R2570000002"


def test_money_that_does_not_match_gets_no_receipt(app: BackOffice) -> None:
    _, payment = _awaiting_payment(app)
    verdict, outcome = app.record_bank_payment(payment.id, reference=payment.reference, amount_satang=1, provider_payment_id="bank-1", actor=SYSTEM)
    assert verdict == "discrepancy" and outcome.state["receipt"] is None


def test_the_book_starts_again_at_one_in_a_new_fiscal_year(app: BackOffice, clock: FakeClock) -> None:
    clock.at = datetime(2026, 9, 30, 16, 59, tzinfo=timezone.utc)  # 23:59 on 30 Sep in Bangkok: fiscal year 2569
    _, payment = _awaiting_payment(app)
    assert app.record_cash(payment.id, {"amount_satang": payment.amount_satang}, OFFICER, None).state["receipt"]["number"] == "R2569000001"
    clock.at = datetime(2026, 9, 30, 17, 0, tzinfo=timezone.utc)  # 00:00 on 1 Oct in Bangkok: 2570
    _, payment = _awaiting_payment(app)
    assert app.record_cash(payment.id, {"amount_satang": payment.amount_satang}, OFFICER, None).state["receipt"]["number"] == "R2570000001"


def test_a_void_needs_a_reason_keeps_the_number_and_happens_once(app: BackOffice) -> None:
    _, payment = _awaiting_payment(app)
    receipt_id = UUID(app.record_cash(payment.id, {"amount_satang": payment.amount_satang}, OFFICER, None).state["receipt"]["id"])
    with pytest.raises(InvalidCommand) as refused:
        app.void_receipt(receipt_id, {"reason": "  "}, OFFICER, None)
    assert refused.value.errors[0][0] == "reason"
    state = app.void_receipt(receipt_id, {"reason": "printed with the wrong payer name"}, OFFICER, None).state
    assert (state["status"], state["number"], state["void_reason"]) == ("void", "R2570000001", "printed with the wrong payer name")
    with pytest.raises(TransitionNotAllowed):
        app.void_receipt(receipt_id, {"reason": "again"}, OFFICER, None)
    _, payment = _awaiting_payment(app)
    assert app.record_cash(payment.id, {"amount_satang": payment.amount_satang}, OFFICER, None).state["receipt"]["number"] == "R2570000002"


def test_only_the_organisations_officers_void_and_a_citizen_sees_only_their_own(app: BackOffice) -> None:
    _, payment = _awaiting_payment(app)
    receipt_id = UUID(app.record_cash(payment.id, {"amount_satang": payment.amount_satang}, OFFICER, None).state["receipt"]["id"])
    with pytest.raises(NotFound):
        app.void_receipt(receipt_id, {"reason": "x"}, OTHER_OFFICER, None)
    assert app.read_receipt(receipt_id, CITIZEN)["number"] == "R2570000001"
    from domain.actors import Actor
    with pytest.raises(NotFound):
        app.read_receipt(receipt_id, Actor(sub="3101700111111", role="citizen", pid="3101700111111"))
    with pytest.raises(Forbidden):
        app.void_receipt(receipt_id, {"reason": "x"}, CITIZEN, None)


@pytest.mark.parametrize(("satang", "words"), [
    (123450, "หนึ่งพันสองร้อยสามสิบสี่บาทห้าสิบสตางค์"),
    (2100, "ยี่สิบเอ็ดบาทถ้วน"),
    (100000001, "หนึ่งล้านบาทหนึ่งสตางค์"),
    (50, "ห้าสิบสตางค์"),
])
def test_amounts_are_written_in_thai_words(satang: int, words: str) -> None:
    assert amount_in_thai_words(satang) == words


def test_the_verification_shows_no_payer(app: BackOffice) -> None:
    _, payment = _awaiting_payment(app)
    receipt_id = UUID(app.record_cash(payment.id, {"amount_satang": payment.amount_satang}, OFFICER, None).state["receipt"]["id"])
    shown = verification_document(app.read_receipt(receipt_id, OFFICER))
    assert set(shown) == {"number", "organization", "fiscal_year", "amount_satang", "issued_on", "status"}
