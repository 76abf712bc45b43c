"""Land and building tax (Land and Building Tax Act B.E. 2562): the Act's money rules.

Rates, exemptions, reductions and each tax year's dates are data (`LandTaxRates`,
`TaxYearCalendar`, loaded from the rules file); this module only applies them, in integer
satang. Rates are in parts per million of the value (0.3% = 3,000 ppm).

Sections cited below are those of the Act (Thai text, Royal Gazette vol. 136 part 30 A,
12 March 2019; published by DLA at http://www.dla.go.th/upload/regulation/type1/2019/3/1730_1.PDF).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Iterable, Mapping, Sequence

from domain.errors import InvalidValue

MILLION_BAHT = 100_000_000  # satang

# (upper bound of the band in satang or None for no bound, rate in ppm)
Bands = Sequence[tuple[int | None, int]]

LAND_USES = ("commercial", "residential", "main_residence", "house_only", "agricultural", "vacant")
OWNER_KINDS = ("individual", "juristic")

# Rates of the Royal Decree on rates / transitional s.94, as in the DLA operations manual under
# the Act (คู่มือปฏิบัติงานตามพระราชบัญญัติภาษีที่ดินและสิ่งปลูกสร้าง พ.ศ. 2562, p.52). Bands apply to
# the value left after an individual's exemption (s.40, s.41). The shipped rules file holds the
# same figures with their sources; these defaults only serve code that builds rates by hand.
DEFAULT_BANDS: dict[str, Bands] = {
    "commercial": ((50 * MILLION_BAHT, 3000), (200 * MILLION_BAHT, 4000), (1000 * MILLION_BAHT, 5000), (5000 * MILLION_BAHT, 6000), (None, 7000)),
    "residential": ((50 * MILLION_BAHT, 200), (75 * MILLION_BAHT, 300), (100 * MILLION_BAHT, 500), (None, 1000)),
    "main_residence": ((25 * MILLION_BAHT, 300), (50 * MILLION_BAHT, 500), (None, 1000)),
    "house_only": ((40 * MILLION_BAHT, 200), (65 * MILLION_BAHT, 300), (90 * MILLION_BAHT, 500), (None, 1000)),
    "agricultural": ((75 * MILLION_BAHT, 100), (100 * MILLION_BAHT, 300), (500 * MILLION_BAHT, 500), (1000 * MILLION_BAHT, 700), (None, 1000)),
}
# s.40 (agricultural land of an individual) and s.41 (main residence; house only): per owner,
# per local organisation. Juristic persons get none.
DEFAULT_INDIVIDUAL_EXEMPTIONS: dict[str, int] = {
    "agricultural": 50 * MILLION_BAHT,
    "main_residence": 50 * MILLION_BAHT,
    "house_only": 10 * MILLION_BAHT,
}

# s.68: 40% of the unpaid tax, or 10% when paid before the warning notice of s.61 is received;
# s.69: 20% when paid within the period the warning notice sets. In ppm of the unpaid tax.
SURCHARGE_BEFORE_WARNING_PPM = 100_000
SURCHARGE_WITHIN_WARNING_PPM = 200_000
SURCHARGE_OTHERWISE_PPM = 400_000
# s.70: 1% a month of the unpaid tax, a part of a month counting as a month, surcharge not in the base.
INTEREST_PER_MONTH_PPM = 10_000


@dataclass(frozen=True)
class LandTaxRates:
    bands: Mapping[str, Bands] = field(default_factory=lambda: DEFAULT_BANDS)
    individual_exemptions_satang: Mapping[str, int] = field(default_factory=lambda: DEFAULT_INDIVIDUAL_EXEMPTIONS)
    # Vacant land pays commercial rates, plus this much for every 3 consecutive vacant years...
    vacant_step_ppm: int = 3000
    # ...up to this rate in all (s.37 para. 3 and 4).
    vacant_cap_ppm: int = 30000
    # A tax of at least this much may be paid in three instalments (s.52).
    instalments_from_satang: int = 300_000


@dataclass(frozen=True)
class TaxYearCalendar:
    """When a tax year's tax is due, and its three instalment dates (the last day of each)."""

    tax_year: int  # Buddhist era
    due_date: date
    instalment_dates: tuple[date, date, date]


@dataclass(frozen=True)
class Parcel:
    parcel_id: str
    land_use: str
    value_satang: int
    vacant_years: int = 0


@dataclass(frozen=True)
class ParcelTax:
    parcel_id: str
    land_use: str
    value_satang: int
    tax_satang: int


