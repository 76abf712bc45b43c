"""BackOffice use cases on eventsourcing's in-memory store (POPO), with fakes that subclass the
real ports: no database, so they run in milliseconds."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator
from uuid import UUID

import pytest

from application.back_office import BackOffice
from application.commands import SubmitCommand, request_hash
from application.errors import Forbidden, IdempotencyKeyReused, StaleVersion
from application.ports import Clock, ReferenceIssuer
from domain.actors import Actor
from domain.errors import InvalidCommand, TransitionNotAllowed
from domain.organizations import SEED_ORGANIZATIONS, Directory
from domain.promptpay import parse_payload
from onestop.rules_file import load_rules
from onestop.settings import DEMO_BILLER_ID

CITIZEN_ID = "3100600445635"
CITIZEN = Actor(sub=CITIZEN_ID, role="citizen", pid=CITIZEN_ID)
OFFICER = Actor(sub="officer-1", role="officer", org="MUN-SAENSUK")
OTHER_OFFICER = Actor(sub="officer-2", role="officer", org="SAO-BANBUENG")
SYSTEM = Actor(sub="onestop-worker", role="system")
RULES = load_rules()
FEES = RULES.fee_schedule(date(2026, 1, 15))


class FakeClock(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class CountingReferences(ReferenceIssuer):
    def __init__(self) -> None:
        self.issued = 0

    def issue(self, count: int, at: datetime) -> list[str]:
        self.issued += count
        return [f"OS69{n:07d}" for n in range(self.issued - count + 1, self.issued + 1)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc))


@pytest.fixture
def app(clock: FakeClock) -> Iterator[BackOffice]:
    office = BackOffice({"PERSISTENCE_MODULE": "eventsourcing.popo"}, directory=Directory(SEED_ORGANIZATIONS), fees=FEES,
                        biller_id=DEMO_BILLER_ID, references=CountingReferences(), clock=clock)
    yield office
    office.close()


def body(service: str = "complaint", **changes: Any) -> dict[str, Any]:
    details = {
        "complaint": {"subject": "ไฟถนนดับ", "description": "ไฟถนนหน้าบ้านดับสามคืน"},
        "civil.certified-copy": {"document": "house-registration", "copies": 2},
        "local.land-building-tax": {"parcel_id": "CBI-12-3456", "tax_year": 2026},
    }[service]
    value: dict[str, Any] = {"service": service, "organization": "MUN-SAENSUK", "channel": "web",
                             "applicant": {"national_id": CITIZEN_ID, "name": "สมชาย ใจดี"}, "details": details}
    value.update(changes)
    return value


def submit(app: BackOffice, value: dict[str, Any], *, key: str | None = None, actor: Actor = CITIZEN) -> dict[str, Any]:
    return app.submit(SubmitCommand(body=value, actor=actor, request_hash=request_hash(value), idempotency_key=key)).state


def in_review(app: BackOffice) -> UUID:
    return UUID(submit(app, body())["id"])


def test_a_complaint_is_filed_with_a_reference_and_goes_straight_to_review(app: BackOffice) -> None:
    state = submit(app, body())
    assert state["status"] == "in_review"
    assert state["reference"] == "OS690000001"
    assert state["position"] is not None and state["position"] >= 1


def test_the_same_idempotency_key_and_body_replays_the_first_response(app: BackOffice) -> None:
    first = submit(app, body(), key="k-1")
    outcome = app.submit(SubmitCommand(body=body(), actor=CITIZEN, request_hash=request_hash(body()), idempotency_key="k-1"))
    assert outcome.replayed
    assert outcome.state["id"] == first["id"] and outcome.state["version"] == first["version"]


def test_the_same_idempotency_key_with_another_body_is_refused(app: BackOffice) -> None:
    submit(app, body(), key="k-1")
    other = body(details={"subject": "อื่น", "description": "ต่างกัน"})
    with pytest.raises(IdempotencyKeyReused):
        submit(app, other, key="k-1")


def test_a_citizen_cannot_file_for_someone_else(app: BackOffice) -> None:
    with pytest.raises(Forbidden):
        submit(app, body(applicant={"national_id": "1101700230708", "name": "สมหญิง ใจดี"}))


def test_an_invalid_submission_names_the_field(app: BackOffice) -> None:
    with pytest.raises(InvalidCommand) as raised:
        submit(app, body(details={"subject": 42, "description": "x"}))
    assert any(field == "details.subject" for field, _ in raised.value.errors)


def test_an_officer_assigns_asks_for_information_and_the_applicant_provides_it(app: BackOffice) -> None:
    request_id = in_review(app)
    assert app.act(request_id, "assign", {"officer": "officer-1"}, OFFICER, "counter", None).state["assigned_to"] == "officer-1"
    assert app.act(request_id, "request-info", {"message": "ขอรูปถ่าย"}, OFFICER, "counter", None).state["status"] == "info_requested"
    assert app.act(request_id, "provide-info", {"message": "แนบแล้ว"}, CITIZEN, "web", None).state["status"] == "in_review"


def test_an_approved_complaint_is_completed_by_hand(app: BackOffice) -> None:
    request_id = in_review(app)
    assert app.act(request_id, "approve", {}, OFFICER, "counter", None).state["status"] == "approved"
    assert app.act(request_id, "complete", {"note": "ซ่อมแล้ว"}, OFFICER, "counter", None).state["status"] == "completed"


def test_a_rejected_request_cannot_be_approved(app: BackOffice) -> None:
    request_id = in_review(app)
    assert app.act(request_id, "reject", {"reason": "ซ้ำ"}, OFFICER, "counter", None).state["status"] == "rejected"
    with pytest.raises(TransitionNotAllowed):
        app.act(request_id, "approve", {}, OFFICER, "counter", None)


def test_the_applicant_withdraws_but_may_not_decide(app: BackOffice) -> None:
    request_id = in_review(app)
    with pytest.raises(Forbidden):
        app.act(request_id, "approve", {}, CITIZEN, "web", None)
    assert app.act(request_id, "withdraw", {}, CITIZEN, "web", None).state["status"] == "withdrawn"


def test_an_officer_of_another_organisation_cannot_see_the_request(app: BackOffice) -> None:
    from application.errors import NotFound

    with pytest.raises(NotFound):
        app.act(in_review(app), "assign", {"officer": "x"}, OTHER_OFFICER, "counter", None)


def test_a_stale_if_match_version_is_refused_and_changes_nothing(app: BackOffice) -> None:
    request_id = in_review(app)
    version = app.get_request(request_id).version
    with pytest.raises(StaleVersion):
        app.act(request_id, "assign", {"officer": "officer-1"}, OFFICER, "counter", version - 1)
    assert app.get_request(request_id).version == version


def test_an_assessed_land_tax_opens_a_promptpay_payment_and_cash_settles_it(app: BackOffice) -> None:
    request_id = UUID(submit(app, body("local.land-building-tax"))["id"])
    state = app.act(request_id, "assess-fee", {"assessed_value_satang": 100_000_000_00, "land_use": "commercial"}, OFFICER, "counter", None).state
    assert state["status"] == "awaiting_payment"
    payment = app.get_payment(UUID(state["payment"]["id"]))
    assert parse_payload(payment.promptpay_payload).ref1 == state["reference"]
    outcome = app.record_cash(payment.id, {"amount_satang": payment.amount_satang}, OFFICER, None)
    assert outcome.state["status"] == "paid" and outcome.related is not None and outcome.related["status"] == "in_review"


def test_a_certified_copy_waits_for_the_registry_then_for_payment(app: BackOffice) -> None:
    request_id = UUID(submit(app, body("civil.certified-copy"))["id"])
    assert app.get_request(request_id).status == "verifying"
    answer = {"found": True, "alive": True, "name_th": "สมชาย ใจดี", "birth_date": "1960-01-01", "house_id": "1", "organization": "MUN-SAENSUK"}
    state = app.record_verification(request_id, answer, SYSTEM).state
    assert state["status"] == "awaiting_payment" and state["payment"]["amount_satang"] == 2 * 500  # 5 baht a copy of a house-registration entry (rules.toml)
    again = app.record_verification(request_id, answer, SYSTEM)
    assert again.replayed and again.state["version"] == state["version"]


def test_a_registry_answer_that_the_person_died_rejects_the_request(app: BackOffice) -> None:
    request_id = UUID(submit(app, body("civil.certified-copy"))["id"])
    state = app.record_verification(request_id, {"found": True, "alive": False}, SYSTEM).state
    assert state["status"] == "rejected"


def _awaiting_payment(app: BackOffice) -> tuple[UUID, Any]:
    request_id = UUID(submit(app, body("civil.certified-copy"))["id"])
    state = app.record_verification(request_id, {"found": True, "alive": True, "house_id": "1", "organization": "MUN-SAENSUK"}, SYSTEM).state
    return request_id, app.get_payment(UUID(state["payment"]["id"]))


def test_a_bank_payment_for_the_amount_owed_settles_the_request_once(app: BackOffice) -> None:
    request_id, payment = _awaiting_payment(app)
    verdict, outcome = app.record_bank_payment(payment.id, reference=payment.reference, amount_satang=payment.amount_satang,
                                               provider_payment_id="bank-1", actor=SYSTEM)
    assert verdict == "recorded" and outcome.state["status"] == "paid"
    assert app.get_request(request_id).status == "in_review"
    verdict, outcome = app.record_bank_payment(payment.id, reference=payment.reference, amount_satang=payment.amount_satang,
                                               provider_payment_id="bank-1", actor=SYSTEM)
    assert verdict == "duplicate" and outcome.replayed


def test_a_bank_payment_of_another_amount_is_a_discrepancy_that_moves_nothing(app: BackOffice) -> None:
    request_id, payment = _awaiting_payment(app)
    verdict, _ = app.record_bank_payment(payment.id, reference=payment.reference, amount_satang=payment.amount_satang - 1,
                                         provider_payment_id="bank-2", actor=SYSTEM)
    assert verdict == "discrepancy"
    assert app.get_payment(payment.id).status == "awaiting_payment" and app.get_request(request_id).status == "awaiting_payment"


def test_a_payment_expires_only_after_its_time_and_money_after_that_is_due_back(app: BackOffice, clock: FakeClock) -> None:
    _, payment = _awaiting_payment(app)
    assert app.expire_payment(payment.id, SYSTEM) is False
    clock.at = payment.expires_at + timedelta(seconds=1)
    assert app.expire_payment(payment.id, SYSTEM) is True
    verdict, _ = app.record_bank_payment(payment.id, reference=payment.reference, amount_satang=payment.amount_satang,
                                         provider_payment_id="bank-3", actor=SYSTEM)
    assert verdict == "refund_due"
    app.record_refund(payment.id, "refund-1", "paid after expiry", SYSTEM)
    assert app.get_payment(payment.id).status == "refunded"


def test_a_charge_and_a_job_failure_are_recorded_once(app: BackOffice) -> None:
    request_id, payment = _awaiting_payment(app)
    app.record_charge(payment.id, "charge-1", SYSTEM)
    app.record_charge(payment.id, "charge-2", SYSTEM)
    assert app.get_payment(payment.id).charge_id == "charge-1"
    app.record_job_failure(request_id, "create_charge", "job-1", "bank down", SYSTEM)
    version = app.get_request(request_id).version
    app.record_job_failure(request_id, "create_charge", "job-1", "bank down", SYSTEM)
    assert app.get_request(request_id).version == version
    assert app.get_request(request_id).action_required["job_id"] == "job-1"


def test_money_that_matches_no_payment_is_kept_once(app: BackOffice) -> None:
    assert app.record_unmatched_payment("demo-bank", "bank-9", "OS69-9999999", 5000, SYSTEM) is True
    assert app.record_unmatched_payment("demo-bank", "bank-9", "OS69-9999999", 5000, SYSTEM) is False


class LegacyReferences(ReferenceIssuer):
    """References in the shape issued before the bank-safe rule."""

    def issue(self, count: int, at: datetime) -> list[str]:
        return [f"OS69-{n:07d}" for n in range(1, count + 1)]


def test_a_request_filed_with_an_old_style_reference_is_paid_with_a_bank_safe_ref1(clock: FakeClock) -> None:
    office = BackOffice({"PERSISTENCE_MODULE": "eventsourcing.popo"}, directory=Directory(SEED_ORGANIZATIONS), fees=FEES,
                        biller_id=DEMO_BILLER_ID, references=LegacyReferences(), clock=clock)
    try:
        request_id = UUID(submit(office, body("local.land-building-tax"))["id"])
        state = office.act(request_id, "assess-fee", {"amount_satang": 5000}, OFFICER, "counter", None).state
        payment = office.get_payment(UUID(state["payment"]["id"]))
        assert state["reference"] == "OS69-0000001"
        assert payment.reference == "OS690000001" == parse_payload(payment.promptpay_payload).ref1
    finally:
        office.close()


def test_new_references_hold_only_digits_and_capital_letters() -> None:
    from infrastructure.eventstore.references import format_reference

    reference = format_reference(42, datetime(2026, 11, 30, tzinfo=timezone.utc))
    assert reference == "OS690000042"
    assert reference.isalnum() and reference.isascii() and reference.upper() == reference and len(reference) <= 20
