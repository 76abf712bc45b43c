"""Folds from land-tax events to view rows: pure, so the views are an exact function of the log."""

from __future__ import annotations

from typing import Any

from application.projections import advanced
from domain.tax_notice import TaxNotice
from domain.tax_roll import PARCEL_FIELDS, TaxRoll

ParcelKey = tuple[str, int, str]


class ParcelChanges:
    """What a batch of TaxRoll events does to the parcels view: whole rows to write, and new
    values of parcels this batch did not otherwise touch."""

    def __init__(self) -> None:
        self.rows: dict[ParcelKey, dict[str, Any]] = {}
        self.values: dict[ParcelKey, tuple[int, int]] = {}  # key -> (value_satang, position)

    def fold(self, event: Any, position: int) -> None:
        if isinstance(event, TaxRoll.ParcelsRecorded):
            for row in event.rows:
                key = (event.organization, event.tax_year, row[0])
                self.values.pop(key, None)
                self.rows[key] = {"organization": event.organization, "tax_year": event.tax_year, **dict(zip(PARCEL_FIELDS, row)),
                                  "position": position}
        elif isinstance(event, TaxRoll.ParcelsRevalued):
            for parcel_id, _old, new in event.rows:
                key = (event.organization, event.tax_year, parcel_id)
                if key in self.rows:
                    self.rows[key] = {**self.rows[key], "value_satang": new, "position": position}
                else:
                    self.values[key] = (new, position)


def fold_notice(row: dict[str, Any] | None, event: Any, position: int) -> dict[str, Any]:
    """Apply one TaxNotice event to a notice row."""
    if isinstance(event, TaxNotice.Issued):
        return {
            "id": event.originator_id, "number": event.number, "organization": event.organization, "tax_year": event.tax_year,
            "owner_id": event.owner_id, "owner_kind": event.owner_kind, "parcels": event.parcels, "tax_satang": event.tax_satang,
            "reduction_satang": event.reduction_satang, "due_date": event.due_date, "instalments": event.instalments,
            "paid_satang": 0, "warning": None, "version": event.originator_version, "position": position,
            "issued_at": event.timestamp, "updated_at": event.timestamp,
        }
    row = advanced(row, event, position, "notice")
    if isinstance(event, TaxNotice.PaymentReceived):
        row["paid_satang"] += event.tax_satang
    elif isinstance(event, TaxNotice.WarningRecorded):
        row["warning"] = {"received_on": event.received_on, "deadline": event.deadline}
    return row
