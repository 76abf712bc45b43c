"""Folds from events to view rows: pure functions, so every view is an exact function of the log.

The infrastructure's view recorder loads the rows a batch touches, folds the batch's events
into them with these functions, and writes rows and tracking in one transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from application.errors import ViewOutOfStep

from domain.calendar import bangkok_day
from domain import payment
from domain.payment import Payment
from domain.receipt import Receipt
from domain.service_request import APPROVED, COMPLETED, FINAL, REJECTED, SUBMITTED, WITHDRAWN, ServiceRequest

COUNTED = {
    ServiceRequest.Submitted: SUBMITTED,
    ServiceRequest.Approved: APPROVED,
    ServiceRequest.Rejected: REJECTED,
    ServiceRequest.Completed: COMPLETED,
    ServiceRequest.Withdrawn: WITHDRAWN,
}
COUNT_COLUMNS = (*COUNTED.values(), "paid_satang")

# The status each event moves a request to, as the aggregate's events say it.
_STATUS_OF = {
    event_class: event_class.MOVES_TO
    for event_class in vars(ServiceRequest).values()
    if isinstance(event_class, type) and issubclass(event_class, ServiceRequest.Event) and event_class.MOVES_TO is not None
}


def advanced(row: dict[str, Any] | None, event: Any, position: int, kind: str, *, stamped: bool = True) -> dict[str, Any]:
    """A copy of the ``kind`` row ``row`` moved to ``event``: its version and position (and,
    when ``stamped``, ``updated_at``). An event of an aggregate the view has no row for cannot
    be applied (``ViewOutOfStep``: the projector sets it aside)."""
    if row is None:
        raise ViewOutOfStep(f"event {type(event).__name__} for unknown {kind} {event.originator_id}")
    row = dict(row)
    row["version"] = event.originator_version
    row["position"] = position
    if stamped:
        row["updated_at"] = event.timestamp
    return row


def fold_request(row: dict[str, Any] | None, event: Any, position: int) -> dict[str, Any]:
    """Apply one ServiceRequest event to a request summary row."""
    if isinstance(event, ServiceRequest.Submitted):
        return {
            "id": event.originator_id,
            "reference": event.reference,
            "service": event.service,
            "organization": event.organization,
            "filed_at": event.filed_at,
            "channel": event.channel,
            "status": SUBMITTED,
            "version": event.originator_version,
            "position": position,
            "applicant_national_id": event.applicant["national_id"],
            "applicant_name": event.applicant["name"],
            "details": event.details,
            "assigned_to": None,
            "submitted_at": event.timestamp,
            "updated_at": event.timestamp,
            "due_at": event.due_at,
            "outcome": None,
            "result": None,
            "action_required": None,
            "payment_id": None,
            "payment_amount_satang": None,
            "payment_status": None,
            "appointment_id": getattr(event, "appointment_id", None),
        }
    row = advanced(row, event, position, "request")
    kind = type(event)
    status = _STATUS_OF.get(kind)
    if status is not None:
        row["status"] = status
    change = _request_change.get(kind, _UNKNOWN)
    if change is _UNKNOWN:
        change = _request_change[kind] = _learn_request_change(kind)
    if change is not None:
        change(row, event)
    return row


def _assigned(row: dict[str, Any], event: Any) -> None:
    row["assigned_to"] = event.officer


def _fee_assessed(row: dict[str, Any], event: Any) -> None:
    row["payment_id"] = event.payment_id
    row["payment_amount_satang"] = event.amount_satang
    row["payment_status"] = payment.AWAITING_PAYMENT


def _closed_with_reason(row: dict[str, Any], event: Any) -> None:
    row["outcome"] = event.reason


def _completed(row: dict[str, Any], event: Any) -> None:
    row["result"] = event.result


def _action_required(row: dict[str, Any], event: Any) -> None:
    row["action_required"] = {"job": event.job, "reason": event.reason, "job_id": event.job_id}


def _retry_requested(row: dict[str, Any], _: Any) -> None:
    row["action_required"] = None


# What each kind of request event changes in the row besides its status, learned once per
# class (the first of these it is an instance of, in this order).
_REQUEST_CHANGES: tuple[tuple[type | tuple[type, ...], Any], ...] = (
    (ServiceRequest.Assigned, _assigned),
    (ServiceRequest.FeeAssessed, _fee_assessed),
    ((ServiceRequest.Rejected, ServiceRequest.Withdrawn), _closed_with_reason),
    (ServiceRequest.Completed, _completed),
    (ServiceRequest.ActionRequired, _action_required),
    (ServiceRequest.RetryRequested, _retry_requested),
)
_UNKNOWN = object()
_request_change: dict[type, Any] = {}


def _learn_request_change(kind: type) -> Any:
    for classes, change in _REQUEST_CHANGES:
        if issubclass(kind, classes):
            return change
    return None


def fold_payment(row: dict[str, Any] | None, event: Any, position: int) -> dict[str, Any]:
    """Apply one Payment event to a payment row."""
    if isinstance(event, Payment.Opened):
        return {
            "id": event.originator_id,
            "request_id": event.request_id,
            "reference": event.reference,
            "organization": event.organization,
            "amount_satang": event.amount_satang,
            "status": payment.AWAITING_PAYMENT,
            "promptpay_payload": event.promptpay_payload,
            "expires_at": event.expires_at,
            "version": event.originator_version,
            "position": position,
            "method": None,
            "updated_at": event.timestamp,
            "discrepancies": [],
            "notice_id": getattr(event, "notice_id", None),
            "instalment": getattr(event, "instalment", None),
            "receipt": None,
        }
    row = advanced(row, event, position, "payment")
    if isinstance(event, Payment.Received):
        row["status"] = payment.PAID
        row["method"] = event.method
    elif isinstance(event, Payment.Expired):
        row["status"] = payment.EXPIRED
    elif isinstance(event, Payment.Refunded):
        row["status"] = payment.REFUNDED
    elif isinstance(event, Payment.Discrepancy):
        row["discrepancies"] = [*row["discrepancies"], {"amount_satang": event.amount_satang, "reason": event.reason}]
    elif isinstance(event, Payment.ReceiptIssued):
        row["receipt"] = {"id": str(event.receipt_id), "number": event.receipt_number}
    return row


def fold_receipt(row: dict[str, Any] | None, event: Any, position: int) -> dict[str, Any]:
    """Apply one Receipt event to a receipt row."""
    if isinstance(event, Receipt.Issued):
        return {
            "id": event.originator_id,
            "number": event.number,
            "organization": event.organization,
            "fiscal_year": event.fiscal_year,
            "sequence": event.sequence,
            "payment_id": event.payment_id,
            "request_id": event.request_id,
            "reference": event.reference,
            "payer": event.payer,
            "items": event.items,
            "amount_satang": event.amount_satang,
            "method": event.method,
            "issued_at": event.timestamp,
            "issued_on": bangkok_day(event.timestamp),
            "status": "issued",
            "void_reason": None,
            "voided_at": None,
            "version": event.originator_version,
            "position": position,
        }
    row = advanced(row, event, position, "receipt", stamped=False)
    if isinstance(event, Receipt.Voided):
        row["status"] = "void"
        row["void_reason"] = event.reason
        row["voided_at"] = event.timestamp
    return row


def is_in_work_queue(row: dict[str, Any]) -> bool:
    return row["status"] not in FINAL


def count_increments(event: Any, organization: str, service: str) -> tuple[tuple[str, date, str], str, int] | None:
    """What one event adds to the daily counts: ((organization, day, service), column, amount)."""
    column = COUNTED.get(type(event))
    if column is not None:
        return (organization, bangkok_day(event.timestamp), service), column, 1
    if isinstance(event, Payment.Received):
        return (organization, bangkok_day(event.timestamp), service), "paid_satang", event.amount_satang
    return None
