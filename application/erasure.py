"""Erasure of a person's personal data (PDPA s.33), by deleting their data keys.

The log keeps every event (the hash chain, replay and as_of still work); the person's personal
fields read ``[erased]`` afterwards, everywhere. A person with a request still open is not
erased: the request needs their data (409, naming the requests). A ``DataSubject.Erased`` event,
keyed by the blind index of the national ID and carrying no personal field, records who erased,
when and on what legal basis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError

from application.access import check_can_erase
from application.base import BackOfficeBase
from application.errors import ApplicationError, NotFound
from application.ids import ID_NAMESPACE
from application.ports import PersonalData
from domain.actors import Actor
from domain.allowance import ENDED, Recipient
from domain.appointments import BOOKED, Appointment
from domain.data_subject import DataSubject, SubjectHasOpenRequests
from domain.errors import InvalidCommand
from domain.national_id import is_valid_national_id
from domain.service_request import ServiceRequest
from domain.tax_notice import TaxNotice

MAX_BASIS = 500


class PersonalDataNotConfigured(ApplicationError):
    """Erasure needs per-person encryption (ONESTOP_ENCRYPT_PERSONAL_DATA=on) and its keys."""


@dataclass(frozen=True)
class EraseCommand:
    national_id: str
    basis: str
    actor: Actor
    channel: str = "web"
    reason: str = "request"  # or "retention"


def data_subject_id(index: str) -> UUID:
    return uuid5(ID_NAMESPACE, f"data-subject\n{index}")


def _port(app: BackOfficeBase) -> PersonalData:
    port = getattr(app, "personal_data", None)
    if port is None:
        raise PersonalDataNotConfigured("personal data is not encrypted per person here, so it cannot be erased")
    return port


def check_erase_command(national_id: str, basis: Any) -> str:
    """The basis, stripped; InvalidCommand naming the field otherwise."""
    if not is_valid_national_id(national_id):
        raise InvalidCommand("not a valid national ID", [("national_id", "must be 13 digits with a valid check digit")])
    if not isinstance(basis, str) or not basis.strip():
        raise InvalidCommand("the legal basis of the erasure is required", [("basis", "must be a non-empty string")])
    if len(basis) > MAX_BASIS:
        raise InvalidCommand("the legal basis is too long", [("basis", f"must be at most {MAX_BASIS} characters")])
    return basis.strip()


def erase_data_subject(app: BackOfficeBase, command: EraseCommand) -> dict[str, Any]:
    """Erase a person: refuse while a request of theirs is open; delete their keys; record the
    erasure; purge the plain copies of their fields.

    The keys go before the event is recorded, so that every reader of the log that meets the
    event can no longer open the person's fields; an erasure interrupted in between is
    completed when asked again (the erased key sets keep their blind index)."""
    basis = check_erase_command(command.national_id, command.basis)
    check_can_erase(command.actor)
    port = _port(app)
    return erase_by_index(app, port.index(command.national_id), basis, command.actor, channel=command.channel, reason=command.reason)


def erase_by_index(app: BackOfficeBase, index: str, basis: str, actor: Actor, *, channel: str = "system", reason: str = "request") -> dict[str, Any]:
    """Erase the person with this blind index (the retention sweep knows people only so)."""
    port = _port(app)
    subject = _load(app, index)
    recorded = subject.erased_subjects if subject is not None else set()
    to_erase = [s for s in port.subjects(index) if str(s) not in recorded]
    if not to_erase:
        if subject is None:
            raise NotFound("OneStop holds no personal data of this person")
        return erasure_document(index, subject, None)
    aggregates = port.aggregates(to_erase)
    open_references = [r for r in (_still_open(app, a) for a in aggregates) if r is not None]
    if open_references:
        raise SubjectHasOpenRequests(
            "this person has requests or records still open, which need their data; close, end or withdraw them first: "
            + ", ".join(sorted(open_references))
        )
    deleted = port.erase_keys(to_erase)
    at = app.clock.now()
    if subject is None:
        subject = DataSubject.register(id=data_subject_id(index), blind_index=index, actor=actor, at=at)
    subject.erase(basis=basis, subjects=[str(s) for s in to_erase], aggregates=len(aggregates), reason=reason,
                  actor=actor, channel=channel, at=at)
    position = app._save(subject)
    # At once here; the projector does it again when it reaches the event, as the views' and
    # the feed's one writer, so that nothing it had in flight brings the fields back.
    purged = {"keys": deleted, **port.purge(aggregates, to_erase), "sessions": port.forget_person(index)}
    return erasure_document(index, subject, position, purged)


def erasure_status(app: BackOfficeBase, national_id: str) -> dict[str, Any] | None:
    """The erasures recorded for a person (None when never erased): for the person's own data
    and the DPO's export."""
    port = _port(app)
    index = port.index(national_id)
    subject = _load(app, index)
    if subject is None:
        return None
    live = [s for s in port.subjects(index) if str(s) not in subject.erased_subjects]
    return erasure_document(index, subject, None) | {"holds_data": bool(live)}


def _still_open(app: BackOfficeBase, aggregate_id: UUID) -> str | None:
    """What keeps a person's data in use, named (None when nothing does): an open request, an
    allowance still paid (active or suspended), a tax notice not fully paid, a booked
    appointment."""
    try:
        aggregate = app.repository.get(aggregate_id)
    except AggregateNotFoundError:
        return None  # a save that failed
    if isinstance(aggregate, ServiceRequest):
        return f"{aggregate.reference} ({aggregate.status})" if aggregate.is_open else None
    if isinstance(aggregate, Recipient):
        return f"allowance {aggregate.id} ({aggregate.status})" if aggregate.status != ENDED else None
    if isinstance(aggregate, TaxNotice):
        return f"tax notice {aggregate.number} (unpaid)" if aggregate.paid_satang < aggregate.tax_satang else None
    if isinstance(aggregate, Appointment):
        return f"appointment {aggregate.id} ({aggregate.status})" if aggregate.status == BOOKED else None
    return None


def _load(app: BackOfficeBase, index: str) -> DataSubject | None:
    try:
        subject = app.repository.get(data_subject_id(index))
    except AggregateNotFoundError:
        return None
    return subject if isinstance(subject, DataSubject) else None


def erasure_document(index: str, subject: DataSubject, position: int | None, purged: dict[str, int] | None = None) -> dict[str, Any]:
    last = subject.erasures[-1] if subject.erasures else None
    document: dict[str, Any] = {
        "subject": index,
        "status": "erased",
        "erased_at": _iso(last["at"]) if last else None,
        "basis": last["basis"] if last else None,
        "reason": last["reason"] if last else None,
        "erasures": len(subject.erasures),
        "position": position,
    }
    if purged is not None:
        document["purged"] = purged
    return document


def _iso(value: datetime) -> str:
    return value.isoformat()
