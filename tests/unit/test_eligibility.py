from __future__ import annotations

from datetime import date

import pytest

from domain.eligibility import age_on, monthly_elderly_allowance_satang, registry_refusal

TODAY = date(2026, 11, 29)
ALIVE = {"found": True, "alive": True, "organization": "MUN-PHRAE", "birth_date": "1950-01-01"}


@pytest.mark.parametrize(("age", "satang"), [(59, 0), (60, 60_000), (69, 60_000), (70, 70_000), (79, 70_000), (80, 80_000), (89, 80_000), (90, 100_000), (104, 100_000)])
def test_the_elderly_allowance_follows_the_age_bands(age: int, satang: int) -> None:
    assert monthly_elderly_allowance_satang(age) == satang


def test_age_counts_a_birthday_only_once_it_has_come() -> None:
    assert age_on(date(1966, 11, 30), TODAY) == 59
    assert age_on(date(1966, 11, 29), TODAY) == 60


def test_an_unknown_or_dead_person_is_refused_with_the_registry_reason() -> None:
    assert registry_refusal("complaint", "MUN-PHRAE", {"found": False, "reason": "not_found"}, TODAY) == "not_found"
    assert registry_refusal("complaint", "MUN-PHRAE", {"found": True, "alive": False}, TODAY) == "deceased"


def test_the_elderly_allowance_needs_sixty_years_and_the_house_registration_organisation() -> None:
    assert registry_refusal("welfare.elderly-allowance", "MUN-PHRAE", ALIVE, TODAY) is None
    young = {**ALIVE, "birth_date": "1970-05-05"}
    assert "registration opens on 2028-10-01" in registry_refusal("welfare.elderly-allowance", "MUN-PHRAE", young, TODAY)
    elsewhere = registry_refusal("welfare.elderly-allowance", "SAO-MAEYOM", ALIVE, TODAY)
    assert elsewhere is not None and "MUN-PHRAE" in elsewhere


def test_an_address_change_needs_a_destination_house_the_registry_knows() -> None:
    assert registry_refusal("civil.address-change", "MUN-PHRAE", {**ALIVE, "to_house": None}, TODAY) is not None
    assert registry_refusal("civil.address-change", "MUN-PHRAE", {**ALIVE, "to_house": {"house_id": "1"}}, TODAY) is None
