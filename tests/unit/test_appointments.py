"""Counter appointments on eventsourcing's in-memory store: calendars as data, capacity, the
per-applicant limit, cancel, reschedule, check-in and the sweep."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator
from uuid import UUID

import pytest
from eventsourcing.application import AggregateNotFoundError

from application.appointments import SweepCount
from application.back_office import BackOffice
from application.commands import SubmitCommand, request_hash
from application.errors import Forbidden, IdempotencyKeyReused, SubjectIndexMissing
from application.ids import ID_NAMESPACE
from domain.actors import Actor
from domain.appointments import BookingLedger, NotBookable, SlotFull, TooManyBookings, ledger_id, slots_on
from domain.calendar import BANGKOK
from domain.errors import InvalidCommand, TransitionNotAllowed
from domain.national_id import is_valid_national_id
from domain.organizations import SEED_ORGANIZATIONS, Directory
from domain.rules import RulesError
from onestop.rules_file import load_rules, parse_rules
from onestop.settings import DEMO_BILLER_ID
from tests.conftest import SUBJECT_INDEX
from tests.conftest import national_id as conftest_national_id
from tests.unit.test_back_office import CountingReferences, FakeClock

RULES = load_rules()
OFFICER = Actor(sub="officer-1", role="officer", org="MUN-SAENSUK")
SWEEPER = Actor(sub="onestop-sweeper", role="system")
# Tuesday 1 December 2026, 09:00 in Bangkok.
TUESDAY_9 = datetime(2026, 12, 1, 9, 0, tzinfo=BANGKOK)


def national_id(n: int) -> str:
    nid = conftest_national_id(n)
    assert is_valid_national_id(nid)
    return nid


def citizen(n: int) -> Actor:
    nid = national_id(n)
    return Actor(sub=nid, role="citizen", pid=nid)


def booking(n: int, start: datetime = TUESDAY_9, service: str = "civil.certified-copy") -> dict[str, Any]:
    return {"organization": "MUN-SAENSUK", "service": service, "start": start.isoformat(),
            "applicant": {"national_id": national_id(n), "name": f"ผู้จอง {n}"}}


@pytest.fixture
def clock() -> FakeClock:
    # Monday 30 November 2026, 10:00 in Bangkok.
    return FakeClock(datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc))


@pytest.fixture
def app(clock: FakeClock) -> Iterator[BackOffice]:
    office = BackOffice({"PERSISTENCE_MODULE": "eventsourcing.popo"}, directory=Directory(SEED_ORGANIZATIONS),
                        fees=RULES.fee_schedule(date(2026, 11, 30)), rules=RULES, biller_id=DEMO_BILLER_ID,
                        references=CountingReferences(), clock=clock, subject_index=SUBJECT_INDEX)
    yield office
    office.close()


def book(app: BackOffice, n: int, key: str | None = None, **changes: Any) -> dict[str, Any]:
    body = booking(n, **changes)
    return app.book_appointment(body, citizen(n), key or f"key-{n}-{body['start']}", request_hash(body)).state


def test_the_shipped_calendar_opens_weekdays_from_0830_to_1630_in_30_minute_slots_of_2_seats() -> None:
    calendar = RULES.appointments.calendar("SAO-NONGRI", "complaint", date(2026, 12, 1))
    slots = slots_on(calendar, date(2026, 12, 1))
    assert (calendar.seats, calendar.slot_minutes, len(slots)) == (2, 30, 16)
    assert slots[0].start.isoformat() == "2026-12-01T08:30:00+07:00" and slots[-1].end.isoformat() == "2026-12-01T16:30:00+07:00"
    assert slots_on(calendar, date(2026, 12, 5)) == []  # a Saturday


def test_an_organisations_own_calendar_wins_over_the_general_one() -> None:
    rules = parse_rules("""
[[appointments.calendar]]
effective_from = 2026-01-01
source = "default"
hours = { mon = "08:30-16:30" }

