"""The elderly-allowance rules, with worked examples (rules from the shipped rules file)."""

from __future__ import annotations

import re

from datetime import date

import pytest

from domain.allowance import RegistryStatus, decide, fiscal_year, parse_month
from domain.eligibility import registry_refusal
from domain.errors import InvalidCommand
from domain.rules import RulesError
from onestop.rules_file import load_rules, parse_rules, DEFAULT_RULES_FILE

RULES = load_rules().elderly_allowance(date(2026, 12, 3))
ORG = "MUN-PHRAE"
PERSON = {"found": True, "alive": True, "organization": ORG}


def _decide(month: str, registry: RegistryStatus | None = None, *, status: str = "active", birth: date = date(1950, 3, 15),
            start: str = "2020-01") -> object:
    return decide(RULES, status=status, start_month=start, birth=birth, organization=ORG, month=parse_month(month), registry=registry)


@pytest.mark.parametrize(("age", "baht"), [(60, 600), (69, 600), (70, 700), (79, 700), (80, 800), (89, 800), (90, 1000), (101, 1000)])
def test_the_shipped_bands_pay_600_700_800_and_1000_baht_by_age(age: int, baht: int) -> None:
    assert RULES.amount_for_age(age) == baht * 100


def test_a_new_band_is_paid_from_the_month_after_the_birthday_that_reaches_it() -> None:
    born = date(1956, 3, 15)  # turns 70 on 15 March 2026
    assert RULES.band_for(born, date(2026, 3, 1)) == 60_000
    assert RULES.band_for(born, date(2026, 4, 1)) == 70_000
    first_of_month = date(1956, 4, 1)  # turns 70 on 1 April 2026: still the month after
    assert RULES.band_for(first_of_month, date(2026, 4, 1)) == 60_000
    assert RULES.band_for(first_of_month, date(2026, 5, 1)) == 70_000


def test_the_fiscal_year_runs_from_october_to_september() -> None:
    assert fiscal_year(date(2026, 9, 30)) == 2026
    assert fiscal_year(date(2026, 10, 1)) == 2027


def test_a_person_turning_sixty_in_the_next_fiscal_year_may_register_now() -> None:
    # On 3 December 2026 (fiscal year 2027) the next fiscal year is 2028: anyone 60 by
    # 1 September 2028, i.e. born on or before 1 September 1968, may register.
    today = date(2026, 12, 3)
    assert RULES.registration_refusal(date(1968, 9, 1), today) is None
    refused = RULES.registration_refusal(date(1968, 9, 2), today)
    assert refused is not None and "registration opens on 2027-10-01" in refused
    early = {**PERSON, "birth_date": "1968-06-30"}  # 58 today
    assert registry_refusal("welfare.elderly-allowance", ORG, early, today, RULES) is None


def test_the_example_of_fiscal_year_2570_matches_the_published_cut_off() -> None:
    # muangfak.go.th: registering October 2568 - September 2569 for fiscal year 2570: born before 2 September 2510.
    in_2568 = date(2025, 10, 15)
    assert RULES.registration_refusal(date(1967, 9, 1), in_2568) is None
    assert RULES.registration_refusal(date(1967, 9, 2), in_2568) is not None


def test_payment_starts_the_month_after_the_sixtieth_birthday_and_not_before_approval() -> None:
    assert RULES.start_month(date(1966, 12, 20), date(2026, 6, 1)) == date(2027, 1, 1)
    assert RULES.start_month(date(1950, 1, 1), date(2026, 12, 3)) == date(2027, 1, 1)


@pytest.mark.parametrize(("details", "refused_by"), [
    ({"state_pension": True}, "no-state-pension"),
    ({"regular_state_pay": True}, "no-regular-state-pay"),
    ({"in_state_care": True}, "not-in-state-care"),
    ({"nationality": "LA"}, "thai-nationality"),
    ({"state_pension": False, "in_state_care": False}, None),
])
def test_state_pensioners_state_pay_and_state_care_residents_are_excluded(details: dict, refused_by: str | None) -> None:
    refusal = registry_refusal("welfare.elderly-allowance", ORG, {**PERSON, "birth_date": "1950-01-01"}, date(2026, 12, 3), RULES, details)
    assert (refusal is None) if refused_by is None else refusal.startswith(refused_by)


