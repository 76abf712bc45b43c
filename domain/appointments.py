"""Counter appointments: calendars (opening hours, slots, seats, closed days), and the three
aggregates that hold a booking's capacity.

Capacity is held by a `Slot` aggregate per (organisation, service, start), whose id is derived
from those three, so every booking for one slot loads and saves the same aggregate. Saving is
optimistic: two bookings that read the slot at the same version cannot both be saved (the event
store refuses the second one's version), so the loser reloads and decides again against the
seats now held. A reschedule changes the old slot, the new slot and the appointment in one
save(): all or nothing. A `BookingLedger` per (applicant, service) holds the applicant's open
bookings the same way, so the per-applicant limit holds under concurrency too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Iterator, Mapping, Sequence
from uuid import UUID, uuid5

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate

from domain.actors import Actor
from domain.calendar import BANGKOK
from domain.errors import DomainError, InvalidCommand, TransitionNotAllowed

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ANY_SERVICE = "*"

BOOKED = "booked"
CANCELLED = "cancelled"
CHECKED_IN = "checked_in"
NO_SHOW = "no_show"
APPOINTMENT_STATUSES = (BOOKED, CANCELLED, CHECKED_IN, NO_SHOW)
# A seat stays taken by a booking that was checked in or missed: the time has been used.
HOLDS_SEAT = frozenset({BOOKED, CHECKED_IN, NO_SHOW})


class SlotFull(DomainError):
    """Every seat of the slot is taken."""


class TooManyBookings(DomainError):
    """The applicant already holds as many open bookings for this service as the rules allow."""


class NotBookable(InvalidCommand):
    """The time is not a slot, is in the past, or falls on a closed day (``errors`` names the field)."""


class AppointmentNotOpen(TransitionNotAllowed):
    """The appointment was already cancelled, checked in or marked as a no-show."""


# -- calendars as data -----------------------------------------------------------------------


@dataclass(frozen=True)
class CounterCalendar:
    """How one organisation's counter takes appointments for one service."""

    # Weekday (0 = Monday) → opening periods [(opens, closes)], Bangkok time.
    hours: Mapping[int, tuple[tuple[time, time], ...]]
    slot_minutes: int = 30
    seats: int = 2
    max_open_per_applicant: int = 2
    no_show_grace_minutes: int = 15
    reminder_lead_minutes: int = 24 * 60
    # How far ahead a booking may be made.
    horizon_days: int = 90


@dataclass(frozen=True)
class ClosedDay:
    day: date
    name: str
    organization: str = "*"  # "*": a public holiday for every organisation
    confirmed: bool = True


@dataclass(frozen=True)
class SlotTime:
    start: datetime
    end: datetime


def slots_on(calendar: CounterCalendar, day: date) -> list[SlotTime]:
    """The slots of one Bangkok day, ignoring closures: each opening period cut into slots that
    fit whole."""
    result = []
    step = timedelta(minutes=calendar.slot_minutes)
    for opens, closes in calendar.hours.get(day.weekday(), ()):
        start = datetime.combine(day, opens, BANGKOK)
        end = datetime.combine(day, closes, BANGKOK)
        while start + step <= end:
            result.append(SlotTime(start, start + step))
            start += step
    return result


def days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def check_bookable(calendar: CounterCalendar, closed: Mapping[date, str], start: datetime, now: datetime, field_name: str = "start") -> SlotTime:
    """The slot that begins at ``start``, or `NotBookable` naming ``field_name``: a time that is
    not a slot's start, a slot already begun, a closed day, or beyond the booking horizon."""
    local = start.astimezone(BANGKOK)
    day = local.date()
    if day in closed:
        raise NotBookable("the counter is closed that day", [(field_name, f"{day.isoformat()} is a closed day ({closed[day]})")])
    slot = next((s for s in slots_on(calendar, day) if s.start == local), None)
    if slot is None:
        raise NotBookable("the time is not the start of a slot", [(field_name, f"{local.isoformat()} is not the start of a slot of this counter")])
    if slot.start <= now:
        raise NotBookable("the slot is in the past", [(field_name, "is in the past")])
    if day > now.astimezone(BANGKOK).date() + timedelta(days=calendar.horizon_days):
        raise NotBookable("the slot is too far ahead", [(field_name, f"is more than {calendar.horizon_days} days ahead")])
    return slot


def slot_id(organization: str, service: str, start: datetime, namespace: UUID) -> UUID:
    return uuid5(namespace, f"slot\n{organization}\n{service}\n{start.astimezone(BANGKOK).isoformat()}")


def ledger_id(subject: str, service: str, namespace: UUID) -> UUID:
    """The id of an applicant's booking ledger for a service. ``subject`` is the applicant's keyed
    reference (the application passes the blind index of the national ID), so the id is the same
    for the same person but reveals nothing to whoever knows only the ID. Ledgers opened before
    ids were keyed have the id made from the plain national ID."""
    return uuid5(namespace, f"booking-ledger\n{subject}\n{service}")


