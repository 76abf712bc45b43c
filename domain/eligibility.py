"""What the civil registry's answer means for a request: whether the applicant may have it."""

from __future__ import annotations

from datetime import date
from typing import Any

# Monthly elderly allowance by age band (MOI regulation B.E. 2566), in satang.
ELDERLY_ALLOWANCE_BANDS = ((90, 100_000), (80, 80_000), (70, 70_000), (60, 60_000))
ELDERLY_MIN_AGE = 60


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def monthly_elderly_allowance_satang(age: int) -> int:
    """0 under 60; 600, 700, 800 or 1,000 baht a month by age band."""
    return next((amount for floor, amount in ELDERLY_ALLOWANCE_BANDS if age >= floor), 0)


def registry_refusal(service: str, organization: str, registry: dict[str, Any], today: date) -> str | None:
    """The reason the registry's answer rules the request out, or None when it may go on."""
    if not registry.get("found"):
        return registry.get("reason") or "not_found"
    if not registry.get("alive"):
        return "deceased"
    if service == "welfare.elderly-allowance":
        birth = registry.get("birth_date")
        if not birth:
            return "the registry gave no birth date"
        age = age_on(date.fromisoformat(birth), today)
        if age < ELDERLY_MIN_AGE:
            return f"the applicant is {age}, under {ELDERLY_MIN_AGE}"
        if registry.get("organization") != organization:
            # The allowance is registered where the person's house registration is.
            return f"the applicant's house registration is with {registry.get('organization')}; register there"
    if service == "civil.address-change" and registry.get("to_house") is None:
        return "the destination house is not in the civil registry"
    return None
