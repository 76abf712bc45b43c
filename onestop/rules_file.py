"""Reads the rules file (TOML) into the domain's `RuleBook`.

Every entry needs ``effective_from`` (a TOML date) and ``source``; ``organization``
(default every one), ``confirmed`` (default true) and ``note`` are optional. Percentages are
strings (``"0.3"``), read exactly as decimals, never as floats. The shape is described in
README "Taxes and fees"; the shipped defaults are `rules.toml` next to this module.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from domain.allowance import MOVED_RULES, OPERATORS, AllowanceRules, Criterion
from domain.appointments import ANY_SERVICE, WEEKDAYS, AppointmentRules, ClosedDay, CounterCalendar
from domain.land_tax import LAND_USES, LandTaxRates, TaxYearCalendar
from domain.rules import (
    ANY_ORGANIZATION,
    AllowanceEntry,
    AmountEntry,
    CriterionEntry,
    CalendarEntry,
    Dated,
    HotelFeeEntry,
    LandTaxEntry,
    ReductionEntry,
    RetentionEntry,
    RuleBook,
    RulesError,
)

DEFAULT_RULES_FILE = Path(__file__).with_name("rules.toml")
TOP_LEVEL = {"land_tax", "hotel_fee", "certified_copy", "flyer_permit", "payment_validity", "elderly_allowance",
             "elderly_allowance_criterion", "retention", "appointments"}
SATANG_PER_BAHT = 100


def _dated(name: str, raw: dict[str, Any]) -> Dated:
    if not isinstance(raw, dict):
        raise RulesError(name, "must be a table")
    frm = raw.get("effective_from")
    if not isinstance(frm, date):
        raise RulesError(name, "effective_from must be a date such as 2026-01-01")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise RulesError(name, "source is required: title, section, URL or gazette reference")
    return Dated(frm, source, str(raw.get("organization", ANY_ORGANIZATION)), bool(raw.get("confirmed", True)),
                 str(raw.get("note", "")), name)


def _ppm(name: str, value: Any) -> int:
    """A percentage as a string ("0.3") to parts per million, exactly."""
    if not isinstance(value, str):
        raise RulesError(name, f"percent must be a string such as \"0.3\", not {value!r}")
    try:
        ppm = Decimal(value) * 10_000
    except InvalidOperation:
        raise RulesError(name, f"{value!r} is not a percentage") from None
    if ppm != ppm.to_integral_value():
        raise RulesError(name, f"{value}% is finer than a ten-thousandth of a percent")
    return int(ppm)


def _int(name: str, raw: dict[str, Any], key: str) -> int:
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RulesError(name, f"{key} must be a whole number")
    return value


def _bands(name: str, use: str, raw: Any) -> tuple[tuple[int | None, int], ...]:
    if not isinstance(raw, list) or not raw:
        raise RulesError(name, f"bands.{use} must be a list of {{up_to_baht, percent}}")
    bands = []
    for band in raw:
        if not isinstance(band, dict):
            raise RulesError(name, f"bands.{use}: each band is a table")
        upper = band.get("up_to_baht")
        if upper is not None and (not isinstance(upper, int) or isinstance(upper, bool)):
            raise RulesError(name, f"bands.{use}: up_to_baht must be a whole number of baht")
        bands.append((None if upper is None else upper * SATANG_PER_BAHT, _ppm(f"{name} bands.{use}", band.get("percent"))))
    return tuple(bands)


def _land_tax(book: dict[str, list[Any]], raw: Any) -> None:
    if not isinstance(raw, dict):
        raise RulesError("land_tax", "must be a table")
    unknown = set(raw) - {"rates", "calendar", "reductions"}
    if unknown:
        raise RulesError("land_tax", f"unknown key(s) {', '.join(sorted(unknown))}")
    for i, r in enumerate(raw.get("rates", [])):
        name = f"land_tax.rates[{i}]"
        dated = _dated(name, r)
        bands_raw = r.get("bands")
        if not isinstance(bands_raw, dict):
            raise RulesError(name, "bands is required")
        exemptions = r.get("individual_exemption_baht", {})
        rates = LandTaxRates(
            bands={use: _bands(name, use, b) for use, b in bands_raw.items()},
            individual_exemptions_satang={use: int(v) * SATANG_PER_BAHT for use, v in exemptions.items()},
            vacant_step_ppm=_ppm(f"{name} vacant_step_percent", r.get("vacant_step_percent")),
            vacant_cap_ppm=_ppm(f"{name} vacant_cap_percent", r.get("vacant_cap_percent")),
            instalments_from_satang=_int(name, r, "instalments_from_baht") * SATANG_PER_BAHT,
        )
        book["land_tax"].append(LandTaxEntry(dated, rates))
    for i, c in enumerate(raw.get("calendar", [])):
        name = f"land_tax.calendar[{i}]"
        dated = _dated(name, c)
        dates = c.get("instalments")
        if not (isinstance(dates, list) and len(dates) == 3 and all(isinstance(d, date) for d in dates)):
            raise RulesError(name, "instalments must be three dates")
        if not isinstance(c.get("due_date"), date):
            raise RulesError(name, "due_date must be a date")
        book["calendars"].append(CalendarEntry(dated, TaxYearCalendar(_int(name, c, "tax_year"), c["due_date"], (dates[0], dates[1], dates[2]))))
    for i, red in enumerate(raw.get("reductions", [])):
        name = f"land_tax.reductions[{i}]"
        dated = _dated(name, red)
        uses = red.get("uses")
        if uses is not None and (not isinstance(uses, list) or set(uses) - set(LAND_USES)):
            raise RulesError(name, f"uses must be a list of {', '.join(LAND_USES)}")
        book["reductions"].append(ReductionEntry(dated, _int(name, red, "tax_year"), _ppm(name, red.get("percent")),
                                                 None if uses is None else frozenset(uses)))


def _allowance(name: str, raw: dict[str, Any]) -> AllowanceEntry:
    dated = _dated(name, raw)
    bands_raw = raw.get("bands")
    if not isinstance(bands_raw, list) or not bands_raw or not all(isinstance(b, dict) for b in bands_raw):
        raise RulesError(name, "bands must be a list of {from_age, baht}")
    bands = tuple((_int(f"{name} bands", b, "from_age"), _int(f"{name} bands", b, "baht") * SATANG_PER_BAHT) for b in bands_raw)
    counted = str(raw.get("age_counted_on", "09-01"))
    try:
        counted_on = (int(counted[:2]), int(counted[3:5]))
        date(2000, *counted_on)
    except ValueError:
        raise RulesError(name, "age_counted_on must be MM-DD such as 09-01") from None
    moved = str(raw.get("moved_paid_until", "fiscal-year-end"))
    if moved not in MOVED_RULES:
        raise RulesError(name, f"moved_paid_until must be one of {', '.join(MOVED_RULES)}")
    rules = AllowanceRules(
        bands=bands, counted_on=counted_on,
        register_years_ahead=_int(name, raw, "register_years_ahead") if "register_years_ahead" in raw else 1,
        payment_day=_int(name, raw, "payment_day") if "payment_day" in raw else 10,
        moved_paid_until=moved, paid_through_death_month=bool(raw.get("paid_through_death_month", True)),
    )
    return AllowanceEntry(dated, rules)


def _criterion(name: str, raw: dict[str, Any]) -> CriterionEntry:
    dated = _dated(name, raw)
    for key in ("code", "fact", "reason"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise RulesError(name, f"{key} is required")
    if raw.get("operator") not in OPERATORS:
        raise RulesError(name, f"operator must be one of {', '.join(OPERATORS)}")
    if "value" not in raw:
        raise RulesError(name, "value is required")
    when_missing = raw.get("when_missing", "pass")
    if when_missing not in ("pass", "refuse"):
        raise RulesError(name, "when_missing must be pass or refuse")
    until = raw.get("until")
    if until is not None and not isinstance(until, date):
        raise RulesError(name, "until must be a date")
    criterion = Criterion(raw["code"], raw["fact"], raw["operator"], raw["value"], raw["reason"], when_missing,
                          dated.effective_from, until)
    return CriterionEntry(dated, criterion)


_PERIOD = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")
_CALENDAR_KEYS = {"effective_from", "source", "organization", "confirmed", "note", "service", "hours", "slot_minutes", "seats",
                  "max_open_per_applicant", "no_show_grace_minutes", "reminder_lead_hours", "horizon_days"}


def _hours(name: str, raw: Any) -> dict[int, tuple[tuple[time, time], ...]]:
    """``{mon = ["08:30-12:00", "13:00-16:30"], ...}``: opening periods per weekday, Bangkok time."""
    if not isinstance(raw, dict) or set(raw) - set(WEEKDAYS):
        raise RulesError(name, f"hours must be a table of {', '.join(WEEKDAYS)}")
    hours: dict[int, tuple[tuple[time, time], ...]] = {}
    for day, periods in raw.items():
        periods = [periods] if isinstance(periods, str) else periods
        parsed = []
        for period in periods if isinstance(periods, list) else [None]:
            match = _PERIOD.match(period) if isinstance(period, str) else None
            if match is None:
                raise RulesError(name, f"hours.{day}: each period is \"HH:MM-HH:MM\"")
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            parsed.append((time(h1, m1), time(23, 59, 59) if h2 == 24 else time(h2, m2)))
        hours[WEEKDAYS.index(day)] = tuple(parsed)
    return hours


def _appointments(raw: Any) -> AppointmentRules:
    if not isinstance(raw, dict) or set(raw) - {"calendar", "holidays", "closures"}:
        raise RulesError("appointments", "has the tables calendar, holidays and closures only")
    calendars = []
    for i, c in enumerate(raw.get("calendar", [])):
        name = f"appointments.calendar[{i}]"
        dated = _dated(name, c)
        unknown = set(c) - _CALENDAR_KEYS
        if unknown:
            raise RulesError(name, f"unknown key(s) {', '.join(sorted(unknown))}")
        defaults = CounterCalendar(hours={})
        numbers = {}
        for key in ("slot_minutes", "seats", "max_open_per_applicant", "no_show_grace_minutes", "reminder_lead_hours", "horizon_days"):
            numbers[key] = _int(name, c, key) if key in c else None
        calendar = CounterCalendar(
            hours=_hours(name, c.get("hours", {})),
            slot_minutes=numbers["slot_minutes"] or defaults.slot_minutes,
            seats=numbers["seats"] or defaults.seats,
            max_open_per_applicant=numbers["max_open_per_applicant"] or defaults.max_open_per_applicant,
            no_show_grace_minutes=defaults.no_show_grace_minutes if numbers["no_show_grace_minutes"] is None else numbers["no_show_grace_minutes"],
            reminder_lead_minutes=defaults.reminder_lead_minutes if numbers["reminder_lead_hours"] is None else numbers["reminder_lead_hours"] * 60,
            horizon_days=numbers["horizon_days"] or defaults.horizon_days,
        )
        calendars.append((dated.organization, str(c.get("service", ANY_SERVICE)), dated.effective_from, calendar))
    closed: list[ClosedDay] = []
    for group in ("holidays", "closures"):
        for i, h in enumerate(raw.get(group, [])):
            name = f"appointments.{group}[{i}]"
            dated = _dated(name, h)
            entries = h.get("days")
            if not isinstance(entries, list) or not entries:
                raise RulesError(name, "days must be a list of {date, name}")
            for j, d in enumerate(entries):
                if not isinstance(d, dict) or not isinstance(d.get("date"), date) or not isinstance(d.get("name"), str):
                    raise RulesError(f"{name}.days[{j}]", "needs date (a TOML date) and name")
                if "year" in h and d["date"].year != h["year"]:
                    raise RulesError(f"{name}.days[{j}]", f"{d['date']} is not in {h['year']}")
                closed.append(ClosedDay(d["date"], d["name"], dated.organization, bool(d.get("confirmed", dated.confirmed))))
    return AppointmentRules(calendars=tuple(calendars), closed_days=tuple(closed))


def parse_rules(text: str, origin: str = "rules file") -> RuleBook:
    """Parse and check a rules file's text. Raises `RulesError` naming the bad entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(origin, f"is not valid TOML: {exc}") from None
    unknown = set(data) - TOP_LEVEL
    if unknown:
        raise RulesError(origin, f"unknown table(s) {', '.join(sorted(unknown))}; expected {', '.join(sorted(TOP_LEVEL))} "
                                 "(the old fees-file shape is no longer read: see README 'Taxes and fees')")
    book: dict[str, list[Any]] = {k: [] for k in ("land_tax", "calendars", "reductions", "hotel_fees", "certified_copies", "flyer_permits", "payment_validity", "retention")}
    if "land_tax" in data:
        _land_tax(book, data["land_tax"])
    for i, h in enumerate(data.get("hotel_fee", [])):
        name = f"hotel_fee[{i}]"
        dated = _dated(name, h)
        bp = _ppm(name, h.get("percent")) // 100
        book["hotel_fees"].append(HotelFeeEntry(dated, bp, _int(name, h, "due_day")))
    for i, c in enumerate(data.get("certified_copy", [])):
        name = f"certified_copy[{i}]"
        book["certified_copies"].append(AmountEntry(_dated(name, c), str(c.get("document", "")), _int(name, c, "fee_satang")))
    for i, f in enumerate(data.get("flyer_permit", [])):
        name = f"flyer_permit[{i}]"
        book["flyer_permits"].append(AmountEntry(_dated(name, f), "", _int(name, f, "fee_satang")))
    for i, v in enumerate(data.get("payment_validity", [])):
        name = f"payment_validity[{i}]"
        book["payment_validity"].append(AmountEntry(_dated(name, v), "", _int(name, v, "hours")))
    allowance = tuple(_allowance(f"elderly_allowance[{i}]", a) for i, a in enumerate(data.get("elderly_allowance", [])))
    criteria = tuple(_criterion(f"elderly_allowance_criterion[{i}]", c) for i, c in enumerate(data.get("elderly_allowance_criterion", [])))
    for i, r in enumerate(data.get("retention", [])):
        name = f"retention[{i}]"
        dated = _dated(name, r)
        service = r.get("service")
        if not isinstance(service, str) or not service:
            raise RulesError(name, "service is required: a service code, or \"*\" for every other service")
        years = _int(name, r, "years_after_closing")
        if years < 1:
            raise RulesError(name, "years_after_closing must be at least 1")
        book["retention"].append(RetentionEntry(dated, service, years))
    return RuleBook(
        allowance=allowance, allowance_criteria=criteria, retention=tuple(book["retention"]),
        land_tax=tuple(book["land_tax"]), calendars=tuple(book["calendars"]), reductions=tuple(book["reductions"]),
        hotel_fees=tuple(book["hotel_fees"]), certified_copies=tuple(book["certified_copies"]),
        flyer_permits=tuple(book["flyer_permits"]), payment_validity=tuple(book["payment_validity"]),
        **({"appointments": _appointments(data["appointments"])} if "appointments" in data else {}),
    )


def load_rules(path: Path | None = None) -> RuleBook:
    """The rules file at ``path``, or the shipped defaults."""
    path = path or DEFAULT_RULES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(str(path), f"cannot be read: {exc.strerror}") from None
    return parse_rules(text, str(path))
