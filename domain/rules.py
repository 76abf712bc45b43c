"""Rules as dated data: rates, fees and calendars with the date each takes effect, checked
against the statutory ceilings.

A `RuleBook` holds every dated entry; `fee_schedule(on)`, `land_tax_rates(org, on)` and the
other lookups answer with the entry in force on a date (the latest one whose
``effective_from`` is not after it), an organisation's own entry before the general one.
The parser of the rules file lives in infrastructure/; this module only holds and checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Mapping, Sequence, TypeVar

from domain.allowance import AllowanceError, AllowanceRules, Criterion, check_rules as check_allowance_rules
from domain.appointments import AppointmentRules
from domain.catalogue import FeeSchedule
from domain.errors import DomainError
from domain.land_tax import LAND_USES, LandTaxRates, TaxYearCalendar

# Statutory ceilings, checked at load.
# Land and Building Tax Act B.E. 2562 s.37: agricultural 0.15%, residential 0.3%, other
# (commercial) 1.2%, vacant 1.2% plus 0.3% every 3 consecutive vacant years, 3% in all.
LAND_USE_CEILING_PPM: dict[str, int] = {
    "agricultural": 1500,
    "residential": 3000,
    "main_residence": 3000,
    "house_only": 3000,
    "commercial": 12000,
}
VACANT_CEILING_PPM = 12000
VACANT_STEP_CEILING_PPM = 3000
VACANT_CAP_CEILING_PPM = 30000
# PAO Act B.E. 2540 s.65 with the Ministerial Regulation under it: the hotel fee at most 3% of
# the room charge (as the domain brief states it; the regulation's text was not found online,
# see the rules file).
HOTEL_FEE_CEILING_BP = 300

ANY_ORGANIZATION = "*"


class RulesError(DomainError):
    """The rules are not usable: an entry breaks a ceiling or is malformed. ``entry`` names it."""

    def __init__(self, entry: str, message: str) -> None:
        super().__init__(f"{entry}: {message}")
        self.entry = entry


@dataclass(frozen=True)
class Dated:
    """What every entry carries: when it takes effect, where it comes from, for whom."""

    effective_from: date
    source: str
    organization: str = ANY_ORGANIZATION
    confirmed: bool = True
    note: str = ""
    name: str = ""  # where the entry is in the file, for messages


@dataclass(frozen=True)
class LandTaxEntry:
    dated: Dated
    rates: LandTaxRates


@dataclass(frozen=True)
class CalendarEntry:
    dated: Dated
    calendar: TaxYearCalendar


@dataclass(frozen=True)
class ReductionEntry:
    dated: Dated
    tax_year: int
    ppm: int
    uses: frozenset[str] | None  # None: every use


@dataclass(frozen=True)
class HotelFeeEntry:
    dated: Dated
    rate_bp: int
    due_day: int


@dataclass(frozen=True)
class AmountEntry:
    """A fixed fee (certified copy per document kind, flyer permit) or a number of hours."""

    dated: Dated
    key: str  # the document kind, or "" when the entry has no key
    value: int


@dataclass(frozen=True)
class AllowanceEntry:
    """The elderly allowance's bands, dates and moves rule (the criteria are entries of their own)."""

    dated: Dated
    rules: AllowanceRules


@dataclass(frozen=True)
class CriterionEntry:
    dated: Dated
    criterion: Criterion


_E = TypeVar("_E", LandTaxEntry, CalendarEntry, ReductionEntry, HotelFeeEntry, AmountEntry, AllowanceEntry)


@dataclass(frozen=True)
class RetentionEntry:
    """How long a service's records are kept after the request closed, before the person's
    personal data in them is erased (``service`` "*": every service without its own entry)."""

    dated: Dated
    service: str
    years: int


def _in_force(entries: Iterable[_E], on: date, organization: str | None = None) -> _E | None:
    """The entry in force on ``on``: the organisation's own latest one, else the general one."""
    best: dict[bool, _E] = {}
    for e in entries:
        if e.dated.effective_from > on:
            continue
        own = organization is not None and e.dated.organization == organization
        if not own and e.dated.organization != ANY_ORGANIZATION:
            continue
        held = best.get(own)
        if held is None or e.dated.effective_from >= held.dated.effective_from:
            best[own] = e
    return best.get(True) or best.get(False)


