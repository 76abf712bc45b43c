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
from domain.data_subject import DataSubject, SubjectHasOpenRequests
from domain.errors import InvalidCommand
from domain.national_id import is_valid_national_id

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
    """Erase a person: refuse while a request of theirs is open; record the erasure; delete their
    keys; purge the plain copies of their fields."""
    basis = check_erase_command(command.national_id, command.basis)
    check_can_erase(command.actor)
    port = _port(app)
    index = port.index(command.national_id)
    subjects = port.subjects(index)
    aggregates = port.aggregates(subjects)
    open_references = []
    for aggregate_id in aggregates:
        try:
            request = app.get_request(aggregate_id)
        except NotFound:
            continue  # a payment, or a request whose save failed
        if request.is_open:
            open_references.append(f"{request.reference} ({request.status})")
    if open_references:
        raise SubjectHasOpenRequests(
            "this person has requests still open, which need their data; close or withdraw them first: " + ", ".join(sorted(open_references))
        )
    subject = _load(app, index)
    if not subjects:
        if subject is None:
            raise NotFound("OneStop holds no personal data of this person")
        return erasure_document(index, subject, None)
    at = app.clock.now()
    if subject is None:
        subject = DataSubject.register(id=data_subject_id(index), blind_index=index, actor=command.actor, at=at)
    subject.erase(basis=basis, subjects=[str(s) for s in subjects], aggregates=len(aggregates), reason=command.reason,
                  actor=command.actor, channel=command.channel, at=at)
    position = app._save(subject)
    purged = port.erase(subjects, aggregates)
    return erasure_document(index, subject, position, purged)


def erasure_status(app: BackOfficeBase, national_id: str) -> dict[str, Any] | None:
    """The erasures recorded for a person (None when never erased): for the person's own data
    and the DPO's export."""
    port = _port(app)
    index = port.index(national_id)
    subject = _load(app, index)
    if subject is None:
        return None
    return erasure_document(index, subject, None) | {"holds_data": bool(port.subjects(index))}


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
