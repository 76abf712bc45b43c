from __future__ import annotations

import pytest

from domain.land_tax import MILLION_BAHT, LandTaxRates, instalments, land_building_tax_satang

RATES = LandTaxRates()


def test_commercial_land_pays_each_band_on_its_own_slice() -> None:
    # 60M baht: 50M at 0.3% (150,000 baht) + 10M at 0.4% (40,000 baht)
    assert land_building_tax_satang(60 * MILLION_BAHT, "commercial", RATES) == 190_000 * 100


def test_a_main_residence_is_exempt_to_fifty_million_and_taxed_above() -> None:
    assert land_building_tax_satang(50 * MILLION_BAHT, "main_residence", RATES) == 0
    # 10M baht above the exemption at 0.03%: 3,000 baht
    assert land_building_tax_satang(60 * MILLION_BAHT, "main_residence", RATES) == 3_000 * 100


def test_other_residential_and_house_only_and_farm_land_follow_their_tables() -> None:
    assert land_building_tax_satang(10 * MILLION_BAHT, "residential", RATES) == 2_000 * 100  # 0.02%
    assert land_building_tax_satang(10 * MILLION_BAHT, "house_only", RATES) == 0
    assert land_building_tax_satang(60 * MILLION_BAHT, "agricultural", RATES) == 1_000 * 100  # 10M at 0.01%


def test_vacant_land_adds_a_step_every_three_years_up_to_the_cap() -> None:
    base = land_building_tax_satang(10 * MILLION_BAHT, "vacant", RATES, vacant_years=2)
    assert base == 30_000 * 100  # 0.3%
    assert land_building_tax_satang(10 * MILLION_BAHT, "vacant", RATES, vacant_years=3) == 60_000 * 100  # 0.6%
    assert land_building_tax_satang(10 * MILLION_BAHT, "vacant", RATES, vacant_years=99) == 300_000 * 100  # 3% cap


def test_a_tax_of_three_thousand_baht_or_more_may_be_paid_in_three_parts() -> None:
    assert instalments(299_999, RATES) == [299_999]
    assert instalments(300_001, RATES) == [100_000, 100_000, 100_001]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        land_building_tax_satang(-1, "commercial", RATES)
    with pytest.raises(ValueError):
        land_building_tax_satang(1, "orchard", RATES)


# -- per owner, reductions, instalments, penalties -----------------------------------------

from datetime import date  # noqa: E402

from domain.land_tax import (  # noqa: E402
    AmountDue,
    Instalment,
    Parcel,
    TaxYearCalendar,
    WarningNotice,
    amount_due,
    assess_owner,
    instalment_plan,
    months_late,
)

YEAR_2569 = TaxYearCalendar(2569, date(2026, 6, 30), (date(2026, 6, 30), date(2026, 7, 31), date(2026, 8, 31)))


def test_an_individuals_farm_land_is_exempt_to_fifty_million_in_all_not_per_parcel() -> None:
    # Two 40M plots: 80M in all, 30M above the exemption at 0.01%: 3,000 baht, shared by value.
    owner = assess_owner([Parcel("A", "agricultural", 40 * MILLION_BAHT), Parcel("B", "agricultural", 40 * MILLION_BAHT)], "individual", RATES)
    assert owner.tax_satang == 3_000 * 100
    assert [p.tax_satang for p in owner.parcels] == [1_500 * 100, 1_500 * 100]


def test_a_juristic_person_gets_no_exemption_and_its_homes_pay_other_residential_rates() -> None:
    # Farm land of a company, 40M at 0.01% (first band of the juristic table): 4,000 baht.
    farm = assess_owner([Parcel("A", "agricultural", 40 * MILLION_BAHT)], "juristic", RATES)
    assert farm.tax_satang == 4_000 * 100
    # A "main residence" of a company: no s.41 exemption, other residential 0.02%: 2,000 baht on 10M.
    home = assess_owner([Parcel("H", "main_residence", 10 * MILLION_BAHT)], "juristic", RATES)
    assert home.tax_satang == 2_000 * 100
    individual = assess_owner([Parcel("H", "main_residence", 10 * MILLION_BAHT)], "individual", RATES)
    assert individual.tax_satang == 0


