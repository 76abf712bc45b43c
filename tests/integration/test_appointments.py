"""Counter appointments on the real stack (PostgreSQL, the API in-process, the projector and
the published feed): capacity under concurrency, cancel, reschedule, check-in, no-shows and
reminders."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator

import psycopg
import pytest

from api.app_key import CTX
from application.commands import request_hash
from application.ports import Clock
from domain.appointments import SlotFull
from domain.calendar import BANGKOK
from infrastructure.jobs.sweeps import Sweeper
from onestop.bootstrap import build_back_office
from onestop.settings import Settings
from tests.conftest import settings_for
from tests.integration.api_harness import AUDITOR, eventually, INTEGRATOR, OFFICER, OTHER_OFFICER, FollowingProjectorThread, Harness, serving, token
from tests.unit.test_appointments import citizen, national_id

pytestmark = pytest.mark.postgres

# Monday 30 November 2026, 10:00 in Bangkok; bookings on Tuesday 1 December.
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)
TUESDAY_9 = datetime(2026, 12, 1, 9, 0, tzinfo=BANGKOK)


class MovableClock(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
def quiet_settings(settings: Settings) -> Settings:
    """The test database without rate limits: fifty clients at once is the point here."""
    return settings_for(settings.database.url(), ONESTOP_RATE_LIMITS="off")


@pytest.fixture
async def api(quiet_settings: Settings, clock: MovableClock) -> AsyncIterator[Harness]:
    async with serving(quiet_settings, FollowingProjectorThread) as harness:
        harness.client.server.app[CTX].app.clock = clock
        yield harness


def as_citizen(n: int) -> dict[str, str]:
    return token("citizen", national_id(n))


def body(n: int, start: datetime = TUESDAY_9, service: str = "civil.certified-copy", organization: str = "MUN-SAENSUK") -> dict[str, Any]:
    return {"organization": organization, "service": service, "start": start.isoformat(),
            "applicant": {"national_id": national_id(n), "name": f"ผู้จอง {n}"}}


async def book(api: Harness, n: int, key: str | None = None, headers: dict[str, str] | None = None, **changes: Any) -> Any:
    return await api.client.post("/v1/appointments", json=body(n, **changes),
                                 headers={**(headers or as_citizen(n)), "Idempotency-Key": key or str(uuid.uuid4())})


async def slots(api: Harness, position: int, day: str = "2026-12-01", service: str = "civil.certified-copy") -> dict[str, dict[str, Any]]:
    response = await api.client.get(f"/v1/appointments/slots?organization=MUN-SAENSUK&service={service}&from={day}&to={day}&min_position={position}",
                                    headers=OFFICER)
    assert response.status == 200, await response.text()
    items = await response.json()
    assert isinstance(items, list) and [i["start"] for i in items] == sorted(i["start"] for i in items)
    return {item["start"]: item for item in items}


def seat_events(settings: Settings) -> Counter[str]:
    with psycopg.connect(settings.database.conninfo()) as conn:
        rows = conn.execute("SELECT topic FROM onestop_events WHERE topic LIKE 'onestop:Slot.%'").fetchall()
    return Counter(topic for (topic,) in rows)


async def test_fifty_concurrent_bookings_for_a_two_seat_slot_give_exactly_two_bookings_and_48_slot_full(api: Harness) -> None:
    responses = await asyncio.gather(*(book(api, n) for n in range(1, 51)))
    statuses = Counter(r.status for r in responses)
    assert statuses == {201: 2, 409: 48}
    refusals = [await r.json() for r in responses if r.status == 409]
    assert {p["type"] for p in refusals} == {"https://onestop.dev/problems/slot-full"}
    assert seat_events(api.settings)["onestop:Slot.SeatHeld"] == 2
    position = max(int(r.headers["OneStop-Position"]) for r in responses if r.status == 201)
    nine = (await slots(api, position))["2026-12-01T09:00:00+07:00"]
    assert (nine["seats"], nine["booked"], nine["available"], nine["end"]) == (2, 2, 0, "2026-12-01T09:30:00+07:00")


def test_fifty_concurrent_bookings_from_two_back_offices_give_exactly_two(quiet_settings: Settings, clock: MovableClock) -> None:
    offices = [build_back_office(quiet_settings, clock=clock, pool_max=4) for _ in range(2)]
    start = threading.Barrier(50)

    def attempt(n: int) -> str:
        b = body(n, start=TUESDAY_9 + timedelta(hours=1))
        start.wait()
        try:
            offices[n % 2].book_appointment(b, citizen(n), f"k{n}", request_hash(b))
            return "booked"
        except SlotFull:
            return "full"

    try:
        with ThreadPoolExecutor(50) as pool:
            outcomes = Counter(pool.map(attempt, range(1, 51)))
    finally:
        for office in offices:
            office.close()
    assert outcomes == {"booked": 2, "full": 48}


async def test_concurrent_reschedules_into_a_slot_with_one_free_seat_move_exactly_one(api: Harness) -> None:
    target = TUESDAY_9 + timedelta(hours=2)
    assert (await book(api, 100, start=target)).status == 201
    mine = []
    for n in range(1, 11):
        response = await book(api, n, start=TUESDAY_9 + timedelta(minutes=(0, 30, 60, 90, 240)[(n - 1) // 2]))
        assert response.status == 201, await response.text()
        mine.append((n, await response.json()))
    responses = await asyncio.gather(*(
        api.client.post(f"/v1/appointments/{a['id']}/reschedule", json={"start": target.isoformat()}, headers=as_citizen(n))
        for n, a in mine))
    assert Counter(r.status for r in responses) == {200: 1, 409: 9}
    position = max(int(r.headers["OneStop-Position"]) for r in responses if r.status == 200)
    # Every appointment holds exactly one seat: the winner's old seat is free, the others kept theirs.
    held = Counter()
    for n, a in mine:
        state = await (await api.client.get(f"/v1/appointments/{a['id']}?min_position={position}", headers=as_citizen(n))).json()
        held[state["start"]] += 1
    assert held[target.isoformat()] == 1 and sum(held.values()) == 10
    free = await slots(api, position)
    assert free[target.isoformat()]["booked"] == 2
    for start, count in held.items():
        assert free[start]["booked"] == count + (1 if start == target.isoformat() else 0)
    events = seat_events(api.settings)
    assert events["onestop:Slot.SeatHeld"] - events["onestop:Slot.SeatReleased"] == 11


async def test_a_booking_is_read_replayed_rescheduled_and_cancelled_by_who_may(api: Harness) -> None:
    first = await book(api, 1, key="booking-1")
    assert first.status == 201 and first.headers["Location"].startswith("/v1/appointments/")
    appointment = await first.json()
    assert appointment["start"] == "2026-12-01T09:00:00+07:00" and appointment["status"] == "booked"
    again = await book(api, 1, key="booking-1")
    assert again.status == 201 and again.headers.get("Idempotent-Replayed") == "true" and (await again.json())["id"] == appointment["id"]
    path = f"/v1/appointments/{appointment['id']}"
    assert (await api.client.get(path, headers=as_citizen(2))).status == 404
    assert (await api.client.get(path, headers=OTHER_OFFICER)).status == 404
    assert (await api.client.get(path, headers=AUDITOR)).status == 200
    stale = await api.client.post(f"{path}/reschedule", json={"start": "2026-12-01T10:00:00+07:00"}, headers={**as_citizen(1), "If-Match": '"7"'})
    assert stale.status == 412
    moved = await api.client.post(f"{path}/reschedule", json={"start": "2026-12-01T10:00:00+07:00"}, headers={**as_citizen(1), "If-Match": first.headers["ETag"]})
    assert moved.status == 200 and (await moved.json())["start"] == "2026-12-01T10:00:00+07:00"
    assert (await api.client.post(f"{path}/cancel", json={}, headers=as_citizen(2))).status == 404
    cancelled = await api.client.post(f"{path}/cancel", json={"reason": "ไม่สะดวก"}, headers=OFFICER)
    assert cancelled.status == 200 and (await cancelled.json())["status"] == "cancelled"
    assert (await api.client.post(f"{path}/cancel", json={}, headers=OFFICER)).status == 409
    free = await slots(api, int(cancelled.headers["OneStop-Position"]))
    assert free["2026-12-01T10:00:00+07:00"]["booked"] == 0
    listed = await api.client.get(f"/v1/appointments?day=2026-12-01&min_position={cancelled.headers['OneStop-Position']}", headers=as_citizen(1))
    assert [a["status"] for a in (await listed.json())["items"]] == ["cancelled"]
    assert (await (await api.client.get("/v1/appointments?day=2026-12-01", headers=as_citizen(2))).json())["items"] == []


@pytest.mark.parametrize(("start", "why"), [
    ("2026-12-10T09:00:00+07:00", "closed day"),
    ("2026-12-01T09:10:00+07:00", "not the start of a slot"),
    ("2026-11-30T09:00:00+07:00", "in the past"),
    ("2026-12-05T09:00:00+07:00", "not the start of a slot"),
])
async def test_a_closed_day_a_past_time_or_a_time_that_is_not_a_slot_is_422_naming_start_and_writes_nothing(api: Harness, start: str, why: str) -> None:
    before = api.event_count()
    response = await book(api, 1, start=datetime.fromisoformat(start))
    problem = await response.json()
    assert response.status == 422 and response.content_type == "application/problem+json"
    assert problem["errors"][0]["field"] == "start" and why in problem["errors"][0]["message"] + problem["detail"]
    assert api.event_count() == before


async def test_the_slot_range_is_bounded_and_bad_parameters_are_refused_naming_them(api: Harness) -> None:
    base = "/v1/appointments/slots?organization=MUN-SAENSUK&service=civil.certified-copy"
    too_long = await api.client.get(f"{base}&from=2026-12-01&to=2027-01-01", headers=OFFICER)
    assert too_long.status == 422 and (await too_long.json())["errors"][0]["field"] == "to"
    bad = await api.client.get(f"{base}&from=2026-12-xx", headers=OFFICER)
    assert bad.status == 400 and (await bad.json())["errors"][0]["field"] == "from"
    backwards = await api.client.get(f"{base}&from=2026-12-02&to=2026-12-01", headers=OFFICER)
    assert backwards.status == 422 and (await backwards.json())["errors"][0]["field"] == "to"
    month = await api.client.get(f"{base}&from=2026-12-01&to=2026-12-31", headers=OFFICER)
    items = await month.json()
    # December 2026 in Saen Suk: 23 weekdays less 7, 10 and 31 December, 16 slots each.
    assert len(items) == 20 * 16
    assert set(items[0]) == {"start", "end", "seats", "booked", "available"}
    assert items[0]["start"] == "2026-12-01T08:30:00+07:00" and items[0]["end"] == "2026-12-01T09:00:00+07:00"
    assert not any(i["start"].startswith(("2026-12-07", "2026-12-10", "2026-12-31")) for i in items)
    closed = await api.client.get("/v1/appointments/closed-days?organization=MUN-SAENSUK&from=2026-12-01&to=2026-12-31", headers=OFFICER)
    assert closed.status == 200, await closed.text()
    assert [c["date"] for c in await closed.json()] == ["2026-12-07", "2026-12-10", "2026-12-31"]
    unknown = await api.client.get("/v1/appointments/closed-days?organization=NOPE", headers=OFFICER)
    assert unknown.status == 400 and (await unknown.json())["errors"][0]["field"] == "organization"


async def test_check_in_starts_the_counter_request_linked_both_ways(api: Harness, clock: MovableClock) -> None:
    appointment = await (await book(api, 1, service="complaint")).json()
    path = f"/v1/appointments/{appointment['id']}/check-in"
    details = {"details": {"subject": "ไฟถนนดับ", "description": "หน้าบ้านเลขที่ 5"}}
    assert (await api.client.post(path, json=details, headers=OFFICER)).status == 409  # not the day yet
    clock.at = TUESDAY_9 - timedelta(minutes=5)
    assert (await api.client.post(path, json=details, headers=OTHER_OFFICER)).status == 404
    assert (await api.client.post(path, json=details, headers=as_citizen(1))).status == 403
    checked = await api.client.post(path, json=details, headers=OFFICER)
    assert checked.status == 201, await checked.text()
    state = await checked.json()
    assert state["status"] == "checked_in" and state["request_id"] == state["request"]["id"]
    request = await api.client.get(f"/v1/service-requests/{state['request_id']}?min_position={checked.headers['OneStop-Position']}", headers=OFFICER)
    document = await request.json()
    assert (document["channel"], document["appointment_id"], document["status"]) == ("counter", appointment["id"], "in_review")
    assert (await api.client.post(path, json=details, headers=OFFICER)).status == 409


async def test_the_sweep_publishes_one_reminder_without_personal_data_and_marks_a_no_show(api: Harness, clock: MovableClock) -> None:
    appointment = await (await book(api, 1, start=TUESDAY_9 + timedelta(days=1))).json()
    start = TUESDAY_9 + timedelta(days=1)
    office = build_back_office(api.settings, clock=clock, pool_max=2)
    try:
        sweeper = Sweeper(office, lambda job, delay: None, stale_seconds=60)

        async def swept() -> tuple[int, int]:
            await asyncio.sleep(0.5)  # the projector brings the booking to the view the sweep reads
            return await asyncio.to_thread(sweeper.sweep_appointments)

        assert await swept() == (0, 0)
        clock.at = start - timedelta(hours=23)
        assert await swept() == (1, 0)
        assert await swept() == (0, 0)
        clock.at = start + timedelta(minutes=45)
        assert await swept() == (0, 1)
    finally:
        office.close()

    async def missed() -> Any:
        state = await (await api.client.get(f"/v1/appointments/{appointment['id']}", headers=as_citizen(1))).json()
        return state["status"] == "no_show" and state["reminded"]

    await eventually(missed, 10, "the no-show in the view")

    async def feed() -> list[dict[str, Any]]:
        response = await api.client.get("/v1/streams/events?types=th.onestop.appointment.reminder-due.v1,th.onestop.appointment.marked-no-show.v1",
                                        headers=INTEGRATOR)
        return (await response.json())["items"]

    for _ in range(100):
        items = await feed()
        if len(items) == 2:
            break
        await asyncio.sleep(0.1)
    reminder = items[0]
    assert reminder["type"] == "th.onestop.appointment.reminder-due.v1" and reminder["subject"] == appointment["id"]
    assert reminder["source"] == "/onestop/MUN-SAENSUK"
    assert set(reminder["data"]) == {"start", "actor", "channel"} and reminder["data"]["start"] == "2026-12-02T09:00:00+07:00"
    assert national_id(1) not in str(items)
