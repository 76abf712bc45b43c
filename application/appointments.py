"""Counter appointments: book, cancel, reschedule, check in, and the sweep that sends reminders
and marks no-shows.

Capacity under concurrency: each use case loads the `Slot` aggregates it touches (and the
applicant's `BookingLedger`), decides, and saves everything it changed in one save(). Two
commands that read a slot at the same version cannot both be saved: the event store's unique
(aggregate, version) key refuses the second, eventsourcing raises IntegrityError, and the
command runs again from a fresh load, so it decides against the seats now held. Retries are
bounded: a command only loses to a command that succeeded, and a slot of N seats takes at most
N holds before every further attempt is refused without saving.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, TypeVar
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.access import STAFF
from application.base import BackOfficeBase
from application.commands import SubmitCommand
from application.errors import ApplicationError, Forbidden, IdempotencyKeyReused, NotFound, StaleVersion
from application.ids import ID_NAMESPACE
from application.json_schema import check
from application.outcomes import Outcome
from domain.actors import Actor
from domain.appointments import (
    BOOKED,
    Appointment,
    AppointmentRules,
    BookingLedger,
    NotBookable,
    Slot,
    SlotTime,
    check_bookable,
    describe_appointment,
    ledger_id,
    slot_id,
)
from domain.calendar import BANGKOK, bangkok_day
from domain.catalogue import SERVICES
from domain.errors import InvalidCommand, TransitionNotAllowed
from domain.national_id import is_valid_national_id
from domain.submission import APPLICANT_SCHEMA

T = TypeVar("T")

# Each retry follows a save that succeeded on the same slot or ledger (see the module's
# docstring), so this bound is never reached by honest contention on slots of up to 60 seats.
MAX_ATTEMPTS = 64

# Every service of the catalogue that is done at a counter, except the old free-text booking.
BOOKABLE_SERVICES = tuple(code for code, s in SERVICES.items() if s.accepts_submissions)

BOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "organization": {"type": "string", "minLength": 1, "maxLength": 40},
        "service": {"type": "string", "enum": list(BOOKABLE_SERVICES)},
        "start": {"type": "string", "format": "date-time"},
        "applicant": APPLICANT_SCHEMA,
    },
    "required": ["organization", "service", "start", "applicant"],
    "additionalProperties": False,
}
CANCEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}},
    "additionalProperties": False,
}
RESCHEDULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"start": {"type": "string", "format": "date-time"}},
    "required": ["start"],
    "additionalProperties": False,
}
CHECK_IN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"details": {"type": "object"}},
    "additionalProperties": False,
}


class SlotBusy(ApplicationError):
    """The slot changed under every attempt; try again (never expected: see MAX_ATTEMPTS)."""


@dataclass(frozen=True)
class SweepCount:
    reminded: int = 0
    no_shows: int = 0


def appointment_access(appointment: Any) -> dict[str, Any]:
    return {"organization": appointment.organization, "applicant_national_id": appointment.applicant["national_id"]}


def check_appointment_access(actor: Actor, action: str, access: dict[str, Any]) -> None:
    """Who may do what with an appointment: the applicant (read, cancel, reschedule), officers of
    its organisation (all, and check-in), admins (all), auditors (read). Others get NotFound."""
    applicant = actor.role == "citizen" and actor.pid is not None and actor.pid == access["applicant_national_id"]
    staff = (actor.role == "officer" and actor.org == access["organization"]) or actor.role == "admin"
    if action == "read" and (applicant or staff or actor.role == "auditor"):
        return
    if action in ("cancel", "reschedule") and (applicant or staff):
        return
    if action == "check-in" and staff:
        return
    if applicant or staff or actor.role == "auditor":
        raise Forbidden(f"a {actor.role} may not {action} this appointment")
    raise NotFound("no such appointment")


def _parse_start(raw: str, field_name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidCommand("the time needs an offset", [(field_name, "must be an RFC 3339 date-time with an offset")])
    try:
        return value.astimezone(BANGKOK)
    except OverflowError:  # 9999-12-31T23:59+00:00 is in year 10000 in Bangkok
        raise InvalidCommand("the time is out of range", [(field_name, "is not a time a slot can have")]) from None


class AppointmentBook(BackOfficeBase):
    """The appointment use cases of the back office (mixed into BackOffice)."""

    @property
    def appointment_rules(self) -> AppointmentRules:
        return self.rules.appointments if self.rules is not None else AppointmentRules()

    # -- loading -----------------------------------------------------------------------------

    def get_appointment(self, appointment_id: UUID) -> Appointment:
        try:
            appointment = self.repository.get(appointment_id)
        except AggregateNotFoundError:
            raise NotFound("no such appointment") from None
        if not isinstance(appointment, Appointment):
            raise NotFound("no such appointment")
        return appointment

    def read_appointment(self, appointment_id: UUID, actor: Actor) -> Outcome:
        appointment = self.get_appointment(appointment_id)
        check_appointment_access(actor, "read", appointment_access(appointment))
        return Outcome(describe_appointment(appointment, None))

    def _slot(self, organization: str, service: str, slot: SlotTime, at: datetime) -> Slot:
        sid = slot_id(organization, service, slot.start, ID_NAMESPACE)
        try:
            return self.repository.get(sid)  # type: ignore[no-any-return]
        except AggregateNotFoundError:
            return Slot.open(id=sid, at=at, organization=organization, service=service, start=slot.start, end=slot.end)

    def _ledger(self, national_id: str, service: str, at: datetime) -> BookingLedger:
        """The applicant's ledger for the service, its id made from their keyed reference. A
        ledger opened before ids were keyed (its id made from the plain national ID) stays theirs,
        so the limit still counts the bookings it holds."""
        lid = ledger_id(self.subject_ref(national_id), service, ID_NAMESPACE)
        for candidate in (lid, ledger_id(national_id, service, ID_NAMESPACE)):
            try:
                found = self.repository.get(candidate)
            except AggregateNotFoundError:
                continue
            if isinstance(found, BookingLedger):
                return found
        return BookingLedger.open(id=lid, at=at, service=service)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        for _ in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except IntegrityError:
                continue  # someone saved the same slot or ledger first: load again and decide again
        raise SlotBusy("the slot is changing too fast; try again")

    def _bookable(self, organization: str, service: str, start: datetime, at: datetime, field_name: str) -> SlotTime:
        rules = self.appointment_rules
        day = bangkok_day(start)
        calendar = rules.calendar(organization, service, day)
        return check_bookable(calendar, rules.closed(organization, day, day), start, at, field_name)

    # -- book --------------------------------------------------------------------------------

    def book_appointment(self, body: Any, actor: Actor, idempotency_key: str, body_hash: str) -> Outcome:
        """Book a seat: a citizen for themself, an officer of the organisation for a caller."""
        errors = check(BOOK_SCHEMA, body)
        if errors:
            raise InvalidCommand("the body does not fit a booking", errors)
        org = self.directory.get(body["organization"])
        if org is None:
            raise InvalidCommand("unknown organisation", [("organization", f"{body['organization']} is not a known organisation")])
        service = SERVICES[body["service"]]
        if not service.offered_at(org):
            raise InvalidCommand("the organisation does not offer this service", [("service", f"{org.code} does not offer {service.code}")])
        national_id = body["applicant"]["national_id"]
        if not is_valid_national_id(national_id):
            raise InvalidCommand("invalid Thai national ID", [("applicant.national_id", "checksum digit does not match")])
        if actor.role == "citizen" and actor.pid != national_id:
            raise Forbidden("a citizen books for themself only", [("applicant.national_id", "must be your own national ID")])
        if actor.role == "officer" and actor.org != org.code:
            raise Forbidden("an officer books at their own organisation's counter", [("organization", f"must be {actor.org}")])
        start = _parse_start(body["start"], "start")
        appointment_id = uuid5(ID_NAMESPACE, f"appointment\n{actor.sub}\n{idempotency_key}")
        channel = "counter" if actor.role in STAFF else "web"

        def attempt() -> Outcome:
            try:
                existing = self.get_appointment(appointment_id)
            except NotFound:
                existing = None
            if existing is not None:
                if existing.request_hash != body_hash:
                    raise IdempotencyKeyReused("this Idempotency-Key was used with a different body")
                first = self.repository.get(appointment_id, version=1)
                return Outcome(describe_appointment(first, None), replayed=True)
            at = self.clock.now()
            slot_time = self._bookable(org.code, service.code, start, at, "start")
            calendar = self.appointment_rules.calendar(org.code, service.code, bangkok_day(start))
            slot = self._slot(org.code, service.code, slot_time, at)
            ledger = self._ledger(national_id, service.code, at)
            appointment = Appointment.book(
                id=appointment_id, at=at, actor=actor, channel=channel, organization=org.code, service=service.code,
                start=slot_time.start, end=slot_time.end,
                applicant={"national_id": national_id, "name": body["applicant"]["name"]}, request_hash=body_hash,
            )
            slot.hold(appointment.id, calendar.seats, at)
            ledger.add(appointment.id, calendar.max_open_per_applicant, at)
            return Outcome(describe_appointment(appointment, self.save_at(appointment, slot, ledger)))

        return self._retrying(attempt)

    # -- cancel, reschedule ------------------------------------------------------------------

    def _load_for(self, appointment_id: UUID, action: str, actor: Actor, if_match: int | None) -> Appointment:
        appointment = self.get_appointment(appointment_id)
        check_appointment_access(actor, action, appointment_access(appointment))
        if if_match is not None and if_match != appointment.version:
            raise StaleVersion(f"the appointment is at version {appointment.version}, not {if_match}", appointment.version)
        return appointment

    def cancel_appointment(self, appointment_id: UUID, body: Any, actor: Actor, if_match: int | None) -> Outcome:
        """Cancel a booking and free its seat."""
        errors = check(CANCEL_SCHEMA, body)
        if errors:
            raise InvalidCommand("the body does not fit cancel", errors)

        def attempt() -> Outcome:
            appointment = self._load_for(appointment_id, "cancel", actor, if_match)
            at = self.clock.now()
            slot = self._slot(appointment.organization, appointment.service, SlotTime(appointment.start, appointment.end), at)
            ledger = self._ledger(appointment.applicant["national_id"], appointment.service, at)
            appointment.cancel(body.get("reason"), actor, "counter" if actor.role in STAFF else "web", at)
            slot.release(appointment.id, at)
            ledger.remove(appointment.id, at)
            return Outcome(describe_appointment(appointment, self.save_at(appointment, slot, ledger)))

        return self._retrying(attempt)

    def reschedule_appointment(self, appointment_id: UUID, body: Any, actor: Actor, if_match: int | None) -> Outcome:
        """Move a booking to another slot: the new seat is taken and the old one freed in one
        transaction, so the appointment never holds both or neither."""
        errors = check(RESCHEDULE_SCHEMA, body)
        if errors:
            raise InvalidCommand("the body does not fit reschedule", errors)
        start = _parse_start(body["start"], "start")

        def attempt() -> Outcome:
            appointment = self._load_for(appointment_id, "reschedule", actor, if_match)
            if appointment.status != BOOKED:
                raise TransitionNotAllowed(f"the appointment is {appointment.status}")
            at = self.clock.now()
            if appointment.start <= at:
                raise TransitionNotAllowed("the appointment has begun; it can no longer be moved")
            new_time = self._bookable(appointment.organization, appointment.service, start, at, "start")
            if new_time.start == appointment.start:
                raise NotBookable("the appointment is already at that time", [("start", "is the appointment's current time")])
            calendar = self.appointment_rules.calendar(appointment.organization, appointment.service, bangkok_day(start))
            old = self._slot(appointment.organization, appointment.service, SlotTime(appointment.start, appointment.end), at)
            new = self._slot(appointment.organization, appointment.service, new_time, at)
            new.hold(appointment.id, calendar.seats, at)
            old.release(appointment.id, at)
            appointment.reschedule(new_time, actor, "counter" if actor.role in STAFF else "web", at)
            return Outcome(describe_appointment(appointment, self.save_at(appointment, old, new)))

        return self._retrying(attempt)

    # -- at the counter ----------------------------------------------------------------------

    def check_in_appointment(self, appointment_id: UUID, body: Any, actor: Actor) -> Outcome:
        """The applicant arrived: start the service request the appointment was for (channel
        ``counter``), linked both ways. ``related`` is the request's state."""
        errors = check(CHECK_IN_SCHEMA, body)
        if errors:
            raise InvalidCommand("the body does not fit check-in", errors)

        def attempt() -> Outcome:
            appointment = self._load_for(appointment_id, "check-in", actor, None)
            if appointment.status != BOOKED:
                raise TransitionNotAllowed(f"the appointment is {appointment.status}")
            at = self.clock.now()
            if bangkok_day(at) != bangkok_day(appointment.start):
                raise TransitionNotAllowed(f"check-in is on the appointment's day, {bangkok_day(appointment.start).isoformat()}")
            submission = {
                "service": appointment.service, "organization": appointment.organization, "channel": "counter",
                "applicant": dict(appointment.applicant), "details": body.get("details", {}),
            }
            command = SubmitCommand(body=submission, actor=actor, request_hash=f"check-in:{appointment.id}",
                                    idempotency_key=f"check-in\n{appointment.id}")
            reference = self.references.issue(1, at)[0]
            aggregates = self._prepare_submission(command, reference, appointment_id=appointment.id)  # type: ignore[attr-defined]
            request = aggregates[0]
            ledger = self._ledger(appointment.applicant["national_id"], appointment.service, at)
            appointment.check_in(request.id, actor, at)
            ledger.remove(appointment.id, at)
            recordings = self.save(appointment, ledger, *aggregates)
            positions: dict[UUID, int] = {}
            for r in recordings:
                positions[r.domain_event.originator_id] = max(positions.get(r.domain_event.originator_id, 0), r.notification.id)
            position = max(positions.values(), default=None)
            request_state = self._outcome(aggregates, positions).state  # type: ignore[attr-defined]
            return Outcome(describe_appointment(appointment, position), related=request_state)

        return self._retrying(attempt)

    # -- the sweep ---------------------------------------------------------------------------

    def sweep_appointment(self, appointment_id: UUID, actor: Actor) -> SweepCount:
        """Send the reminder of a booking whose lead time has come, or mark a booking not
        checked in by its end plus the grace as a no-show. Safe to run again."""

        def attempt() -> SweepCount:
            appointment = self.get_appointment(appointment_id)
            if appointment.status != BOOKED:
                return SweepCount()
            at = self.clock.now()
            calendar = self.appointment_rules.calendar(appointment.organization, appointment.service, bangkok_day(appointment.start))
            if at >= appointment.end + timedelta(minutes=calendar.no_show_grace_minutes):
                ledger = self._ledger(appointment.applicant["national_id"], appointment.service, at)
                appointment.mark_no_show(actor, at)
                ledger.remove(appointment.id, at)
                self.save(appointment, ledger)
                return SweepCount(no_shows=1)
            if not appointment.reminded and at >= appointment.start - timedelta(minutes=calendar.reminder_lead_minutes) and at < appointment.start:
                appointment.remind(actor, at)
                self.save(appointment)
                return SweepCount(reminded=1)
            return SweepCount()

        return self._retrying(attempt)
