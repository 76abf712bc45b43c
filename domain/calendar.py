"""Thai calendar helpers: the day in Bangkok, and the Buddhist Era year."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

BANGKOK = timezone(timedelta(hours=7))
BUDDHIST_ERA_OFFSET = 543


def bangkok_day(at: datetime) -> date:
    """The calendar day in Bangkok (UTC+7, no daylight saving) at the moment ``at``."""
    return at.astimezone(BANGKOK).date()


def buddhist_era_year(year: int) -> int:
    """The Buddhist Era (พ.ศ.) year of a Gregorian year: 2026 is 2569."""
    return year + BUDDHIST_ERA_OFFSET