@dataclass(frozen=True)
class RuleBook:
    land_tax: Sequence[LandTaxEntry] = ()
    calendars: Sequence[CalendarEntry] = ()
    reductions: Sequence[ReductionEntry] = ()
    hotel_fees: Sequence[HotelFeeEntry] = ()
    certified_copies: Sequence[AmountEntry] = ()
    flyer_permits: Sequence[AmountEntry] = ()
    payment_validity: Sequence[AmountEntry] = ()
    allowance: Sequence[AllowanceEntry] = ()
    allowance_criteria: Sequence[CriterionEntry] = ()
    retention: Sequence[RetentionEntry] = ()
    extra: Mapping[str, object] = field(default_factory=dict)
    # Counter calendars, public holidays and closures (README "Appointments").
    appointments: AppointmentRules = field(default_factory=AppointmentRules)
    # The fee schedule of each day asked for, computed once: a rule book does not change, and
    # every filing and registry answer asks for the day's fees.
    _fee_schedules: dict[date, FeeSchedule] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        check_ceilings(self)

    # -- lookups -------------------------------------------------------------------------

    def land_tax_rates(self, on: date, organization: str | None = None) -> LandTaxRates:
        entry = _in_force(self.land_tax, on, organization)
        if entry is None:
            raise RulesError("land_tax.rates", f"no land-tax rates in force on {on.isoformat()}")
        return entry.rates

    def calendar(self, tax_year: int, organization: str | None = None) -> TaxYearCalendar:
        """The tax year's due date and instalment dates (an organisation's own extension first)."""
        matching = [c for c in self.calendars if c.calendar.tax_year == tax_year]
        own = [c for c in matching if organization is not None and c.dated.organization == organization]
        general = [c for c in matching if c.dated.organization == ANY_ORGANIZATION]
        chosen = own or general
        if not chosen:
            raise RulesError("land_tax.calendar", f"no calendar for tax year {tax_year}")
        return max(chosen, key=lambda c: c.dated.effective_from).calendar

    def reduction(self, tax_year: int) -> ReductionEntry | None:
        found = [r for r in self.reductions if r.tax_year == tax_year]
        return max(found, key=lambda r: r.dated.effective_from) if found else None

    def retention_years(self, service: str, on: date) -> int | None:
        """Years a closed request of ``service`` is kept (its own entry in force, else the "*"
        one); None when the rules set none (then nothing of it is erased by retention)."""
        for wanted in (service, "*"):
            entry = _in_force([e for e in self.retention if e.service == wanted], on)
            if entry is not None:
                return entry.years
        return None

    def hotel_fee(self, organization: str, on: date) -> HotelFeeEntry:
        entry = _in_force(self.hotel_fees, on, organization)
        if entry is None:
            raise RulesError("hotel_fee", f"no hotel fee for {organization} on {on.isoformat()}")
        return entry

    def elderly_allowance(self, on: date, organization: str | None = None) -> AllowanceRules:
        """The elderly-allowance rules in force on ``on``, with every criterion that has taken
        effect by then (each criterion applies from its own date)."""
        from dataclasses import replace

        entry = _in_force(self.allowance, on, organization)
        rules = entry.rules if entry is not None else AllowanceRules()
        criteria = tuple(c.criterion for c in self.allowance_criteria
                         if c.dated.organization in (ANY_ORGANIZATION, organization))
        return replace(rules, criteria=criteria)

    def certified_copy_fee(self, document: str, on: date) -> int:
        entry = _in_force([e for e in self.certified_copies if e.key == document], on)
        if entry is None:
            raise RulesError("certified_copy", f"no fee for a certified copy of {document!r} on {on.isoformat()}")
        return entry.value

    def fee_schedule(self, on: date) -> FeeSchedule:
        """The fees in force on ``on``, in the shape the catalogue computes with."""
        schedule = self._fee_schedules.get(on)
        if schedule is None:
            if len(self._fee_schedules) > 1000:
                self._fee_schedules.clear()
            schedule = self._fee_schedules[on] = self._compute_fee_schedule(on)
        return schedule

    def _compute_fee_schedule(self, on: date) -> FeeSchedule:
        orgs = {e.dated.organization for e in [*self.hotel_fees, *self.flyer_permits]} - {ANY_ORGANIZATION}
        hotel_rate: dict[str, int] = {}
        hotel_day: dict[str, int] = {}
        for org in sorted(orgs):
            own = _in_force([e for e in self.hotel_fees if e.dated.organization == org], on, org)
            if own is not None:
                hotel_rate[org], hotel_day[org] = own.rate_bp, own.due_day
        default_hotel = _in_force(self.hotel_fees, on)
        flyer_default = _in_force(self.flyer_permits, on)
        flyer = {org: e.value for org in sorted(orgs)
                 if (e := _in_force([f for f in self.flyer_permits if f.dated.organization == org], on, org)) is not None}
        copies = {kind: e.value for kind in sorted({c.key for c in self.certified_copies})
                  if (e := _in_force([c for c in self.certified_copies if c.key == kind], on)) is not None}
        validity = _in_force(self.payment_validity, on)
        defaults = FeeSchedule()
        return FeeSchedule(
            certified_copy_satang=copies or defaults.certified_copy_satang,
            flyer_permit_satang=flyer_default.value if flyer_default else defaults.flyer_permit_satang,
            flyer_permit_satang_by_organization=flyer,
            hotel_fee_rate_bp=hotel_rate,
            hotel_fee_due_day=hotel_day,
            default_hotel_fee_rate_bp=default_hotel.rate_bp if default_hotel else defaults.default_hotel_fee_rate_bp,
            default_hotel_fee_due_day=default_hotel.due_day if default_hotel else defaults.default_hotel_fee_due_day,
            payment_validity_hours=validity.value if validity else defaults.payment_validity_hours,
            land_tax=self.land_tax_rates(on) if self.land_tax else defaults.land_tax,
        )


