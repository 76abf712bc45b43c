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