def test_residence_must_be_in_the_paying_organisation() -> None:
    refusal = registry_refusal("welfare.elderly-allowance", "SAO-MAEYOM", {**PERSON, "birth_date": "1950-01-01"}, date(2026, 12, 3), RULES)
    assert refusal is not None and ORG in refusal


def test_a_new_dated_criterion_is_added_in_the_rules_file_without_code() -> None:
    income = """
[[elderly_allowance_criterion]]
code = "income"
fact = "annual_income_baht"
operator = "at_most"
value = 100_000
reason = "income above the national committee's line"
effective_from = 2027-10-01
source = "test"
"""
    book = parse_rules(DEFAULT_RULES_FILE.read_text(encoding="utf-8") + income)
    rich = {**PERSON, "birth_date": "1966-01-01"}
    before = book.elderly_allowance(date(2027, 9, 30))
    after = book.elderly_allowance(date(2027, 10, 1))
    assert registry_refusal("welfare.elderly-allowance", ORG, rich, date(2027, 9, 30), before, {"annual_income_baht": 250_000}) is None
    refusal = registry_refusal("welfare.elderly-allowance", ORG, rich, date(2027, 10, 1), after, {"annual_income_baht": 250_000})
    assert refusal is not None and refusal.startswith("income")
    assert registry_refusal("welfare.elderly-allowance", ORG, rich, date(2027, 10, 1), after, {"annual_income_baht": 90_000}) is None


def test_a_criterion_with_an_unknown_operator_stops_loading_naming_it() -> None:
    bad = '\n[[elderly_allowance_criterion]]\ncode="x"\nfact="y"\noperator="like"\nvalue=1\nreason="r"\neffective_from=2027-01-01\nsource="s"\n'
    with pytest.raises(RulesError, match=r"elderly_allowance_criterion\[0\]: operator"):
        parse_rules(bad)


def test_bands_that_do_not_rise_stop_loading() -> None:
    bad = '\n[[elderly_allowance]]\nbands=[{from_age=70, baht=700}, {from_age=60, baht=600}]\neffective_from=2027-01-01\nsource="s"\n'
    with pytest.raises(RulesError, match=r"elderly_allowance\[0\]"):
        parse_rules(bad)


def test_a_death_stops_payment_from_the_month_after() -> None:
    died = RegistryStatus(alive=False, died_on=date(2027, 1, 20))
    assert _decide("2027-01", died).action == "pay"
    ended = _decide("2027-02", died)
    assert ended.action == "end" and ended.reason == "deceased" and ended.last_month == "2027-01"


def test_a_person_who_moves_is_paid_by_the_old_organisation_to_the_end_of_the_fiscal_year() -> None:
    moved = RegistryStatus(organization="SAO-MAEYOM", moved_on=date(2027, 2, 10))
    assert _decide("2027-09", moved).action == "pay"
    ended = _decide("2027-10", moved)
    assert ended.action == "end" and "SAO-MAEYOM" in ended.reason and ended.last_month == "2027-09"


def test_suspended_and_not_yet_started_recipients_are_not_paid() -> None:
    assert _decide("2027-01", status="suspended").action == "suspended"
    assert _decide("2027-01", start="2027-02").action == "not_due"
    assert _decide("2027-01").amount_satang == 70_000  # born March 1950: 76


def test_a_month_must_be_written_yyyy_mm() -> None:
    with pytest.raises(InvalidCommand):
        parse_month("2027-13")


def test_every_fact_an_eligibility_criterion_reads_from_the_registry_is_kept_from_its_answer() -> None:
    from application.outside_results import VERIFICATION_FIELDS, VERIFICATION_FIELDS_BY_SERVICE
    from onestop.rules_file import DEFAULT_RULES_FILE

    text = DEFAULT_RULES_FILE.read_text(encoding="utf-8")
    facts = set(re.findall(r'^#?\s*fact\s*=\s*"([a-z_]+)"', text, flags=re.M))
    assert facts, "the rules file names no criterion facts"
    kept = set(VERIFICATION_FIELDS) | set(VERIFICATION_FIELDS_BY_SERVICE["welfare.elderly-allowance"])
    assert facts <= kept, f"facts the criteria read but the registry answer would drop: {sorted(facts - kept)}"
