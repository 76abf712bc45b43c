from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from domain.catalogue import SERVICES
from domain.organizations import SEED_ORGANIZATIONS, Directory
from domain.rules import RulesError
from onestop.bootstrap import load_fees
from onestop.rules_file import DEFAULT_RULES_FILE, load_rules, parse_rules
from onestop.settings import Settings
from domain.land_tax import MILLION_BAHT, land_building_tax_satang

SHIPPED = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
DIRECTORY = Directory(SEED_ORGANIZATIONS)


def test_the_shipped_rules_load_and_every_entry_has_a_date_and_a_source() -> None:
    book = load_rules()
    entries = [*book.land_tax, *book.calendars, *book.reductions, *book.hotel_fees, *book.certified_copies,
               *book.flyer_permits, *book.payment_validity]
    assert entries and all(e.dated.source and e.dated.effective_from for e in entries)


def test_chonburi_charges_half_a_percent_of_room_rent_due_on_the_tenth() -> None:
    fees = load_rules().fee_schedule(date(2026, 12, 3))
    org = DIRECTORY.get("PAO-CBI")
    assert (fees.hotel_fee_rate_bp["PAO-CBI"], fees.hotel_fee_due_day["PAO-CBI"]) == (50, 10)
    assert SERVICES["local.hotel-fee"].fee_satang({"month": "2026-11", "room_revenue_satang": 10_000_000}, org, fees) == 50_000


def test_certified_copies_cost_five_baht_for_a_house_entry_and_ten_for_a_registry_record() -> None:
    fees = load_rules().fee_schedule(date(2026, 12, 3))
    org = DIRECTORY.get("MUN-SAENSUK")
    copy = SERVICES["civil.certified-copy"]
    assert copy.fee_satang({"document": "house-registration", "copies": 2}, org, fees) == 1_000
    assert copy.fee_satang({"document": "id-card-record", "copies": 2}, org, fees) == 2_000


def test_each_tax_year_has_its_own_dates_and_2566_its_reduction() -> None:
    book = load_rules()
    assert book.calendar(2569).due_date == date(2026, 6, 30)
    assert book.calendar(2565).instalment_dates[-1] == date(2022, 9, 30)
    reduction = book.reduction(2566)
    assert reduction is not None and reduction.ppm == 150_000
    assert book.reduction(2569) is None


def test_a_rate_over_the_statutory_ceiling_is_refused_naming_the_entry() -> None:
    bad = SHIPPED.replace('{ percent = "0.7" },', '{ percent = "1.3" },', 1)
    with pytest.raises(RulesError) as refused:
        parse_rules(bad)
    assert refused.value.entry == "land_tax.rates[0]" and "commercial band 5" in str(refused.value) and "1.2%" in str(refused.value)


def test_a_hotel_fee_over_three_percent_is_refused_naming_the_entry() -> None:
    bad = SHIPPED.replace('percent = "0.5"\ndue_day = 10', 'percent = "3.5"\ndue_day = 10', 1)
    assert bad != SHIPPED
    with pytest.raises(RulesError, match=r"hotel_fee\[0\].*3%"):
        parse_rules(bad)


def test_a_vacant_land_cap_over_three_percent_is_refused() -> None:
    with pytest.raises(RulesError, match=r"land_tax.rates\[0\].*vacant_cap"):
        parse_rules(SHIPPED.replace('vacant_cap_percent = "3"', 'vacant_cap_percent = "3.5"'))


def test_an_entry_without_a_source_is_refused() -> None:
    with pytest.raises(RulesError, match=r"payment_validity\[0\].*source"):
        parse_rules(SHIPPED.replace('source = "OneStop policy"', ""))


def test_a_change_takes_effect_from_its_date_and_an_organisations_entry_wins() -> None:
    later = SHIPPED + '''
[[hotel_fee]]
organization = "PAO-CBI"
percent = "1.5"
due_day = 15
effective_from = 2027-01-01
source = "test ordinance"

[[flyer_permit]]
organization = "MUN-SAENSUK"
fee_satang = 5000
effective_from = 2026-01-01
source = "test ordinance"
'''
    book = parse_rules(later)
    assert book.hotel_fee("PAO-CBI", date(2026, 12, 31)).rate_bp == 50
    assert book.hotel_fee("PAO-CBI", date(2027, 1, 1)).rate_bp == 150
    assert book.hotel_fee("PAO-PRE", date(2027, 1, 1)).rate_bp == 100  # the general entry
    fees = book.fee_schedule(date(2026, 12, 3))
    flyer = SERVICES["local.flyer-permit"]
    details = {"description": "d", "area": "a", "start_date": "2026-12-01", "end_date": "2026-12-02", "quantity": 1}
    assert flyer.fee_satang(details, DIRECTORY.get("MUN-SAENSUK"), fees) == 5000
    other = next(o for o in SEED_ORGANIZATIONS if o.code != "MUN-SAENSUK" and o.kind.value in ("municipality", "sao"))
    assert flyer.fee_satang(details, other, fees) == 20000


def test_a_land_tax_table_in_the_rules_file_is_read_as_rates_not_left_a_dict(tmp_path: Path) -> None:
    # Before: a [land_tax] table in the fees file reached the tax code as a dict
    # ("'dict' object has no attribute 'bands'").
    path = tmp_path / "rules.toml"
    path.write_text(SHIPPED.replace('{ up_to_baht = 50_000_000, percent = "0.3" }', '{ up_to_baht = 50_000_000, percent = "0.5" }', 1), encoding="utf-8")
    fees = load_fees(Settings(fees_file=path))
    assert land_building_tax_satang(10 * MILLION_BAHT, "commercial", fees.land_tax, owner_kind="juristic") == 50_000 * 100
    fees = load_fees(Settings(rules_file=path))
    assert fees.land_tax.bands["commercial"][0] == (50 * MILLION_BAHT, 5000)


def test_the_old_fees_file_shape_is_refused_with_a_message_naming_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "fees.toml"
    path.write_text("certified_copy_per_copy_satang = 2000\n[land_tax]\nbands = 1\n", encoding="utf-8")
    with pytest.raises(RulesError, match="certified_copy_per_copy_satang"):
        load_fees(Settings(fees_file=path))


def test_the_back_office_uses_the_fees_in_force_on_the_bangkok_day_of_each_command() -> None:
    from datetime import datetime, timezone

    from application.back_office import BackOffice
    from application.ports import Clock, ReferenceIssuer
    from domain.catalogue import FeeSchedule

    class NoReferences(ReferenceIssuer):
        def issue(self, count: int, at: datetime) -> list[str]:
            raise AssertionError("not used")

    class Fixed(Clock):
        def now(self) -> datetime:
            return datetime(2026, 12, 31, 12, tzinfo=timezone.utc)

    book = parse_rules(SHIPPED + '''
[[hotel_fee]]
organization = "PAO-CBI"
percent = "1.5"
due_day = 15
effective_from = 2027-01-01
source = "test ordinance"
''')
    app = BackOffice(directory=DIRECTORY, fees=FeeSchedule(), rules=book, biller_id="010552300935002",
                     references=NoReferences(), clock=Fixed())
    try:
        # 31 Dec 16:59 UTC is still 31 Dec in Bangkok; 17:00 UTC is 1 Jan there.
        assert app.fees_on(datetime(2026, 12, 31, 16, 59, tzinfo=timezone.utc)).hotel_fee_rate_bp["PAO-CBI"] == 50
        assert app.fees_on(datetime(2026, 12, 31, 17, 0, tzinfo=timezone.utc)).hotel_fee_rate_bp["PAO-CBI"] == 150
    finally:
        app.close()
