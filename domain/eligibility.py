"""What the civil registry's answer means for a request: whether the applicant may have it."""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping

from domain.allowance import AllowanceRules, age_on

__all__ = ["age_on", "monthly_elderly_allowance_satang", "registry_refusal"]

_DEFAULT_ALLOWANCE = AllowanceRules()


def monthly_elderly_allowance_satang(age: int, rules: AllowanceRules | None = None) -> int:
    """0 under 60; 600, 700, 800 or 1,000 baht a month by age band (the rules file's bands)."""
    return (rules or _DEFAULT_ALLOWANCE).amount_for_age(age)


def registry_refusal(service: str, organization: str, registry: dict[str, Any], today: date,
                     allowance: AllowanceRules | None = None, details: Mapping[str, Any] | None = None) -> str | None:
    """The reason the registry's answer rules the request out, or None when it may go on."""
    if not registry.get("found"):
        return registry.get("reason") or "not_found"
    if not registry.get("alive"):
        return "deceased"
    if service == "welfare.elderly-allowance":
        rules = allowance or _DEFAULT_ALLOWANCE
        birth = registry.get("birth_date")
        if not birth:
            return "the registry gave no birth date"
        # A person who turns 60 in the next fiscal year may register now (the regulation's age
        # rule: age counted on 1 September of the fiscal year); payment starts after the birthday.
        refusal = rules.registration_refusal(date.fromisoformat(birth), today)
        if refusal is not None:
            return refusal
        if registry.get("organization") != organization:
            # The allowance is registered where the person's house registration is.
            return f"the applicant's house registration is with {registry.get('organization')}; register there"
        refusal = rules.criteria_refusal({**(details or {}), **registry}, today)
        if refusal is not None:
            return refusal
    if service == "civil.address-change" and registry.get("to_house") is None:
        return "the destination house is not in the civil registry"
    return None
