"""Reconciling a day: the bank's settlement file against the PromptPay receipts of that day.

`reconcile_day` is the daily job (run by ``onestop reconcile --day``, or by the dispatcher's
sweep each morning for the day before): it reads the settlement file and the receipts through
their ports, matches them (``domain.reconciliation``) and records one Reconciliation per
organisation and day. Running it again records only what changed, so it is safe to repeat.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError

from application.base import BackOfficeBase
from application.errors import NotFound
from application.ids import ID_NAMESPACE
from application.ports import BankSettlements, MoneyTrailQueries
from domain.reconciliation import DayResult, Reconciliation, reconcile


def reconciliation_id(organization: str, day: date) -> UUID:
    return uuid5(ID_NAMESPACE, f"reconciliation\n{organization}\n{day.isoformat()}")


def describe_reconciliation(reconciliation: Reconciliation) -> dict[str, Any]:
    result = reconciliation.result or {}
    return {
        "organization": reconciliation.organization,
        "day": reconciliation.day.isoformat(),
        "settlement_lines": reconciliation.settlement_lines,
        "matched": {"count": result.get("matched_count", 0), "amount_satang": result.get("matched_satang", 0)},
        "settled_satang": result.get("settled_satang", 0),
        "missing": result.get("missing", []),
        "unknown": result.get("unknown", []),
        "mismatched": result.get("mismatched", []),
        "balanced": not (result.get("missing") or result.get("unknown") or result.get("mismatched")),
        "runs": reconciliation.runs,
        "recorded_at": reconciliation.modified_on,
        "version": reconciliation.version,
    }


class Reconciliations(BackOfficeBase):
    """Recording and reading reconciliations."""

    def record_reconciliations(self, day: date, results: dict[str, DayResult], lines_per_org: dict[str, int]) -> list[dict[str, Any]]:
        """Record each organisation's result of ``day`` in one transaction; returns them all."""
        at = self.clock.now()
        changed, shown = [], []
        for organization, result in sorted(results.items()):
            try:
                reconciliation = self.repository.get(reconciliation_id(organization, day))
            except AggregateNotFoundError:
                reconciliation = Reconciliation.open(id=reconciliation_id(organization, day), organization=organization, day=day, at=at)
            if reconciliation.record(result.as_dict(), lines_per_org.get(organization, 0), at):
                changed.append(reconciliation)
            shown.append(reconciliation)
        if changed:
            self._save(*changed)
        return [describe_reconciliation(r) for r in shown]

    def get_reconciliation(self, organization: str, day: date) -> dict[str, Any]:
        try:
            reconciliation = self.repository.get(reconciliation_id(organization, day))
        except AggregateNotFoundError:
            raise NotFound(f"no reconciliation of {organization} on {day.isoformat()} yet") from None
        return describe_reconciliation(reconciliation)


async def reconcile_day(day: date, app: Reconciliations, settlements: BankSettlements, queries: MoneyTrailQueries) -> list[dict[str, Any]]:
    """The daily job: read the day's settlement file and receipts, match, record per organisation."""
    lines = await settlements.settlement(day)
    receipts = await queries.promptpay_receipts_on(day)
    receipt_refs = {r["reference"] for r in receipts}
    owners: dict[str, str | None] = {}
    for line in lines:
        reference = line["reference"]
        if reference not in receipt_refs and reference not in owners:
            payment = await queries.payment_by_reference(reference)
            owners[reference] = payment["organization"] if payment else None
    results = reconcile(lines, receipts, owners.get)
    lines_per_org: dict[str, int] = {}
    for organization, result in results.items():
        lines_per_org[organization] = len(result.matched) + len(result.unknown) + len(result.mismatched)
    return await asyncio.to_thread(app.record_reconciliations, day, results, lines_per_org)