# -- aggregates ------------------------------------------------------------------------------


class Slot(BaseAggregate[UUID]):
    """The seats of one slot of one organisation's counter for one service."""

    TOPIC = "onestop:Slot"

    class Event(AggregateEvent):
        pass

    class Opened(Event, AggregateCreated):
        TOPIC = "onestop:Slot.Opened"
        organization: str
        service: str
        start: datetime
        end: datetime

    class SeatHeld(Event):
        TOPIC = "onestop:Slot.SeatHeld"
        appointment_id: UUID

        def apply(self, slot: Slot) -> None:
            slot.holders.append(self.appointment_id)

    class SeatReleased(Event):
        TOPIC = "onestop:Slot.SeatReleased"
        appointment_id: UUID

        def apply(self, slot: Slot) -> None:
            slot.holders.remove(self.appointment_id)

    def __init__(self, *, organization: str, service: str, start: datetime, end: datetime) -> None:
        self.organization = organization
        self.service = service
        self.start = start
        self.end = end
        self.holders: list[UUID] = []

    @classmethod
    def open(cls, *, id: UUID, at: datetime, organization: str, service: str, start: datetime, end: datetime) -> Slot:
        return cls._create(cls.Opened, id=id, timestamp=at, organization=organization, service=service, start=start, end=end)

    def hold(self, appointment_id: UUID, seats: int, at: datetime) -> None:
        if appointment_id in self.holders:
            return
        if len(self.holders) >= seats:
            raise SlotFull(f"every seat of the slot at {self.start.astimezone(BANGKOK).isoformat()} is taken")
        self.trigger_event(self.SeatHeld, timestamp=at, appointment_id=appointment_id)

    def release(self, appointment_id: UUID, at: datetime) -> None:
        if appointment_id in self.holders:
            self.trigger_event(self.SeatReleased, timestamp=at, appointment_id=appointment_id)


class BookingLedger(BaseAggregate[UUID]):
    """One applicant's open bookings for one service (its id is derived; it holds no personal data)."""

    TOPIC = "onestop:BookingLedger"

    class Event(AggregateEvent):
        pass

    class Opened(Event, AggregateCreated):
        TOPIC = "onestop:BookingLedger.Opened"
        service: str

    class Added(Event):
        TOPIC = "onestop:BookingLedger.Added"
        appointment_id: UUID

        def apply(self, ledger: BookingLedger) -> None:
            ledger.open_bookings.append(self.appointment_id)

    class Removed(Event):
        TOPIC = "onestop:BookingLedger.Removed"
        appointment_id: UUID

        def apply(self, ledger: BookingLedger) -> None:
            ledger.open_bookings.remove(self.appointment_id)

    def __init__(self, *, service: str) -> None:
        self.service = service
        self.open_bookings: list[UUID] = []

    @classmethod
    def open(cls, *, id: UUID, at: datetime, service: str) -> BookingLedger:
        return cls._create(cls.Opened, id=id, timestamp=at, service=service)

    def add(self, appointment_id: UUID, limit: int, at: datetime) -> None:
        if appointment_id in self.open_bookings:
            return
        if len(self.open_bookings) >= limit:
            raise TooManyBookings(f"at most {limit} open bookings per applicant for {self.service}")
        self.trigger_event(self.Added, timestamp=at, appointment_id=appointment_id)

    def remove(self, appointment_id: UUID, at: datetime) -> None:
        if appointment_id in self.open_bookings:
            self.trigger_event(self.Removed, timestamp=at, appointment_id=appointment_id)


