"""BackOfficeBase.save collects OneStop's aggregates without the library's runtime Protocol checks,
and must keep the library's semantics: the same events in the same order, the aggregates kept by
id (the repository's cache), snapshots, and the notify hooks; events and None still accepted."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Iterator
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate

from application.back_office import BackOffice
from application.ports import Clock, ReferenceIssuer
from domain.actors import Actor
from domain.organizations import SEED_ORGANIZATIONS, Directory
from domain.service_request import ServiceRequest
from onestop.rules_file import load_rules
from onestop.settings import DEMO_BILLER_ID

AT = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)
CITIZEN = Actor(sub="3100600445635", role="citizen", pid="3100600445635")


class FixedClock(Clock):
    def now(self) -> datetime:
        return AT


class References(ReferenceIssuer):
    def issue(self, count: int, at: datetime) -> list[str]:
        return [f"OS69{n:07d}" for n in range(1, count + 1)]


class Noted(BackOffice):
    """Records what the hooks after a save were given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notified: list[Any] = []
        self.recorded: list[Any] = []

    def notify(self, new_events: list[Any]) -> None:
        self.notified.append(list(new_events))

    def _notify(self, recordings: list[Any]) -> None:
        self.recorded.append(list(recordings))


def office(cls: type[BackOffice] = Noted, **env: str) -> BackOffice:
    rules = load_rules()
    return cls({"PERSISTENCE_MODULE": "eventsourcing.popo", **env}, directory=Directory(SEED_ORGANIZATIONS),
               fees=rules.fee_schedule(date(2026, 1, 15)), biller_id=DEMO_BILLER_ID, references=References(), clock=FixedClock())


@pytest.fixture
def app() -> Iterator[Noted]:
    noted = office()
    yield noted  # type: ignore[misc]
    noted.close()


def request() -> ServiceRequest:
    filed = ServiceRequest.file(
        id=uuid4(), at=AT, actor=CITIZEN, channel="web", reference="OS690000001", service="complaint",
        organization="MUN-SAENSUK", filed_at="MUN-SAENSUK", applicant={"national_id": "3100600445635", "name": "สมชาย ใจดี"},
        details={"subject": "ไฟถนนดับ", "description": "ไฟถนนหน้าบ้านดับ"}, due_at=AT, request_hash="h",
    )
    filed.start_review(CITIZEN, "web", AT)
    return filed


def library_collected(*objs: Any) -> ProcessingEvent[UUID]:
    processing: ProcessingEvent[UUID] = ProcessingEvent()
    processing.collect_events(*objs)
    return processing


def test_save_records_the_same_events_in_the_same_order_as_the_library_would(app: Noted) -> None:
    first, second = request(), request()
    expected = [*first._pending_events, *second._pending_events]
    recordings = app.save(first, None, second)
    assert [r.domain_event for r in recordings] == expected
    assert [r.notification.id for r in recordings] == [1, 2, 3, 4]
    assert not first._pending_events and not second._pending_events
    assert app.notified == [expected] and [r.domain_event for r in app.recorded[0]] == expected
    assert app.repository.get(first.id) == first and app.repository.get(second.id) == second


def test_save_keeps_the_aggregates_by_id_for_the_repository_cache_as_the_library_does() -> None:
    # Without fast-forwarding, the library's _record puts each saved aggregate in the cache.
    cached = office(AGGREGATE_CACHE_MAXSIZE="10", AGGREGATE_CACHE_FASTFORWARD="n")
    try:
        saved = request()
        cached.save(saved)
        assert cached.repository.cache.get(saved.id) is saved
    finally:
        cached.close()


def test_save_still_takes_domain_events_and_none_through_the_library(app: Noted) -> None:
    filed = request()
    events = filed.collect_events()
    recordings = app.save(None, *events)
    assert [r.domain_event for r in recordings] == events
    assert app.repository.get(filed.id).version == filed.version


def test_an_aggregate_is_collected_as_the_library_collects_it(app: Noted) -> None:
    class Plain(Aggregate):
        def __init__(self, name: str) -> None:
            self.name = name

    plain = Plain("x")
    pending = list(plain._pending_events)
    recordings = app.save(plain)
    assert [r.domain_event for r in recordings] == pending
    again = Plain("y")
    assert list(library_collected(again).aggregates) == [again.id]


def test_the_library_save_and_onestops_give_the_same_stored_events() -> None:
    ours, theirs = office(), office()
    try:
        ours_request, theirs_request = request(), request()
        theirs_request.__dict__.update({k: v for k, v in ours_request.__dict__.items() if k != "_pending_events"})
        theirs_request._pending_events = list(ours_request._pending_events)
        mine = ours.save(ours_request)
        library = Application.save(theirs, theirs_request)
        assert [(r.notification.originator_id, r.notification.originator_version, r.notification.topic, r.notification.state)
                for r in mine] == [(r.notification.originator_id, r.notification.originator_version, r.notification.topic,
                                    r.notification.state) for r in library]
    finally:
        ours.close()
        theirs.close()
