"""Reconciliation: the bank's settlement file of a day against the receipts OneStop issued for
PromptPay money that day, per organisation.

A settlement line and a receipt match on Ref1 and amount. A receipt with no line is *missing*
(OneStop says money came; the bank did not settle it); a line with no receipt is *unknown* (the
bank settled money OneStop issued no receipt for: a discrepancy, money after expiry, or a Ref1
that matches nothing); a line whose Ref1 matches a receipt of another amount is *mismatched*.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable
from uuid import UUID

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate

# Lines whose organisation cannot be told (their Ref1 matches no payment) are reconciled here.
UNASSIGNED = "UNASSIGNED"


@dataclass
class DayResult:
    """One organisation's reconciliation of one day."""

    organization: str
    matched: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[dict[str, Any]] = field(default_factory=list)
    mismatched: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched_count": len(self.matched),
            "matched_satang": sum(m["amount_satang"] for m in self.matched),
            "settled_satang": sum(m["amount_satang"] for m in self.matched)
            + sum(u["amount_satang"] for u in self.unknown) + sum(m["settled_satang"] for m in self.mismatched),
            "missing": self.missing,
            "unknown": self.unknown,
            "mismatched": self.mismatched,
        }


def reconcile(
    lines: list[dict[str, Any]], receipts: list[dict[str, Any]], organization_of: Callable[[str], str | None]
) -> dict[str, DayResult]:
    """Match settlement ``lines`` (``bank_payment_id, reference, amount_satang``) to ``receipts``
    (``number, organization, reference, amount_satang``) and group the outcome by organisation.
    ``organization_of(reference)`` tells the organisation of a line that matches no receipt."""
    results: dict[str, DayResult] = {}

    def result(org: str) -> DayResult:
        return results.setdefault(org, DayResult(org))

    waiting: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for receipt in sorted(receipts, key=lambda r: (r["organization"], r["number"])):
        waiting[receipt["reference"]].append(receipt)
        result(receipt["organization"])
    for line in lines:
        candidates = waiting.get(line["reference"], [])
        same = next((r for r in candidates if r["amount_satang"] == line["amount_satang"]), None)
        if same is not None:
            candidates.remove(same)
            result(same["organization"]).matched.append(
                {"receipt_number": same["number"], "reference": line["reference"], "amount_satang": line["amount_satang"],
                 "bank_payment_id": line["bank_payment_id"]})
        elif candidates:
            other = candidates.pop(0)
            result(other["organization"]).mismatched.append(
                {"receipt_number": other["number"], "reference": line["reference"], "receipt_satang": other["amount_satang"],
                 "settled_satang": line["amount_satang"], "bank_payment_id": line["bank_payment_id"]})
        else:
            org = organization_of(line["reference"]) or UNASSIGNED
            result(org).unknown.append(
                {"reference": line["reference"], "amount_satang": line["amount_satang"], "bank_payment_id": line["bank_payment_id"]})
    for left in waiting.values():
        for receipt in left:
            result(receipt["organization"]).missing.append(
                {"receipt_number": receipt["number"], "reference": receipt["reference"], "amount_satang": receipt["amount_satang"]})
    return results


class Reconciliation(BaseAggregate[UUID]):
    """The reconciliation of one organisation's day; each run that finds something new records it."""

    TOPIC = "onestop:Reconciliation"

    class Event(AggregateEvent):
        pass

    class Opened(Event, AggregateCreated):
        TOPIC = "onestop:Reconciliation.Opened"
        organization: str
        day: str  # ISO date (the event store keeps JSON types)

    class Recorded(Event):
        TOPIC = "onestop:Reconciliation.Recorded"
        result: dict[str, Any]
        settlement_lines: int

        def apply(self, reconciliation: Reconciliation) -> None:
            reconciliation.result = self.result
            reconciliation.settlement_lines = self.settlement_lines
            reconciliation.runs += 1

    def __init__(self, *, organization: str, day: str) -> None:
        self.organization = organization
        self.day = date.fromisoformat(day)
        self.result: dict[str, Any] | None = None
        self.settlement_lines = 0
        self.runs = 0

    @classmethod
    def open(cls, *, id: UUID, organization: str, day: date, at: datetime) -> Reconciliation:
        return cls._create(cls.Opened, id=id, timestamp=at, organization=organization, day=day.isoformat())

    def record(self, result: dict[str, Any], settlement_lines: int, at: datetime) -> bool:
        """Record a run's result; False (and nothing recorded) when it is the same as the last."""
        if result == self.result and settlement_lines == self.settlement_lines:
            return False
        self.trigger_event(self.Recorded, result=result, settlement_lines=settlement_lines, timestamp=at)
        return True