@dataclass(frozen=True)
class OwnerAssessment:
    parcels: tuple[ParcelTax, ...]
    tax_satang: int  # before the year's reduction
    reduction_satang: int
    due_satang: int  # tax less reduction


@dataclass(frozen=True)
class Instalment:
    n: int
    amount_satang: int
    due_date: date


@dataclass(frozen=True)
class WarningNotice:
    """A warning notice (s.61) the owner received, and the payment deadline it sets."""

    received_on: date
    deadline: date


@dataclass(frozen=True)
class AmountDue:
    tax_satang: int
    surcharge_satang: int
    interest_satang: int
    # True once an instalment was missed: the right to instalments is over.
    instalments_ended: bool = False

    @property
    def total_satang(self) -> int:
        return self.tax_satang + self.surcharge_satang + self.interest_satang


def _round_ppm(amount_micro: int) -> int:
    """satang × ppm back to satang, rounded half up."""
    return (amount_micro + 500_000) // 1_000_000


def _tiered_micro(value_satang: int, bands: Bands, extra_ppm: int = 0, cap_ppm: int | None = None) -> int:
    tax_micro = 0  # satang × ppm, rounded once at the end
    lower = 0
    for upper, rate in bands:
        if value_satang <= lower:
            break
        top = value_satang if upper is None else min(value_satang, upper)
        effective = rate + extra_ppm
        if cap_ppm is not None:
            effective = min(effective, cap_ppm)
        tax_micro += (top - lower) * effective
        lower = top if upper is None else upper
    return tax_micro


def _check(land_use: str, value_satang: int, owner_kind: str) -> None:
    if value_satang < 0:
        raise InvalidValue("an assessed value cannot be negative")
    if land_use not in LAND_USES:
        raise InvalidValue(f"land use must be one of {', '.join(LAND_USES)}")
    if owner_kind not in OWNER_KINDS:
        raise InvalidValue(f"owner kind must be one of {', '.join(OWNER_KINDS)}")


def _use_for(land_use: str, owner_kind: str) -> str:
    # A main residence or a house-only home needs an owner in the house registration: a
    # juristic person cannot be one, so its homes are taxed as other residential use.
    if owner_kind == "juristic" and land_use in ("main_residence", "house_only"):
        return "residential"
    return land_use