def _check_bands(name: str, use: str, bands: Sequence[tuple[int | None, int]], ceiling: int) -> None:
    if not bands:
        raise RulesError(name, f"{use} has no bands")
    lower = 0
    for i, (upper, rate) in enumerate(bands):
        if rate < 0:
            raise RulesError(name, f"{use} band {i + 1}: a rate cannot be negative")
        if rate > ceiling:
            raise RulesError(name, f"{use} band {i + 1}: rate {rate / 10_000:g}% is over the statutory ceiling of {ceiling / 10_000:g}% (Land and Building Tax Act s.37)")
        if upper is None:
            if i != len(bands) - 1:
                raise RulesError(name, f"{use} band {i + 1}: only the last band may be open-ended")
        elif upper <= lower:
            raise RulesError(name, f"{use} band {i + 1}: bounds must rise")
        else:
            lower = upper
    if bands[-1][0] is not None:
        raise RulesError(name, f"{use}: the last band must be open-ended")


def check_ceilings(book: RuleBook) -> None:
    """Refuse rules over a statutory ceiling, naming the entry."""
    for entry in book.land_tax:
        name, rates = entry.dated.name or "land_tax.rates", entry.rates
        missing = [u for u in LAND_USES if u != "vacant" and u not in rates.bands]
        if missing:
            raise RulesError(name, f"bands missing for {', '.join(missing)}")
        for use, bands in rates.bands.items():
            if use not in LAND_USE_CEILING_PPM:
                raise RulesError(name, f"unknown land use {use!r}")
            _check_bands(name, use, bands, LAND_USE_CEILING_PPM[use])
        # Vacant land pays the commercial bands: its base must fit the vacant ceiling too.
        for i, (_, rate) in enumerate(rates.bands["commercial"]):
            if rate > VACANT_CEILING_PPM:
                raise RulesError(name, f"commercial band {i + 1} (also vacant land's base) is over 1.2%")
        if not 0 <= rates.vacant_step_ppm <= VACANT_STEP_CEILING_PPM:
            raise RulesError(name, "vacant_step is over the statutory 0.3% per 3 years (s.37)")
        if not 0 < rates.vacant_cap_ppm <= VACANT_CAP_CEILING_PPM:
            raise RulesError(name, "vacant_cap is over the statutory 3% (s.37)")
        for use, amount in rates.individual_exemptions_satang.items():
            if use not in LAND_USE_CEILING_PPM or amount < 0:
                raise RulesError(name, f"exemption for {use!r} is not usable")
        if rates.instalments_from_satang < 0:
            raise RulesError(name, "instalments_from cannot be negative")
    for h in book.hotel_fees:
        name = h.dated.name or f"hotel_fee {h.dated.organization}"
        if not 0 <= h.rate_bp <= HOTEL_FEE_CEILING_BP:
            raise RulesError(name, f"rate {h.rate_bp / 100:g}% is over the 3% ceiling of the room charge (PAO Act B.E. 2540 s.65)")
        if not 1 <= h.due_day <= 28:
            raise RulesError(name, "due_day must be a day of the month from 1 to 28")
    for r in book.reductions:
        if not 0 <= r.ppm <= 1_000_000:
            raise RulesError(r.dated.name or f"land_tax.reductions {r.tax_year}", "a reduction is between 0% and 100%")
    for c in book.calendars:
        cal = c.calendar
        name = c.dated.name or f"land_tax.calendar {cal.tax_year}"
        if list(cal.instalment_dates) != sorted(cal.instalment_dates) or cal.instalment_dates[0] < cal.due_date.replace(day=1):
            raise RulesError(name, "instalment dates must rise and not come before the due month")
    for a in book.allowance:
        try:
            check_allowance_rules(a.dated.name or "elderly_allowance", a.rules)
        except AllowanceError as error:
            raise RulesError(a.dated.name or "elderly_allowance", str(error).partition(": ")[2]) from None
    for org, svc, _, cal in book.appointments.calendars:
        name = f"appointments.calendar {org} {svc}"
        if not 5 <= cal.slot_minutes <= 480 or not 1 <= cal.seats <= 1000 or cal.max_open_per_applicant < 1:
            raise RulesError(name, "slot_minutes must be 5 to 480, seats 1 to 1000, max_open_per_applicant at least 1")
        if cal.no_show_grace_minutes < 0 or cal.reminder_lead_minutes < 0 or not 1 <= cal.horizon_days <= 366:
            raise RulesError(name, "grace and reminder lead cannot be negative; horizon_days is 1 to 366")
        for weekday, periods in cal.hours.items():
            for opens, closes in periods:
                if closes <= opens:
                    raise RulesError(name, f"an opening period on weekday {weekday} closes before it opens")
    for group, entries in (("certified_copy", book.certified_copies), ("flyer_permit", book.flyer_permits), ("payment_validity", book.payment_validity)):
        for a in entries:
            if a.value <= 0:
                raise RulesError(a.dated.name or group, "must be a positive number")
