"""The public event format: CloudEvents 1.0, with personal data minimised."""

from __future__ import annotations

import orjson
from cloudevents.v1.http import from_json

from application.cloudevents import PUBLISHED_TYPES, TOPIC_OF_TYPE, cloudevent_type, cursor_of, position_of, to_cloudevent

REQUEST_ID = "651282ed-2696-5ddd-a9c2-866e722f5c98"
SUBMITTED = {
    "position": 41,
    "aggregate_id": REQUEST_ID,
    "version": 1,
    "type": "ServiceRequest.Submitted",
    "occurred_at": "2026-05-01T02:30:00.123456+00:00",
    "actor": {"sub": "3100600445635", "role": "citizen", "org": None},
    "channel": "web",
    "data": {
        "reference": "OS69-0000001", "service": "civil.house-number", "organization": "MUN-SAENSUK", "filed_at": "PAO-CBI",
        "applicant": {"national_id": "3100600445635", "name": "สมชาย ใจดี"},
        "details": {"owner_national_id": "1101700230705", "note": "เจ้าของ 3-1006-00445-63-5 โทร 0812345678"},
        "due_at": "2026-05-08T02:30:00.123456+00:00", "request_hash": "abc",
    },
}


def test_event_types_are_derived_from_topics_as_reverse_dns_kebab_case_with_a_version() -> None:
    assert cloudevent_type("onestop:ServiceRequest.Submitted") == "th.onestop.service-request.submitted.v1"
    assert cloudevent_type("Payment.Received") == "th.onestop.payment.received.v1"
    assert cloudevent_type("ServiceRequest.ApplicantVerified") == "th.onestop.service-request.applicant-verified.v1"
    assert TOPIC_OF_TYPE["th.onestop.payment.received.v1"] == "onestop:Payment.Received"
    assert "th.onestop.service-request.withdrawn.v1" in PUBLISHED_TYPES


def test_a_submitted_event_becomes_a_cloudevent_the_sdk_parses() -> None:
    event = to_cloudevent(SUBMITTED, "MUN-SAENSUK")
    parsed = from_json(orjson.dumps(event))
    assert parsed["specversion"] == "1.0"
    assert parsed["id"] == f"{REQUEST_ID}.1"
    assert parsed["source"] == "/onestop/MUN-SAENSUK"
    assert parsed["type"] == "th.onestop.service-request.submitted.v1"
    assert parsed["subject"] == REQUEST_ID
    assert parsed["time"] == "2026-05-01T02:30:00.123456+00:00"
    assert parsed["datacontenttype"] == "application/json"
    assert parsed["sequence"] == "00000000000000000041"
    assert parsed.data["reference"] == "OS69-0000001"


def test_national_ids_are_masked_and_names_left_out_wherever_they_appear() -> None:
    data = to_cloudevent(SUBMITTED, "MUN-SAENSUK")["data"]
    text = orjson.dumps(data).decode()
    assert "3100600445635" not in text and "1101700230705" not in text and "3-1006-00445-63-5" not in text
    assert "สมชาย" not in text and "name" not in data["applicant"]
    assert data["applicant"]["national_id"] == "3XXXXXXXX5635"
    assert data["details"]["owner_national_id"] == "1XXXXXXXX0705"
    assert "0812345678" in data["details"]["note"]  # ten digits: a phone number, not an ID
    assert "request_hash" not in data
    # A citizen's subject is their national ID: the published actor keeps only the role.
    assert data["actor"] == {"role": "citizen", "org": None}


def test_staff_actors_and_uuid_references_are_published_in_their_usual_form() -> None:
    assessed = {
        **SUBMITTED, "position": 42, "version": 2, "type": "ServiceRequest.FeeAssessed",
        "actor": {"sub": "officer.saensuk", "role": "officer", "org": "MUN-SAENSUK"}, "channel": "counter",
        "data": {"amount_satang": 20000, "payment_id": "c6253e7c67cd55278c129f2144f599a1"},
    }
    event = to_cloudevent(assessed, "MUN-SAENSUK")
    assert event["data"]["payment_id"] == "c6253e7c-67cd-5527-8c12-9f2144f599a1"
    assert event["data"]["actor"] == {"sub": "officer.saensuk", "role": "officer", "org": "MUN-SAENSUK"}
    assert event["id"] == f"{REQUEST_ID}.2"


def test_cursors_sort_as_the_log_does_and_read_back_to_their_position() -> None:
    positions = [1, 9, 10, 99, 100, 123456789]
    cursors = [cursor_of(p) for p in positions]
    assert sorted(cursors) == cursors
    assert [position_of(c) for c in cursors] == positions
    for bad in ("", "-1", "12a", "1" * 21):
        try:
            position_of(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was taken for a cursor")