class Appointment(BaseAggregate[UUID]):
    """A citizen's booked time at an organisation's counter, from booking to check-in (or not)."""

    TOPIC = "onestop:Appointment"

    class Event(AggregateEvent):
        actor: dict[str, Any]
        channel: str

    class Booked(Event, AggregateCreated):
        TOPIC = "onestop:Appointment.Booked"
        organization: str
        service: str
        start: datetime
        end: datetime
        applicant: dict[str, Any]
        request_hash: str

    class Cancelled(Event):
        TOPIC = "onestop:Appointment.Cancelled"
        reason: str | None

        def apply(self, appointment: Appointment) -> None:
            appointment.status = CANCELLED

    class Rescheduled(Event):
        TOPIC = "onestop:Appointment.Rescheduled"
        previous_start: datetime
        start: datetime
        end: datetime

        def apply(self, appointment: Appointment) -> None:
            appointment.start = self.start
            appointment.end = self.end
            appointment.reminded = False

    class CheckedIn(Event):
        TOPIC = "onestop:Appointment.CheckedIn"
        request_id: UUID

        def apply(self, appointment: Appointment) -> None:
            appointment.status = CHECKED_IN
            appointment.request_id = self.request_id

    class MarkedNoShow(Event):
        TOPIC = "onestop:Appointment.MarkedNoShow"

        def apply(self, appointment: Appointment) -> None:
            appointment.status = NO_SHOW

    class ReminderDue(Event):
        """Published so that integrators send the reminder (LINE, SMS); carries no personal data."""

        TOPIC = "onestop:Appointment.ReminderDue"
        start: datetime

        def apply(self, appointment: Appointment) -> None:
            appointment.reminded = True

    def __init__(self, *, organization: str, service: str, start: datetime, end: datetime, applicant: dict[str, Any],
                 request_hash: str, actor: dict[str, Any], channel: str) -> None:
        self.organization = organization
        self.service = service
        self.start = start
        self.end = end
        self.applicant = applicant
        self.request_hash = request_hash
        self.booked_by = actor
        self.channel = channel
        self.status = BOOKED
        self.request_id: UUID | None = None
        self.reminded = False

    @classmethod
    def book(cls, *, id: UUID, at: datetime, actor: Actor, channel: str, **fields: Any) -> Appointment:
        return cls._create(cls.Booked, id=id, timestamp=at, actor=actor.as_dict(), channel=channel, **fields)

    def _check_open(self) -> None:
        if self.status != BOOKED:
            raise AppointmentNotOpen(f"the appointment is {self.status}")

    def _emit(self, event_class: type[Event], actor: Actor, channel: str, at: datetime, **data: Any) -> None:
        self.trigger_event(event_class, actor=actor.as_dict(), channel=channel, timestamp=at, **data)

    def cancel(self, reason: str | None, actor: Actor, channel: str, at: datetime) -> None:
        self._check_open()
        self._emit(self.Cancelled, actor, channel, at, reason=reason)

    def reschedule(self, slot: SlotTime, actor: Actor, channel: str, at: datetime) -> None:
        self._check_open()
        if slot.start == self.start:
            raise TransitionNotAllowed("the appointment is already at that time")
        self._emit(self.Rescheduled, actor, channel, at, previous_start=self.start, start=slot.start, end=slot.end)

    def check_in(self, request_id: UUID, actor: Actor, at: datetime) -> None:
        self._check_open()
        self._emit(self.CheckedIn, actor, "counter", at, request_id=request_id)

    def mark_no_show(self, actor: Actor, at: datetime) -> None:
        self._check_open()
        self._emit(self.MarkedNoShow, actor, "system", at)

    def remind(self, actor: Actor, at: datetime) -> None:
        if self.status == BOOKED and not self.reminded:
            self._emit(self.ReminderDue, actor, "system", at, start=self.start)


def describe_appointment(a: Appointment, position: int | None) -> dict[str, Any]:
    """The one shape clients see of an appointment (views hold the same)."""
    return appointment_document(
        id=a.id, organization=a.organization, service=a.service, start=a.start, end=a.end, status=a.status,
        applicant=a.applicant, request_id=a.request_id, reminded=a.reminded, version=a.version, position=position,
        booked_at=a.created_on, updated_at=a.modified_on,
    )


def appointment_document(*, id: Any, organization: str, service: str, start: datetime, end: datetime, status: str,
                         applicant: Mapping[str, Any], request_id: Any, reminded: bool, version: int, position: int | None,
                         booked_at: datetime, updated_at: datetime) -> dict[str, Any]:
    return {
        "id": str(id), "organization": organization, "service": service,
        "start": start.astimezone(BANGKOK), "end": end.astimezone(BANGKOK), "status": status,
        "applicant": dict(applicant), "request_id": str(request_id) if request_id else None, "reminded": reminded,
        "version": version, "position": position, "booked_at": booked_at, "updated_at": updated_at,
    }


@dataclass(frozen=True)
class AppointmentRules:
    """The calendars, public holidays and closures in force: what `RuleBook` hands the use cases."""

    calendars: Sequence[tuple[str, str, date, CounterCalendar]] = ()  # (organization, service, effective_from, calendar)
    closed_days: Sequence[ClosedDay] = ()
    default: CounterCalendar = field(default_factory=lambda: CounterCalendar(
        hours={d: ((time(8, 30), time(16, 30)),) for d in range(5)}))

    def calendar(self, organization: str, service: str, on: date) -> CounterCalendar:
        """The organisation's own calendar for the service, else its calendar for every service,
        else the general one for the service, else the general one for every service."""
        best: dict[int, tuple[date, CounterCalendar]] = {}
        for org, svc, frm, cal in self.calendars:
            if frm > on:
                continue
            if org not in (organization, "*") or svc not in (service, ANY_SERVICE):
                continue
            rank = (2 if org == organization else 0) + (1 if svc == service else 0)
            held = best.get(rank)
            if held is None or frm >= held[0]:
                best[rank] = (frm, cal)
        if not best:
            return self.default
        return best[max(best)][1]

    def closed(self, organization: str, first: date, last: date) -> dict[date, str]:
        """The closed days (public holidays and the organisation's own closures) between two dates."""
        return {c.day: c.name for c in self.closed_days
                if first <= c.day <= last and c.organization in ("*", organization)}