def test_main_residence_bands_apply_above_the_exemption() -> None:
    # 100M: 50M exempt, 25M at 0.03% (7,500) + 25M at 0.05% (12,500) = 20,000 baht.
    assert land_building_tax_satang(100 * MILLION_BAHT, "main_residence", RATES) == 20_000 * 100
    # House only, 20M: 10M exempt, 10M at 0.02% = 2,000 baht.
    assert land_building_tax_satang(20 * MILLION_BAHT, "house_only", RATES) == 2_000 * 100


def test_the_2566_reduction_takes_fifteen_percent_off_the_tax() -> None:
    owner = assess_owner([Parcel("C", "commercial", 10 * MILLION_BAHT)], "juristic", RATES, reduction_ppm=150_000)
    assert (owner.tax_satang, owner.reduction_satang, owner.due_satang) == (3_000_000, 450_000, 2_550_000)


def test_an_instalment_plan_has_three_equal_parts_on_the_years_dates_with_the_remainder_last() -> None:
    plan = instalment_plan(1_000_001, RATES, YEAR_2569)
    assert plan == [Instalment(1, 333_333, date(2026, 6, 30)), Instalment(2, 333_333, date(2026, 7, 31)), Instalment(3, 333_335, date(2026, 8, 31))]
    assert instalment_plan(299_999, RATES, YEAR_2569) is None


def test_a_part_of_a_month_counts_as_a_month() -> None:
    due = date(2026, 6, 30)
    assert months_late(due, date(2026, 6, 30)) == 0
    assert months_late(due, date(2026, 7, 1)) == 1
    assert months_late(due, date(2026, 7, 31)) == 1
    assert months_late(due, date(2026, 8, 1)) == 2
    assert months_late(date(2026, 1, 15), date(2026, 2, 15)) == 1
    assert months_late(date(2026, 1, 15), date(2026, 2, 16)) == 2


def test_paying_late_before_a_warning_costs_ten_percent_and_one_percent_a_month() -> None:
    # 10,000 baht due 30 June, paid 15 August: 10% surcharge (s.68) + 2 months at 1% (s.70).
    due = amount_due(1_000_000, date(2026, 6, 30), date(2026, 8, 15))
    assert due == AmountDue(1_000_000, 100_000, 20_000)
    assert due.total_satang == 1_120_000


def test_paying_within_the_warnings_period_costs_twenty_percent_and_after_it_forty() -> None:
    warning = WarningNotice(received_on=date(2026, 7, 10), deadline=date(2026, 8, 10))
    within = amount_due(1_000_000, date(2026, 6, 30), date(2026, 8, 10), warning=warning)
    assert (within.surcharge_satang, within.interest_satang) == (200_000, 20_000)
    after = amount_due(1_000_000, date(2026, 6, 30), date(2026, 9, 1), warning=warning)
    assert (after.surcharge_satang, after.interest_satang) == (400_000, 30_000)
    before = amount_due(1_000_000, date(2026, 6, 30), date(2026, 7, 9), warning=warning)
    assert before.surcharge_satang == 100_000


def test_interest_is_on_the_unpaid_tax_only_never_on_the_surcharge() -> None:
    due = amount_due(1_000_000, date(2026, 6, 30), date(2026, 12, 31), paid_satang=400_000)
    # 6,000 baht unpaid, 6 months: interest 6% of 6,000 = 360 baht; surcharge 10% = 600 baht.
    assert (due.tax_satang, due.surcharge_satang, due.interest_satang) == (600_000, 60_000, 36_000)


def test_paying_on_time_costs_nothing_more() -> None:
    assert amount_due(1_000_000, date(2026, 6, 30), date(2026, 6, 30)) == AmountDue(1_000_000, 0, 0)


def test_missing_an_instalment_ends_the_right_to_instalments() -> None:
    plan = instalment_plan(900_000, RATES, YEAR_2569)
    assert plan is not None
    # Instalment 1 paid; on 31 July instalment 2 is what is due, no penalty.
    assert amount_due(900_000, YEAR_2569.due_date, date(2026, 7, 31), paid_satang=300_000, plan=plan) == AmountDue(300_000, 0, 0)
    # Missed: on 5 August the whole unpaid 6,000 baht bears 10% and one month at 1%.
    late = amount_due(900_000, YEAR_2569.due_date, date(2026, 8, 5), paid_satang=300_000, plan=plan)
    assert late == AmountDue(600_000, 60_000, 6_000, instalments_ended=True)