def _group_tax(value_satang: int, land_use: str, owner_kind: str, rates: LandTaxRates, vacant_years: int = 0) -> int:
    use = _use_for(land_use, owner_kind)
    if use == "vacant":
        extra = rates.vacant_step_ppm * (max(vacant_years, 0) // 3)
        return _round_ppm(_tiered_micro(value_satang, rates.bands["commercial"], extra, rates.vacant_cap_ppm))
    exempt = rates.individual_exemptions_satang.get(use, 0) if owner_kind == "individual" else 0
    return _round_ppm(_tiered_micro(max(value_satang - exempt, 0), rates.bands[use]))


def land_building_tax_satang(value_satang: int, land_use: str, rates: LandTaxRates, *, vacant_years: int = 0,
                             owner_kind: str = "individual") -> int:
    """The year's tax on one assessed value held alone by its owner, in satang (rounded half up)."""
    _check(land_use, value_satang, owner_kind)
    return _group_tax(value_satang, land_use, owner_kind, rates, vacant_years)


def _share(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` so that the parts add up exactly
    (largest remainder; ties go to the earlier item)."""
    whole = sum(weights)
    if whole == 0:
        return [0 for _ in weights]
    parts = [total * w // whole for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in remainders[: total - sum(parts)]:
        parts[i] += 1
    return parts


def assess_owner(parcels: Iterable[Parcel], owner_kind: str, rates: LandTaxRates, *,
                 reduction_ppm: int = 0, reduced_uses: frozenset[str] | None = None) -> OwnerAssessment:
    """The tax of one owner's parcels within one organisation.

    Values of the same use are added up and taxed together, so the band rates and the
    individual exemptions (s.40: agricultural 50M; s.41: main residence 50M, house only 10M)
    apply once per owner per organisation; juristic persons get no exemption. Vacant land is
    grouped by its count of 3-year steps. Each group's tax is shared out to its parcels by
    value. A reduction decreed for the year (s.55) takes ``reduction_ppm`` off the tax of the
    uses in ``reduced_uses`` (all uses when None).
    """
    items = list(parcels)
    for p in items:
        _check(p.land_use, p.value_satang, owner_kind)
    groups: dict[tuple[str, int], list[int]] = {}
    for i, p in enumerate(items):
        use = _use_for(p.land_use, owner_kind)
        step = max(p.vacant_years, 0) // 3 if use == "vacant" else 0
        groups.setdefault((use, step), []).append(i)
    taxes = [0] * len(items)
    for (use, step), members in groups.items():
        total_value = sum(items[i].value_satang for i in members)
        group_tax = _group_tax(total_value, use, owner_kind, rates, step * 3)
        for i, part in zip(members, _share(group_tax, [items[i].value_satang for i in members])):
            taxes[i] = part
    parcel_taxes = tuple(ParcelTax(p.parcel_id, p.land_use, p.value_satang, t) for p, t in zip(items, taxes))
    tax = sum(taxes)
    reducible = sum(t.tax_satang for t in parcel_taxes
                    if reduced_uses is None or _use_for(t.land_use, owner_kind) in reduced_uses or t.land_use in reduced_uses)
    reduction = _round_ppm(reducible * reduction_ppm)
    return OwnerAssessment(parcel_taxes, tax, reduction, tax - reduction)


def instalments(tax_satang: int, rates: LandTaxRates) -> list[int]:
    """How a tax may be split: three equal parts from the threshold up (s.52), else one.
    Equal parts need not divide a satang amount; the remainder goes on the last part."""
    if tax_satang < rates.instalments_from_satang:
        return [tax_satang]
    part = tax_satang // 3
    return [part, part, tax_satang - 2 * part]


def instalment_plan(tax_satang: int, rates: LandTaxRates, year: TaxYearCalendar) -> list[Instalment] | None:
    """The three instalments with their due dates, or None when the tax may not be split."""
    if tax_satang < rates.instalments_from_satang:
        return None
    return [Instalment(n, amount, due) for n, (amount, due) in enumerate(zip(instalments(tax_satang, rates), year.instalment_dates), start=1)]


def _add_months(day: date, months: int) -> date:
    """``day`` plus whole months; the last day of a month stays the last day of a month."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = calendar.monthrange(year, month)[1]
    if day.day == calendar.monthrange(day.year, day.month)[1]:
        return date(year, month, last)
    return date(year, month, min(day.day, last))


def months_late(due_date: date, paid_on: date) -> int:
    """Whole months of delay, a part of a month counting as a month (s.70)."""
    if paid_on <= due_date:
        return 0
    months = (paid_on.year - due_date.year) * 12 + paid_on.month - due_date.month - 1
    months = max(months, 0)
    while _add_months(due_date, months) < paid_on:
        months += 1
    return months


def surcharge_ppm(paid_on: date, warning: WarningNotice | None) -> int:
    """s.68 and s.69: which surcharge a late payment made on ``paid_on`` bears."""
    if warning is None or paid_on < warning.received_on:
        return SURCHARGE_BEFORE_WARNING_PPM
    if paid_on <= warning.deadline:
        return SURCHARGE_WITHIN_WARNING_PPM
    return SURCHARGE_OTHERWISE_PPM


def late_amount(unpaid_satang: int, due_date: date, paid_on: date, warning: WarningNotice | None) -> AmountDue:
    """The unpaid tax with its surcharge (s.68/69) and interest (s.70) when paid on ``paid_on``."""
    if paid_on <= due_date or unpaid_satang <= 0:
        return AmountDue(max(unpaid_satang, 0), 0, 0)
    surcharge = _round_ppm(unpaid_satang * surcharge_ppm(paid_on, warning))
    interest = _round_ppm(unpaid_satang * INTEREST_PER_MONTH_PPM * months_late(due_date, paid_on))
    return AmountDue(unpaid_satang, surcharge, interest)


def amount_due(tax_satang: int, due_date: date, on: date, *, paid_satang: int = 0,
               plan: Sequence[Instalment] | None = None, warning: WarningNotice | None = None) -> AmountDue:
    """What the owner must pay on ``on`` to settle what is due by then.

    Without instalments: the unpaid tax, plus penalties once ``due_date`` has passed. With
    instalments (payments fill them in order): the next unpaid instalment while every due one
    is paid on time; once one is missed the right to instalments ends and the whole unpaid tax
    bears penalties from that instalment's due date (s.52 para. 2; the Ministerial Regulation
    on instalments).
    """
    unpaid = max(tax_satang - paid_satang, 0)
    if unpaid == 0:
        return AmountDue(0, 0, 0)
    if not plan:
        return late_amount(unpaid, due_date, on, warning)
    covered = paid_satang
    for inst in plan:
        if covered >= inst.amount_satang:
            covered -= inst.amount_satang
            continue
        remaining = inst.amount_satang - covered
        if on <= inst.due_date:
            return AmountDue(remaining, 0, 0)
        return replace(late_amount(unpaid, inst.due_date, on, warning), instalments_ended=True)
    return AmountDue(0, 0, 0)