[[appointments.calendar]]
organization = "MUN-SAENSUK"
service = "civil.certified-copy"
effective_from = 2026-06-01
source = "Saen Suk announcement"
hours = { mon = ["08:30-12:00", "13:00-15:00"], sat = "09:00-12:00" }
slot_minutes = 20
seats = 3
""")
    own = rules.appointments.calendar("MUN-SAENSUK", "civil.certified-copy", date(2026, 12, 1))
    assert (own.seats, own.slot_minutes) == (3, 20)
    assert len(slots_on(own, date(2026, 11, 30))) == 10 + 6  # the lunch hour is closed
    assert rules.appointments.calendar("MUN-SAENSUK", "complaint", date(2026, 12, 1)).seats == 2
    assert rules.appointments.calendar("MUN-SAENSUK", "civil.certified-copy", date(2026, 5, 1)).seats == 2


def test_a_calendar_that_closes_before_it_opens_stops_startup_naming_the_entry() -> None:
    with pytest.raises(RulesError, match=r"appointments.calendar \* \*"):
        parse_rules('[[appointments.calendar]]\neffective_from = 2026-01-01\nsource = "x"\nhours = { mon = "16:30-08:30" }\n')


def test_the_2026_public_holidays_are_closed_days_with_unconfirmed_ones_marked() -> None:
    closed = {c.day: c for c in RULES.appointments.closed_days}
    assert date(2026, 12, 10) in closed and closed[date(2026, 12, 10)].confirmed
    assert not closed[date(2026, 12, 7)].confirmed
    assert date(2026, 1, 2) in closed


def test_two_seats_take_two_bookings_and_the_third_is_refused_as_slot_full(app: BackOffice) -> None:
    assert book(app, 1)["status"] == "booked"
    assert book(app, 2)["start"] == TUESDAY_9
    with pytest.raises(SlotFull):
        book(app, 3)


@pytest.mark.parametrize(("start", "why"), [
    (datetime(2026, 12, 10, 9, 0, tzinfo=BANGKOK), "closed day"),   # Constitution Day
    (datetime(2026, 12, 5, 9, 0, tzinfo=BANGKOK), "not the start"),  # a Saturday
    (datetime(2026, 12, 1, 9, 10, tzinfo=BANGKOK), "not the start"),
    (datetime(2026, 12, 1, 16, 30, tzinfo=BANGKOK), "not the start"),
    (datetime(2026, 11, 30, 9, 30, tzinfo=BANGKOK), "in the past"),
    (datetime(2027, 6, 1, 9, 0, tzinfo=BANGKOK), "days ahead"),
])
def test_a_time_that_is_not_a_bookable_slot_is_refused_naming_start(app: BackOffice, start: datetime, why: str) -> None:
    with pytest.raises(NotBookable) as refused:
        book(app, 1, start=start)
    assert refused.value.errors[0][0] == "start" and why in refused.value.errors[0][1] + str(refused.value)


def test_a_citizen_holds_at_most_the_limit_of_open_bookings_per_service(app: BackOffice) -> None:
    book(app, 1)
    book(app, 1, start=TUESDAY_9 + timedelta(hours=1))
    with pytest.raises(TooManyBookings):
        book(app, 1, start=TUESDAY_9 + timedelta(hours=2))
    # Another service is counted apart.
    assert book(app, 1, start=TUESDAY_9 + timedelta(hours=2), service="complaint")["status"] == "booked"


def test_a_booking_ledgers_id_is_made_from_the_keyed_blind_index_not_the_national_id(app: BackOffice) -> None:
    book(app, 1)
    keyed = ledger_id(SUBJECT_INDEX.reference(national_id(1)), "civil.certified-copy", ID_NAMESPACE)
    assert app.repository.get(keyed).open_bookings  # the same person finds the same ledger
    with pytest.raises(AggregateNotFoundError):  # whoever knows only the national ID computes nothing found
        app.repository.get(ledger_id(national_id(1), "civil.certified-copy", ID_NAMESPACE))


def test_a_ledger_opened_before_ids_were_keyed_still_counts_its_open_bookings(app: BackOffice) -> None:
    at = TUESDAY_9 - timedelta(days=1)
    old = BookingLedger.open(id=ledger_id(national_id(1), "civil.certified-copy", ID_NAMESPACE), at=at, service="civil.certified-copy")
    old.add(UUID(int=1), 2, at)
    app.save(old)
    book(app, 1)
    with pytest.raises(TooManyBookings):
        book(app, 1, start=TUESDAY_9 + timedelta(hours=1))
    assert app.repository.get(old.id).version == 3  # the booking went on the ledger the person had


def test_without_the_blind_index_no_ledger_is_made(clock: FakeClock) -> None:
    office = BackOffice({"PERSISTENCE_MODULE": "eventsourcing.popo"}, directory=Directory(SEED_ORGANIZATIONS),
                        fees=RULES.fee_schedule(date(2026, 11, 30)), rules=RULES, biller_id=DEMO_BILLER_ID,
                        references=CountingReferences(), clock=clock)
    try:
        with pytest.raises(SubjectIndexMissing):
            book(office, 1)
    finally:
        office.close()


def test_a_citizen_books_for_themself_only(app: BackOffice) -> None:
    body = booking(1)
    with pytest.raises(Forbidden):
        app.book_appointment(body, citizen(2), "k", request_hash(body))


def test_the_same_key_replays_the_booking_and_another_body_is_refused(app: BackOffice) -> None:
    first = book(app, 1, key="same")
    body = booking(1)
    again = app.book_appointment(body, citizen(1), "same", request_hash(body))
    assert again.replayed and again.state["id"] == first["id"]
    other = booking(1, start=TUESDAY_9 + timedelta(hours=1))
    with pytest.raises(IdempotencyKeyReused):
        app.book_appointment(other, citizen(1), "same", request_hash(other))


def test_cancelling_frees_the_seat(app: BackOffice) -> None:
    first = book(app, 1)
    book(app, 2)
    cancelled = app.cancel_appointment(UUID(first["id"]), {"reason": "ติดธุระ"}, citizen(1), None).state
    assert cancelled["status"] == "cancelled"
    assert book(app, 3)["status"] == "booked"
    with pytest.raises(TransitionNotAllowed):
        app.cancel_appointment(UUID(first["id"]), {}, citizen(1), None)


def test_rescheduling_into_a_full_slot_is_refused_and_the_old_seat_stays_held(app: BackOffice) -> None:
    later = TUESDAY_9 + timedelta(hours=1)
    book(app, 1, start=later)
    book(app, 2, start=later)
    mine = book(app, 3)
    with pytest.raises(SlotFull):
        app.reschedule_appointment(UUID(mine["id"]), {"start": later.isoformat()}, citizen(3), None)
    book(app, 4)  # the 09:00 slot still has my seat and one free
    with pytest.raises(SlotFull):
        book(app, 5)


def test_rescheduling_moves_the_seat_in_one_step(app: BackOffice) -> None:
    mine = book(app, 1)
    later = TUESDAY_9 + timedelta(hours=1)
    moved = app.reschedule_appointment(UUID(mine["id"]), {"start": later.isoformat()}, citizen(1), mine["version"]).state
    assert moved["start"] == later
    book(app, 2)
    book(app, 3)  # both 09:00 seats free again
    book(app, 4, start=later)
    with pytest.raises(SlotFull):
        book(app, 5, start=later)


def test_check_in_on_the_day_starts_the_counter_request_linked_both_ways(app: BackOffice, clock: FakeClock) -> None:
    mine = book(app, 1, service="complaint")
    clock.at = TUESDAY_9 - timedelta(minutes=10)
    with pytest.raises(Forbidden):
        app.check_in_appointment(UUID(mine["id"]), {}, Actor(sub="o", role="citizen", pid=national_id(1)))
    outcome = app.check_in_appointment(UUID(mine["id"]), {"details": {"subject": "ถนนชำรุด", "description": "หลุมหน้าบ้าน"}}, OFFICER)
    assert outcome.state["status"] == "checked_in" and outcome.state["request_id"] == outcome.related["id"]
    assert outcome.related["channel"] == "counter" and outcome.related["appointment_id"] == mine["id"]
    assert outcome.related["filed_at"] == "MUN-SAENSUK"
    request = app.get_request(UUID(outcome.related["id"]))
    assert request.appointment_id == UUID(mine["id"])


def test_check_in_is_refused_before_the_appointments_day_and_with_details_that_do_not_fit(app: BackOffice, clock: FakeClock) -> None:
    mine = book(app, 1, service="complaint")
    with pytest.raises(TransitionNotAllowed):
        app.check_in_appointment(UUID(mine["id"]), {"details": {"subject": "s", "description": "d"}}, OFFICER)
    clock.at = TUESDAY_9
    with pytest.raises(InvalidCommand):
        app.check_in_appointment(UUID(mine["id"]), {"details": {}}, OFFICER)
    assert app.get_appointment(UUID(mine["id"])).status == "booked"


def test_the_sweep_sends_one_reminder_then_marks_a_missed_booking_as_no_show(app: BackOffice, clock: FakeClock) -> None:
    start = TUESDAY_9 + timedelta(days=1)
    mine = UUID(book(app, 1, start=start)["id"])
    assert app.sweep_appointment(mine, SWEEPER) == SweepCount()  # more than 24 h ahead
    clock.at = start - timedelta(hours=23)
    assert app.sweep_appointment(mine, SWEEPER) == SweepCount(reminded=1)
    assert app.sweep_appointment(mine, SWEEPER) == SweepCount()
    clock.at = start + timedelta(minutes=30 + 14)
    assert app.sweep_appointment(mine, SWEEPER) == SweepCount()  # within the grace
    clock.at = start + timedelta(minutes=30 + 15)
    assert app.sweep_appointment(mine, SWEEPER) == SweepCount(no_shows=1)
    assert app.get_appointment(mine).status == "no_show"
    # A no-show no longer counts against the applicant's open bookings.
    book(app, 1, start=start + timedelta(days=1))
    book(app, 1, start=start + timedelta(days=1, hours=1))


def test_civil_appointment_no_longer_takes_new_submissions(app: BackOffice) -> None:
    body = {"service": "civil.appointment", "organization": "MUN-SAENSUK", "channel": "web",
            "applicant": {"national_id": national_id(1), "name": "ก"}, "details": {"service": "x", "slot": "2026-12-01T09:00:00+07:00"}}
    with pytest.raises(InvalidCommand) as refused:
        app.submit(SubmitCommand(body=body, actor=citizen(1), request_hash=request_hash(body), idempotency_key="k"))
    assert "service" in [f for f, _ in refused.value.errors]


def test_a_start_at_the_edge_of_the_calendar_is_refused_naming_the_field_not_a_crash() -> None:
    from application.appointments import _parse_start
    from domain.errors import InvalidCommand as Refused

    for raw in ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+14:00"):
        with pytest.raises(Refused) as refused:
            _parse_start(raw, "start")
        assert refused.value.errors == [("start", "is not a time a slot can have")]
