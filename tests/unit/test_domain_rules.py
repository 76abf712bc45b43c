from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from application.json_schema import check
from domain.actors import Actor
from domain.catalogue import SERVICES, FeeSchedule
from domain.errors import InvalidCommand, RequestAlreadyDecided, TransitionNotAllowed
from domain.national_id import is_valid_national_id, national_id_check_digit
from domain.organizations import SEED_ORGANIZATIONS, Directory, OrganizationKind
from domain.payment import Payment
from domain.service_request import ServiceRequest
from domain.submission import check_submission

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=timezone.utc)
CITIZEN = Actor("3100600445635", "citizen", pid="3100600445635")
OFFICER = Actor("officer.a", "officer", org="MUN-SAENSUK")
DIRECTORY = Directory(SEED_ORGANIZATIONS)


def new_request(service: str = "complaint") -> ServiceRequest:
    return ServiceRequest.file(
        id=uuid4(), at=NOW, actor=CITIZEN, channel="web", reference="OS690000001", service=service,
        organization="MUN-SAENSUK", filed_at="MUN-SAENSUK",
        applicant={"national_id": "3100600445635", "name": "สมชาย"}, details={}, due_at=NOW + timedelta(days=15),
        request_hash="h",
    )


def test_the_published_sample_national_id_is_valid_and_a_changed_digit_is_not() -> None:
    assert is_valid_national_id("3100600445635")
    assert not is_valid_national_id("3100600445636")
    assert not is_valid_national_id("310060044563")
    assert not is_valid_national_id("31006004456３5")
    assert national_id_check_digit("310060044563") == 5


def test_a_request_in_review_can_be_approved_and_then_completed() -> None:
    request = new_request()
    request.start_review(CITIZEN, "web", NOW)
    request.approve("ok", OFFICER, "counter", NOW)
    request.complete({}, OFFICER, "counter", NOW)
    assert request.status == "completed"
    assert [type(e).__name__ for e in request.collect_events()] == ["Submitted", "ReviewStarted", "Approved", "Completed"]


def test_an_approved_request_cannot_be_approved_again() -> None:
    request = new_request()
    request.start_review(CITIZEN, "web", NOW)
    request.approve(None, OFFICER, "counter", NOW)
    with pytest.raises(RequestAlreadyDecided):
        request.approve(None, OFFICER, "counter", NOW)


def test_a_withdrawn_request_cannot_be_approved() -> None:
    request = new_request()
    request.start_review(CITIZEN, "web", NOW)
    request.withdraw("changed my mind", CITIZEN, "web", NOW)
    with pytest.raises(RequestAlreadyDecided):
        request.approve(None, OFFICER, "counter", NOW)


def test_information_can_be_provided_only_when_it_was_requested() -> None:
    request = new_request()
    request.start_review(CITIZEN, "web", NOW)
    with pytest.raises(TransitionNotAllowed):
        request.provide_info("here", CITIZEN, "web", NOW)
    request.request_info("send a photo", OFFICER, "counter", NOW)
    request.provide_info("here", CITIZEN, "web", NOW)
    assert request.status == "in_review"


def test_every_event_records_the_actor_and_channel() -> None:
    request = new_request()
    request.start_review(CITIZEN, "web", NOW)
    request.assign("officer.b", OFFICER, "counter", NOW)
    events = request.collect_events()
    assert events[-1].actor == {"sub": "officer.a", "role": "officer", "org": "MUN-SAENSUK"}
    assert events[-1].channel == "counter"
    assert all(e.TOPIC.startswith("onestop:ServiceRequest.") for e in events)


def test_a_payment_for_the_wrong_amount_is_not_received() -> None:
    payment = Payment.open(id=uuid4(), at=NOW, actor=CITIZEN, channel="web", request_id=uuid4(), reference="OS691",
                           organization="MUN-SAENSUK", amount_satang=4000, promptpay_payload="x", expires_at=NOW)
    with pytest.raises(Exception, match="does not match"):
        payment.receive(3999, "cash", None, OFFICER, "counter", NOW)
    payment.receive(4000, "cash", None, OFFICER, "counter", NOW)
    assert payment.status == "paid"


def test_a_certified_copy_costs_the_configured_fee_per_copy_of_its_document_kind() -> None:
    org = DIRECTORY.get("MUN-SAENSUK")
    fees = FeeSchedule(certified_copy_satang={"house-registration": 500, "id-card-record": 1000})
    assert SERVICES["civil.certified-copy"].fee_satang({"document": "house-registration", "copies": 3}, org, fees) == 1500
    assert SERVICES["civil.certified-copy"].fee_satang({"document": "id-card-record", "copies": 3}, org, fees) == 3000


def test_the_hotel_fee_uses_the_provincial_rate_and_rounds_half_up() -> None:
    org = DIRECTORY.get("PAO-SNK")
    fees = FeeSchedule(hotel_fee_rate_bp={"PAO-SNK": 200})
    assert SERVICES["local.hotel-fee"].fee_satang({"month": "2026-10", "room_revenue_satang": 1_000_025}, org, fees) == 20001


def test_seed_data_has_the_five_pilot_provinces_with_local_organisations_in_each() -> None:
    paos = [o for o in SEED_ORGANIZATIONS if o.kind is OrganizationKind.PAO]
    assert {o.province for o in paos} == {"Chonburi", "Phatthalung", "Phrae", "Sakon Nakhon", "Suphanburi"}
    for pao in paos:
        kinds = {o.kind for o in SEED_ORGANIZATIONS if o.province == pao.province}
        assert kinds == {OrganizationKind.PAO, OrganizationKind.MUNICIPALITY, OrganizationKind.SAO}


def _body(**changes: object) -> dict:
    body = {"service": "complaint", "organization": "MUN-SAENSUK", "channel": "web",
            "applicant": {"national_id": "3100600445635", "name": "สมชาย"},
            "details": {"subject": "ไฟดับ", "description": "ไฟถนนดับ"}}
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"service": "civil.nothing"}, "service"),
        ({"organization": "MUN-NOWHERE"}, "organization"),
        ({"service": "local.hotel-fee", "details": {"month": "2026-10", "room_revenue_satang": 100}}, "organization"),
        ({"applicant": {"national_id": "3100600445636", "name": "x"}}, "applicant.national_id"),
        ({"details": {"subject": "x"}}, "details.description"),
        ({"details": {"subject": "x", "description": "y", "colour": "red"}}, "details.colour"),
        ({"details": {"subject": 5, "description": "y"}}, "details.subject"),
        ({"channel": "fax"}, "channel"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_submission_names_the_field(changes: dict, field: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        check_submission(_body(**changes), DIRECTORY, check)
    assert field in [f for f, _ in caught.value.errors]


def test_a_flyer_permit_must_not_end_before_it_starts() -> None:
    details = {"description": "d", "area": "a", "start_date": "2026-12-05", "end_date": "2026-12-01", "quantity": 10}
    with pytest.raises(InvalidCommand) as caught:
        check_submission(_body(service="local.flyer-permit", details=details), DIRECTORY, check)
    assert ("details.end_date", "must not be before start_date") in caught.value.errors
