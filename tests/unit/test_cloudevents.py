"""The public event format: CloudEvents 1.0, with personal data minimised."""

from __future__ import annotations

from typing import Any

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
        "details": {"owner_national_id": "1101700230705", "building_permit_no": "กค 12/2569",
                    "address": "เจ้าของ 3-1006-00445-63-5 โทร 0812345678 บ้านเลขที่ 12/3 หมู่ 4"},
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
    # Only the fields the catalogue's details may hold are published; free text is masked.
    assert "owner_national_id" not in data["details"]
    assert data["details"]["address"] == "เจ้าของ 3XXXXXXXX5635 โทร XXXXXXXXXX บ้านเลขที่ 12/3 หมู่ 4"
    assert data["details"]["building_permit_no"] == "กค 12/2569"
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


# -- the allowlist, and personal data written every way ------------------------------------------

NATIONAL_ID_FORMS = [
    "3100600445635", "3 1006 00445 63 5", "3-1006-00445-63-5", "3.1006.00445.63.5", "๓๑๐๐๖๐๐๔๔๕๖๓๕",
    "3 - 1006 - 00445 - 63 - 5", "3\u200b1006\u200b00445\u200b63\u200b5", "๓-๑๐๐๖-๐๐๔๔๕-๖๓-๕", "１１０１７００２３０７０５",
]
PHONE_FORMS = ["081-234-5678", "0812345678", "+66 81 234 5678", "02-123-4567", "(02) 123 4567", "๐๘๑๒๓๔๕๖๗๘", "+66812345678"]
NAMES = ["สมชาย", "ใจดี", "Somchai", "Jaidee"]
BIRTH_DATE = "1950-03-04"
BANK_ACCOUNT = "4560123789"
# Free text as citizens and officers write it: IDs glued to Thai and Latin letters, or spaced,
# dashed, dotted, in Thai digits; phone numbers in the usual forms.
POISON = " ".join(
    [f"เลขบัตร{NATIONAL_ID_FORMS[0]}ครับ", f"ID{NATIONAL_ID_FORMS[0]}x"]
    + [f"บัตร {form} ค่ะ" for form in NATIONAL_ID_FORMS[1:]]
    + [f"โทร{form}นะ" for form in PHONE_FORMS]
)
# What a careless caller or an outside system may put beside the fields a type names.
PERSONAL_EXTRAS = {
    "first_name_th": "สมชาย", "last_name_th": "ใจดี", "first_name_en": "Somchai", "last_name_en": "Jaidee",
    "name": "สมชาย ใจดี", "name_th": "สมชาย ใจดี", "full_name": "Somchai Jaidee", "birth_date": BIRTH_DATE,
    "birthdate": BIRTH_DATE, "national_id": "3100600445635", "pid": "3100600445635", "phone": "0812345678",
    "bank_account": BANK_ACCOUNT, "address_th": "12/3 หมู่ 4 ต.แสนสุข โทร 0812345678", "owner_national_id": "3100600445635",
}


def _poisoned(rules: Any) -> dict[str, Any]:
    """Data for ``rules``: every field it names holds personal data written some way, and
    every level has personal fields it does not name."""
    from application.cloudevents import KEEP, NATIONAL_ID, UUID_HEX

    data: dict[str, Any] = dict(PERSONAL_EXTRAS)
    for key, rule in rules.items():
        if isinstance(rule, dict):
            data[key] = _poisoned(rule)
        elif rule == NATIONAL_ID:
            data[key] = "3100600445635"
        elif rule == UUID_HEX:
            data[key] = "c6253e7c67cd55278c129f2144f599a1"
        elif rule == KEEP:
            data[key] = 100 if key.endswith("satang") else "OneStop-made"
        else:
            data[key] = POISON
    return data


def _leaks(text: str) -> list[str]:
    found = [form for form in NATIONAL_ID_FORMS + PHONE_FORMS + NAMES if form in text]
    found += [value for value in (BIRTH_DATE, BANK_ACCOUNT, "5678", "4567") if value in text]
    digits = "".join(c for c in text if c.isdigit())
    found += [f"digits {d}" for d in ("100600445", "1017002307", "812345678", "21234567") if d in digits]
    return found


