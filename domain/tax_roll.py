"""The TaxRoll aggregate: one organisation's land-and-building tax roll for one tax year.

Why one aggregate per (organisation, tax year) holding every parcel, and not one per parcel: an
import of 100,000 rows must be compared with what the roll already holds (so that a re-import
changes nothing and a changed value is a revaluation), and issuing notices must group every
parcel by owner. One aggregate loads in one query and records a whole batch of rows as one
event, so a 100,000-row import is about a hundred events, not a hundred thousand; and two
officers importing the same roll at once cannot both win (optimistic concurrency on the roll).
Each event still names every parcel it changes, so a parcel's history is in the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate

from domain.actors import Actor

# One parcel row, as recorded in events: [parcel_id, owner_id, owner_kind, owner_name, land_use,
# value_satang, vacant_years]. Lists, not objects, keep 100,000 of them small in the log and
# in memory.
PARCEL_FIELDS = ("parcel_id", "owner_id", "owner_kind", "owner_name", "land_use", "value_satang", "vacant_years")
ParcelRow = tuple[str, str, str, str, str, int, int]


class TaxRoll(BaseAggregate[Any]):
    TOPIC = "onestop:TaxRoll"

    class Event(AggregateEvent):
        actor: dict[str, Any]
        organization: str
        tax_year: int

    class Opened(Event, AggregateCreated):
        TOPIC = "onestop:TaxRoll.Opened"

    class ParcelsRecorded(Event):
        """Parcels new to the roll, or whose owner, use or vacancy changed (full rows)."""

        TOPIC = "onestop:TaxRoll.ParcelsRecorded"
        rows: list[list[Any]]

        def apply(self, roll: TaxRoll) -> None:
            for row in self.rows:
                roll.parcels[row[0]] = tuple(row)  # type: ignore[assignment]

    class ParcelsRevalued(Event):
        """A revaluation: parcels whose assessed value changed, as [parcel_id, old, new]."""

        TOPIC = "onestop:TaxRoll.ParcelsRevalued"
        rows: list[list[Any]]

        def apply(self, roll: TaxRoll) -> None:
            for parcel_id, _old, new in self.rows:
                roll.parcels[parcel_id] = (*roll.parcels[parcel_id][:5], new, roll.parcels[parcel_id][6])

    class NoticesIssued(Event):
        """Owners who were sent a notice for this year, as [owner_id, notice_id]."""

        TOPIC = "onestop:TaxRoll.NoticesIssued"
        owners: list[list[str]]

        def apply(self, roll: TaxRoll) -> None:
            for owner_id, notice_id in self.owners:
                roll.noticed[owner_id] = notice_id

    def __init__(self, *, organization: str, tax_year: int, actor: dict[str, Any]) -> None:
        self.organization = organization
        self.tax_year = tax_year
        self.parcels: dict[str, ParcelRow] = {}
        self.noticed: dict[str, str] = {}

    @classmethod
    def open(cls, *, id: Any, organization: str, tax_year: int, actor: Actor, at: datetime) -> TaxRoll:
        return cls._create(cls.Opened, id=id, timestamp=at, organization=organization, tax_year=tax_year, actor=actor.as_dict())

    def record(self, rows: Sequence[ParcelRow], actor: Actor, at: datetime) -> tuple[int, int]:
        """Record a batch of rows: new or changed parcels as one event, revaluations as another.
        Returns (accepted, unchanged); a row equal to the roll's changes nothing."""
        recorded: list[list[Any]] = []
        revalued: list[list[Any]] = []
        for row in rows:
            known = self.parcels.get(row[0])
            if known == row:
                continue
            if known is not None and known[:5] == row[:5] and known[6] == row[6]:
                revalued.append([row[0], known[5], row[5]])
            else:
                recorded.append(list(row))
        common = {"actor": actor.as_dict(), "organization": self.organization, "tax_year": self.tax_year, "timestamp": at}
        if recorded:
            self.trigger_event(self.ParcelsRecorded, rows=recorded, **common)
        if revalued:
            self.trigger_event(self.ParcelsRevalued, rows=revalued, **common)
        accepted = len(recorded) + len(revalued)
        return accepted, len(rows) - accepted

    def by_owner(self) -> dict[str, list[ParcelRow]]:
        owners: dict[str, list[ParcelRow]] = {}
        for row in self.parcels.values():
            owners.setdefault(row[1], []).append(row)
        return owners

    def record_notices(self, owners: Iterable[tuple[str, str]], actor: Actor, at: datetime) -> None:
        pairs = [[owner, notice] for owner, notice in owners]
        if pairs:
            self.trigger_event(self.NoticesIssued, owners=pairs, actor=actor.as_dict(), organization=self.organization,
                               tax_year=self.tax_year, timestamp=at)
