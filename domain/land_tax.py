"""Land and building tax (Land and Building Tax Act B.E. 2562): tiered rates by value band.

Rates are set by decree and change, so they are data (`LandTaxRates`, loaded from
configuration); this module only applies them. Each band's rate applies to the slice of the
value inside that band. Rates are in parts per million of the value (0.3% = 3,000 ppm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from domain.errors import InvalidValue

MILLION_BAHT = 100_000_000  # satang

# (upper bound of the band in satang or None for no bound, rate in ppm)
Bands = Sequence[tuple[int | None, int]]

DEFAULT_BANDS: dict[str, Bands] = {
    "commercial": ((50 * MILLION_BAHT, 3000), (200 * MILLION_BAHT, 4000), (1000 * MILLION_BAHT, 5000), (5000 * MILLION_BAHT, 6000), (None, 7000)),
    "residential": ((50 * MILLION_BAHT, 200), (75 * MILLION_BAHT, 300), (100 * MILLION_BAHT, 500), (None, 1000)),
    # The owner's main residence, the owner being in its house registration: exempt to 50M.
    "main_residence": ((50 * MILLION_BAHT, 0), (75 * MILLION_BAHT, 300), (100 * MILLION_BAHT, 500), (None, 1000)),
    # Owner of the house only (not of the land), in its house registration: exempt to 10M.
    "house_only": ((10 * MILLION_BAHT, 0), (50 * MILLION_BAHT, 200), (75 * MILLION_BAHT, 300), (100 * MILLION_BAHT, 500), (None, 1000)),
    # Agricultural land of an individual: exempt to 50M.
    "agricultural": ((50 * MILLION_BAHT, 0), (125 * MILLION_BAHT, 100), (150 * MILLION_BAHT, 300), (550 * MILLION_BAHT, 500), (1050 * MILLION_BAHT, 700), (None, 1000)),
}
LAND_USES = ("commercial", "residential", "main_residence", "house_only", "agricultural", "vacant")


@dataclass(frozen=True)
class LandTaxRates:
    bands: Mapping[str, Bands] = field(default_factory=lambda: DEFAULT_BANDS)
    # Vacant land pays commercial rates, plus this much for every 3 consecutive vacant years...
    vacant_step_ppm: int = 3000
    # ...up to this rate in all.
    vacant_cap_ppm: int = 30000
    # A tax of at least this much may be paid in up to three instalments.
    instalments_from_satang: int = 300_000


def _tiered(value_satang: int, bands: Bands, extra_ppm: int = 0, cap_ppm: int | None = None) -> int:
    tax_micro = 0  # satang × ppm, rounded once at the end
    lower = 0
    for upper, rate in bands:
        if value_satang <= lower:
            break
        top = value_satang if upper is None else min(value_satang, upper)
        effective = rate + extra_ppm if rate or extra_ppm else 0
        if cap_ppm is not None:
            effective = min(effective, cap_ppm)
        tax_micro += (top - lower) * effective
        lower = top if upper is None else upper
    return (tax_micro + 500_000) // 1_000_000


def land_building_tax_satang(value_satang: int, land_use: str, rates: LandTaxRates, *, vacant_years: int = 0) -> int:
    """The year's tax on an assessed value, in satang (rounded half up)."""
    if value_satang < 0:
        raise InvalidValue("an assessed value cannot be negative")
    if land_use not in LAND_USES:
        raise InvalidValue(f"land use must be one of {', '.join(LAND_USES)}")
    if land_use == "vacant":
        extra = rates.vacant_step_ppm * (max(vacant_years, 0) // 3)
        return _tiered(value_satang, rates.bands["commercial"], extra, rates.vacant_cap_ppm)
    return _tiered(value_satang, rates.bands[land_use])


def instalments(tax_satang: int, rates: LandTaxRates) -> list[int]:
    """How a tax may be split: three near-equal parts from the threshold up, else one."""
    if tax_satang < rates.instalments_from_satang:
        return [tax_satang]
    part = tax_satang // 3
    return [part, part, tax_satang - 2 * part]