def test_every_published_event_type_names_the_fields_it_carries() -> None:
    from application.cloudevents import PUBLISHED_FIELDS

    names = {topic.partition(":")[2] for topic in TOPIC_OF_TYPE.values()}
    assert names == set(PUBLISHED_FIELDS), "each published type needs an allowlist, and only those"
    for rules in PUBLISHED_FIELDS.values():
        text = orjson.dumps(rules).decode()
        for personal in ("name", "birth", "bank_account", "request_hash", "phone"):
            assert personal not in text


def test_no_event_type_publishes_national_ids_phones_names_or_birth_dates_however_they_are_written() -> None:
    from application.cloudevents import PUBLISHED_FIELDS

    for position, (name, rules) in enumerate(sorted(PUBLISHED_FIELDS.items()), start=1):
        document = {
            "position": position, "aggregate_id": REQUEST_ID, "version": position, "type": name,
            "occurred_at": "2026-05-01T02:30:00+00:00", "channel": "counter",
            "actor": {"sub": "officer 3-1006-00445-63-5 โทร 081-234-5678", "role": "officer", "org": "MUN-SAENSUK"},
            "data": _poisoned(rules),
        }
        event = to_cloudevent(document, "MUN-SAENSUK")
        text = orjson.dumps(event).decode()
        assert _leaks(text) == [], (name, text)
        assert not set(PERSONAL_EXTRAS) & set(event["data"]), name
        assert from_json(orjson.dumps(event))["type"] == cloudevent_type(name)


def test_a_registry_answer_is_published_as_its_verdict_without_the_person() -> None:
    verified = {
        **SUBMITTED, "position": 43, "version": 3, "type": "ServiceRequest.ApplicantVerified",
        "actor": {"sub": "worker", "role": "system", "org": None}, "channel": "system",
        "data": {"registry": {
            "national_id": "3100600445635", "found": True, "alive": True, "name_th": "สมชาย ใจดี", "birth_date": BIRTH_DATE,
            "first_name_th": "สมชาย", "last_name_th": "ใจดี", "house_id": "20010012345", "organization": "MUN-SAENSUK",
            "reason": None, "monthly_allowance_satang": 70000,
            "to_house": {"house_id": "20010099999", "organization": "MUN-SAENSUK", "owner_national_id": "1101700230705",
                         "address_th": "99 หมู่ 1 ต.แสนสุข", "address": {"house_no": "99"}},
            "people": [{"national_id": "1101700230705", "first_name_en": "Malee"}],
        }},
    }
    data = to_cloudevent(verified, "MUN-SAENSUK")["data"]
    assert data["registry"] == {
        "found": True, "alive": True, "reason": None, "organization": "MUN-SAENSUK", "monthly_allowance_satang": 70000,
        "to_house": {"house_id": "20010099999", "organization": "MUN-SAENSUK"},
    }


def test_free_text_masking_finds_ids_and_phones_next_to_letters_and_leaves_other_numbers() -> None:
    from application.cloudevents import mask_text

    for form in NATIONAL_ID_FORMS:
        masked = mask_text(f"เลขบัตร{form}ครับ")
        assert masked.startswith("เลขบัตร") and masked.endswith("ครับ") and "XXXXXXXX" in masked, (form, masked)
    for form in PHONE_FORMS:
        masked = mask_text(f"Tel{form}เบอร์")
        assert not any(c.isdigit() for c in masked), (form, masked)
    assert mask_text("ID3100600445635x") == "ID3XXXXXXXX5635x"
    plain = "นัด 2026-05-01 10:30 บ้านเลขที่ 12/3 หมู่ 4 บ้าน 20010012345 ราคา 1,500,000 บาท สายด่วน 1111"
    assert mask_text(plain) == plain


def test_fields_of_an_unexpected_shape_are_left_out_or_masked_and_never_stop_the_mapping() -> None:
    odd = {
        **SUBMITTED, "type": "ServiceRequest.FeeAssessed",
        "data": {"amount_satang": {"national_id": "3100600445635"}, "payment_id": "not-a-uuid 0812345678"},
    }
    assert to_cloudevent(odd, None)["data"] == {"payment_id": "not-a-uuid XXXXXXXXXX", "actor": {"role": "citizen", "org": None}, "channel": "web"}
    unknown = {**SUBMITTED, "type": "ServiceRequest.SomethingNew", "data": {"note": "3100600445635", "first_name_th": "สมชาย"}}
    assert to_cloudevent(unknown, None)["data"] == {"actor": {"role": "citizen", "org": None}, "channel": "web"}
