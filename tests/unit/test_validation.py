"""OneStop's JSON Schema checks: every pattern and format of the catalogue is enforced and every
bad field is named."""

from __future__ import annotations

import timeit

import pytest

from application.json_schema import check, compile_schema
from domain.catalogue import SERVICES
from domain.json_schema import is_month
from domain.submission import SUBMISSION_SCHEMA


def details(service: str) -> dict:
    return SERVICES[service].details_schema


@pytest.mark.parametrize(
    ("service", "value", "field"),
    [
        ("civil.address-change", {"to_house_id": "../people?limit=5"}, "details.to_house_id"),
        ("civil.address-change", {"to_house_id": "12345678901\n"}, "details.to_house_id"),
        ("civil.address-change", {"to_house_id": "12345678901", "move_date": "2026-02-30"}, "details.move_date"),
        ("welfare.elderly-allowance", {"bank_account": "x"}, "details.bank_account"),
        ("civil.appointment", {"service": "s", "slot": "not-a-date"}, "details.slot"),
        ("civil.appointment", {"service": "s", "slot": "2026-12-01T09:00:00"}, "details.slot"),
        ("local.flyer-permit", {"description": "d", "area": "a", "start_date": "aaa", "end_date": "2026-12-01", "quantity": 1}, "details.start_date"),
        ("local.flyer-permit", {"description": "d", "area": "a", "start_date": "2026-12-01", "end_date": "aaa", "quantity": 1}, "details.end_date"),
        ("local.hotel-fee", {"month": "x", "room_revenue_satang": 100}, "details.month"),
        ("local.hotel-fee", {"month": "2026-13", "room_revenue_satang": 100}, "details.month"),
        ("civil.house-number", {"building_permit_no": "../x?y=1", "address": "a"}, "details.building_permit_no"),
        ("complaint", {"subject": "s", "description": "d" * 2001}, "details.description"),
    ],
)
def test_every_pattern_and_format_of_the_catalogue_is_enforced(service: str, value: dict, field: str) -> None:
    assert field in [f for f, _ in check(details(service), value, "details")]


@pytest.mark.parametrize(
    ("service", "value"),
    [
        ("civil.address-change", {"to_house_id": "12345678901", "move_date": "2026-12-01"}),
        ("welfare.elderly-allowance", {"bank_account": "1234567890"}),
        ("civil.appointment", {"service": "s", "slot": "2026-12-01T09:00:00+07:00"}),
        ("local.hotel-fee", {"month": "2026-10", "room_revenue_satang": 100}),
        ("civil.house-number", {"building_permit_no": "ข.1 123/2567", "address": "99 หมู่ 1"}),
    ],
)
def test_good_details_pass(service: str, value: dict) -> None:
    assert check(details(service), value, "details") == []


def test_every_bad_field_is_named_at_once() -> None:
    body = {"service": "complaint", "channel": "fax", "applicant": {"national_id": "12", "name": ""}, "details": {}, "extra": 1}
    fields = {f for f, _ in check(SUBMISSION_SCHEMA, body)}
    assert {"organization", "channel", "applicant.national_id", "applicant.name", "extra"} <= fields


def test_a_month_is_a_year_and_a_month_from_01_to_12() -> None:
    assert is_month("2026-01") and is_month("2026-12")
    assert not any(is_month(v) for v in ("2026-00", "2026-13", "2026-1", "26-01", "2026-01-01", "２０２６-01"))


def test_a_schema_is_compiled_once() -> None:
    schema = details("complaint")
    assert compile_schema(schema) is compile_schema(schema)


def test_checking_a_valid_submission_takes_microseconds() -> None:
    # A generous bound that still fails if the schemas were compiled per call (about 100 µs).
    body = {"service": "complaint", "organization": "MUN-SAENSUK", "channel": "web",
            "applicant": {"national_id": "3100600445635", "name": "สมชาย ใจดี"},
            "details": {"subject": "ไฟถนนดับ", "description": "ไฟถนนหน้าบ้านดับ"}}
    seconds = min(timeit.repeat(lambda: check(SUBMISSION_SCHEMA, body), number=200, repeat=3)) / 200
    assert seconds < 50e-6


def test_the_openapi_document_publishes_the_schemas_that_are_enforced() -> None:
    from api.openapi import openapi_document

    schemas = openapi_document()["components"]["schemas"]
    for code, service in SERVICES.items():
        assert schemas[f"Details.{code}"]["properties"] == service.details_schema["properties"]
    assert schemas["Details.civil.address-change"]["properties"]["to_house_id"]["pattern"] == "^[0-9]{11}$"
