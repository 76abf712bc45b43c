"""The appointments view: one row per appointment, folded from its events (a pure function, so
the view is an exact function of the log). Slot availability is counted from these rows."""

from __future__ import annotations

from typing import Any

from application.projections import advanced

from domain.appointments import BOOKED, CANCELLED, CHECKED_IN, NO_SHOW, Appointment, appointment_document

APPOINTMENT_COLUMNS = (
    "id", "organization", "service", "starts_at", "ends_at", "status", "applicant_national_id", "applicant_name",
    "request_id", "reminded", "version", "position", "booked_at", "updated_at",
)

_STATUS_OF = {
    Appointment.Cancelled: CANCELLED,
    Appointment.CheckedIn: CHECKED_IN,
    Appointment.MarkedNoShow: NO_SHOW,
}


def fold_appointment(row: dict[str, Any] | None, event: Any, position: int) -> dict[str, Any]:
    """Apply one Appointment event to its row."""
    if isinstance(event, Appointment.Booked):
        return {
            "id": event.originator_id, "organization": event.organization, "service": event.service,
            "starts_at": event.start, "ends_at": event.end, "status": BOOKED,
            "applicant_national_id": event.applicant["national_id"], "applicant_name": event.applicant.get("name", ""),
            "request_id": None, "reminded": False, "version": event.originator_version, "position": position,
            "booked_at": event.timestamp, "updated_at": event.timestamp,
        }
    row = advanced(row, event, position, "appointment")
    status = _STATUS_OF.get(type(event))
    if status is not None:
        row["status"] = status
    if isinstance(event, Appointment.CheckedIn):
        row["request_id"] = event.request_id
    elif isinstance(event, Appointment.Rescheduled):
        row["starts_at"], row["ends_at"], row["reminded"] = event.start, event.end, False
    elif isinstance(event, Appointment.ReminderDue):
        row["reminded"] = True
    return row


def appointment_from_row(row: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(document, access fields)`` of a view row, in the shape commands answer with."""
    document = appointment_document(
        id=row["id"], organization=row["organization"], service=row["service"], start=row["starts_at"], end=row["ends_at"],
        status=row["status"], applicant={"national_id": row["applicant_national_id"], "name": row["applicant_name"]},
        request_id=row["request_id"], reminded=row["reminded"], version=row["version"], position=row["position"],
        booked_at=row["booked_at"], updated_at=row["updated_at"],
    )
    return document, {"organization": row["organization"], "applicant_national_id": row["applicant_national_id"]}
