"""The land-tax year's use cases on the in-memory store: roll import, notices, payments, warnings."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Iterator

import pytest

from application.back_office import BackOffice
from application.errors import Forbidden, NotFound
from application.land_tax import notice_id, parse_parcel
from domain.actors import Actor
from domain.errors import InvalidCommand
from domain.organizations import SEED_ORGANIZATIONS, Directory
from domain.promptpay import parse_payload
from domain.tax_notice import NothingToPay, notice_number
from onestop.settings import DEMO_BILLER_ID
from tests.conftest import SUBJECT_INDEX
from tests.unit.test_back_office import FEES, RULES, CountingReferences, FakeClock

OFFICER = Actor(sub="officer-1", role="officer", org="MUN-SAENSUK")
PAO_OFFICER = Actor(sub="officer-p", role="officer", org="PAO-CBI")
OWNER = "3100600445635"
CITIZEN = Actor(sub=OWNER, role="citizen", pid=OWNER)
COMPANY = "0105551234567"
BANK = Actor(sub="bank", role="system")


def row(parcel_id: str, owner: str = OWNER, kind: str = "individual", use: str = "commercial", value: int = 200_000_000, vacant: int = 0):
    parsed = parse_parcel({"parcel_id": parcel_id, "owner_id": owner, "owner_kind": kind, "owner_name": "สมชาย ใจดี",
                           "land_use": use, "value_satang": value, "vacant_years": vacant})
    assert isinstance(parsed, tuple), parsed
    return parsed


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 2, 1, 3, 0, tzinfo=timezone.utc))


@pytest.fixture
def app(clock: FakeClock) -> Iterator[BackOffice]:
    office = BackOffice({"PERSISTENCE_MODULE": "eventsourcing.popo"}, directory=Directory(SEED_ORGANIZATIONS), fees=FEES, rules=RULES,
                        biller_id=DEMO_BILLER_ID, references=CountingReferences(), clock=clock, subject_index=SUBJECT_INDEX)
    yield office
    office.close()


def test_a_roll_row_names_each_wrong_field() -> None:
    errors = parse_parcel({"parcel_id": "", "owner_id": "3100600445636", "owner_kind": "individual", "owner_name": "x",
                           "land_use": "farm", "value_satang": -1})
    assert {f for f, _ in errors} == {"parcel_id", "owner_id", "land_use", "value_satang"}  # type: ignore[union-attr]


def test_a_csv_row_of_strings_parses_like_a_json_row() -> None:
    assert parse_parcel({"parcel_id": "P-1", "owner_id": OWNER, "owner_kind": "individual", "owner_name": "ก",
                         "land_use": "vacant", "value_satang": "500", "vacant_years": ""}) == ("P-1", OWNER, "individual", "ก", "vacant", 500, 0)


def test_importing_the_same_rows_again_changes_nothing_and_a_new_value_is_a_revaluation(app: BackOffice) -> None:
    first = app.begin_parcel_import(2569, OFFICER)
    assert first.add([row("P1"), row("P2")]) == (2, 0)
    again = app.begin_parcel_import(2569, OFFICER)
    assert again.add([row("P1"), row("P2")]) == (0, 2)
    revalued = app.begin_parcel_import(2569, OFFICER)
    assert revalued.add([row("P1", value=250_000_000), row("P2")]) == (1, 1)
    events = list(app.repository.event_store.get(revalued.roll.id))
    assert [type(e).__name__ for e in events] == ["Opened", "ParcelsRecorded", "ParcelsRevalued"]
    assert events[-1].rows == [["P1", 200_000_000, 250_000_000]]


def test_only_officers_of_municipalities_and_saos_keep_a_roll(app: BackOffice) -> None:
    with pytest.raises(Forbidden):
        app.begin_parcel_import(2569, PAO_OFFICER)
    with pytest.raises(Forbidden):
        app.begin_parcel_import(2569, CITIZEN)


def test_notices_are_one_per_owner_and_issuing_again_adds_none(app: BackOffice) -> None:
    app.begin_parcel_import(2569, OFFICER).add([row("P1"), row("P2", use="residential", value=6_000_000_000), row("C1", owner=COMPANY, kind="juristic", use="main_residence", value=1_000_000_000)])
    first = app.issue_notices(2569, OFFICER)
    assert (first["issued"], first["already_issued"]) == (2, 0)
    again = app.issue_notices(2569, OFFICER)
    assert (again["issued"], again["already_issued"]) == (0, 2)
    notice = app.get_notice(notice_id("MUN-SAENSUK", 2569, app.subject_ref(OWNER)))
    # commercial 2M baht at 0.3% = 6,000 baht; residential 60M baht for an individual is not exempt
    # (only the main residence is): 50M at 0.02% + 10M at 0.03% = 10,000 + 3,000 baht.
    assert [p["tax_satang"] for p in notice.parcels] == [600_000, 1_300_000]
    assert notice.tax_satang == 1_900_000 and notice.reduction_satang == 0
    assert [i["amount_satang"] for i in notice.instalments] == [633_333, 633_333, 633_334]
    assert notice.due_date == "2026-06-30"
    company = app.get_notice(notice_id("MUN-SAENSUK", 2569, app.subject_ref(COMPANY)))
    with pytest.raises(NotFound):  # the id is keyed: the plain owner ID does not give it
        app.get_notice(notice_id("MUN-SAENSUK", 2569, OWNER))
    # a juristic person's home pays other-residential rates with no exemption: 10M baht at 0.02%
    assert company.tax_satang == 200_000 and company.instalments is None


def test_a_notice_number_is_a_bank_reference() -> None:
    number = notice_number(2569, notice_id("MUN-SAENSUK", 2569, SUBJECT_INDEX.reference(OWNER)))
    assert number.startswith("LT69") and len(number) <= 20 and number.isalnum() and number.upper() == number


def test_an_instalment_paid_late_bears_the_surcharge_and_interest_on_the_whole_unpaid_tax(app: BackOffice, clock: FakeClock) -> None:
    app.begin_parcel_import(2569, OFFICER).add([row("P1", value=300_000_000)])  # 3M baht: 9,000 baht
    app.issue_notices(2569, OFFICER)
    nid = notice_id("MUN-SAENSUK", 2569, app.subject_ref(OWNER))
    clock.at = datetime(2026, 6, 10, 3, 0, tzinfo=timezone.utc)
    first = app.open_notice_payment(nid, {"instalment": 1}, CITIZEN).state
    assert first["amount_satang"] == 300_000 and parse_payload(first["promptpay_payload"]).ref1 == first["reference"]
    assert app.open_notice_payment(nid, {"instalment": 1}, CITIZEN).state["id"] == first["id"]
    app.record_bank_payment(app.get_payment(first["id"]).id, reference=first["reference"], amount_satang=300_000, provider_payment_id="b:1", actor=BANK)
    with pytest.raises(NothingToPay):
        app.open_notice_payment(nid, {"instalment": 1}, CITIZEN)
    clock.at = datetime(2026, 8, 5, 3, 0, tzinfo=timezone.utc)  # instalment 2 (31 July) missed
    late = app.open_notice_payment(nid, {"instalment": 2}, CITIZEN).state
    # 6,000 baht unpaid + 10% surcharge (s.68, no warning) + 1% for one month begun (s.70)
    assert late["amount_satang"] == 600_000 + 60_000 + 6_000
    app.record_bank_payment(app.get_payment(late["id"]).id, reference=late["reference"], amount_satang=666_000, provider_payment_id="b:2", actor=BANK)
    state = app.notice_state(nid, CITIZEN, date(2026, 8, 5))
    assert state["status"] == "paid" and state["amount_due"]["total_satang"] == 0


def test_a_citizen_cannot_see_anothers_notice_and_an_officer_records_a_warning(app: BackOffice, clock: FakeClock) -> None:
    app.begin_parcel_import(2569, OFFICER).add([row("P1", value=50_000_000)])  # 500k baht: 1,500 baht
    app.issue_notices(2569, OFFICER)
    nid = notice_id("MUN-SAENSUK", 2569, app.subject_ref(OWNER))
    with pytest.raises(NotFound):
        app.notice_state(nid, Actor(sub="x", role="citizen", pid="1101700230708"), date(2026, 7, 1))
    with pytest.raises(InvalidCommand):
        app.open_notice_payment(nid, {"instalment": 1}, CITIZEN)
    clock.at = datetime(2026, 9, 1, 3, 0, tzinfo=timezone.utc)
    state = app.record_notice_warning(nid, {"deadline": "2026-09-30"}, OFFICER, None).state
    # within the warning's period: 20% (s.69), and three months begun since 30 June (s.70)
    assert state["amount_due"] == {"on": "2026-09-01", "tax_satang": 150_000, "surcharge_satang": 30_000, "interest_satang": 4_500, "total_satang": 184_500}
    assert state["status"] == "overdue"


def test_notices_already_issued_keep_their_figures_when_the_rules_change(app: BackOffice) -> None:
    from dataclasses import replace

    from domain.rules import Dated, ReductionEntry

    app.begin_parcel_import(2569, OFFICER).add([row("P1", value=300_000_000)])
    app.issue_notices(2569, OFFICER)
    # A decree (invented for this test) halves the 2569 tax after the notices went out.
    decree = ReductionEntry(Dated(date(2026, 3, 1), "test decree"), 2569, 500_000, None)
    app.rules = replace(RULES, reductions=[*RULES.reductions, decree])
    app.begin_parcel_import(2569, OFFICER).add([row("P2", owner="1101700230708", value=300_000_000)])
    assert app.issue_notices(2569, OFFICER)["issued"] == 1
    kept = app.get_notice(notice_id("MUN-SAENSUK", 2569, app.subject_ref(OWNER)))
    assert (kept.tax_satang, kept.reduction_satang) == (900_000, 0)
    later = app.get_notice(notice_id("MUN-SAENSUK", 2569, app.subject_ref("1101700230708")))
    assert (later.tax_satang, later.reduction_satang) == (450_000, 450_000)


def test_a_land_tax_payment_issues_a_receipt_with_the_tax_and_each_penalty_on_its_own_line(app: BackOffice, clock: FakeClock) -> None:
    app.begin_parcel_import(2569, OFFICER).add([row("P1", value=300_000_000)])  # 3M baht: 9,000 baht
    app.issue_notices(2569, OFFICER)
    nid = notice_id("MUN-SAENSUK", 2569, app.subject_ref(OWNER))
    clock.at = datetime(2026, 8, 5, 3, 0, tzinfo=timezone.utc)  # instalment 1 (30 June) missed: all due, late
    late = app.open_notice_payment(nid, {"instalment": None}, CITIZEN).state
    app.record_bank_payment(app.get_payment(late["id"]).id, reference=late["reference"], amount_satang=late["amount_satang"],
                            provider_payment_id="b:9", actor=BANK)
    payment = app.get_payment(late["id"])
    assert payment.receipt is not None
    receipt = app.read_receipt(payment.receipt["id"], CITIZEN)  # the notice's owner reads it
    assert receipt["amount_satang"] == late["amount_satang"] and receipt["request_id"] is None
    assert receipt["payer"] == {"name": "สมชาย ใจดี"}
    # the tax, the 10% surcharge (s.68) and the 1% a month (s.70), each a line; together what was paid
    assert [i["description"].split(" (")[0] for i in receipt["items"]] == ["ภาษีที่ดินและสิ่งปลูกสร้าง", "เบี้ยปรับ", "เงินเพิ่ม"]
    assert sum(i["amount_satang"] for i in receipt["items"]) == late["amount_satang"]
    assert receipt["items"][0]["amount_satang"] == 900_000
    with pytest.raises(NotFound):
        app.read_receipt(payment.receipt["id"], Actor(sub="x", role="citizen", pid="1101700230708"))


def test_cash_for_a_land_tax_notice_at_the_counter_issues_a_receipt(app: BackOffice, clock: FakeClock) -> None:
    app.begin_parcel_import(2569, OFFICER).add([row("P1", value=50_000_000)])  # 1,500 baht
    app.issue_notices(2569, OFFICER)
    nid = notice_id("MUN-SAENSUK", 2569, app.subject_ref(OWNER))
    clock.at = datetime(2026, 6, 10, 3, 0, tzinfo=timezone.utc)
    opened = app.open_notice_payment(nid, {"instalment": None}, OFFICER).state
    paid = app.record_cash(app.get_payment(opened["id"]).id, {"amount_satang": opened["amount_satang"]}, OFFICER, None).state
    assert paid["receipt"]["number"].isalnum()
    receipt = app.read_receipt(paid["receipt"]["id"], OFFICER)
    assert receipt["method"] == "cash" and [i["amount_satang"] for i in receipt["items"]] == [150_000]
