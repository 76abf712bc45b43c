"""The elected projector reads each batch of the log once and hands it to the published feed and
the audit chain: what they write is byte for byte what each writes reading the log itself, they
read the log only to catch up to where the projector is, and each keeps its own position."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from application.commands import SubmitCommand
from domain.actors import Actor
from infrastructure.audit.audit_chain import ChainFollower
from infrastructure.integrations.event_feed import FeedFollower
from infrastructure.views.projector import Projector
from onestop.bootstrap import build_back_office, build_followers, build_views, datastore
from onestop.settings import Settings

pytestmark = pytest.mark.postgres

CITIZEN_ID = "3100600445635"
FOLLOWED = "event_feed, event_feed_position, aggregate_organizations, audit_chain, audit_chain_head"


def submit(app: Any, count: int) -> None:
    """``count`` requests (every third a flyer permit, which also opens a payment)."""
    citizen = Actor(sub=CITIZEN_ID, role="citizen", pid=CITIZEN_ID)
    commands = []
    for n in range(count):
        if n % 3 == 0:
            body = {"service": "local.flyer-permit", "details": {"description": "ประกาศงานวัด", "area": "ตลาด", "start_date": "2026-12-01",
                                                                  "end_date": "2026-12-07", "quantity": 20}}
        else:
            body = {"service": "complaint", "details": {"subject": "ไฟถนนดับ", "description": f"เสา {n}", "location": "ซอย 5"}}
        body.update(organization=("MUN-SAENSUK", "MUN-PHRAE")[n % 2], channel="web", applicant={"national_id": CITIZEN_ID, "name": "สมชาย ใจดี"})
        commands.append(SubmitCommand(body=body, actor=citizen, request_hash=f"h-{n}-{uuid.uuid4()}", idempotency_key=str(uuid.uuid4())))
    for result in app.submit_many(commands):
        if isinstance(result, Exception):
            raise result


def followed(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(settings.database.conninfo()) as conn:
        return {
            "feed": conn.execute("SELECT position, id, type, organization, subject, occurred_at, body FROM event_feed ORDER BY position").fetchall(),
            "organizations": conn.execute("SELECT aggregate_id, organization FROM aggregate_organizations ORDER BY aggregate_id").fetchall(),
            "chain": conn.execute("SELECT position, link FROM audit_chain ORDER BY position").fetchall(),
            "head": conn.execute("SELECT position, link, count FROM audit_chain_head").fetchall(),
        }


def forget_followed(settings: Settings) -> None:
    with psycopg.connect(settings.database.conninfo(), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {FOLLOWED}")


def same_as_each_reading_alone(settings: Settings, app: Any, handed: dict[str, list[tuple[Any, ...]]]) -> None:
    """The feed and the chain written again from empty, each reading the whole log itself, are
    byte for byte what they wrote from the batches they were handed. (Written again, the feed
    opens every envelope; the projector's feed leaves unopened those holding only a citizen
    actor's sub, which no CloudEvent carries: the bytes must not differ for it either.)"""
    forget_followed(settings)
    FeedFollower(datastore(app), reveal=app.personal_data.reveal_all).catch_up()
    ChainFollower(datastore(app)).catch_up()
    assert followed(settings) == handed


def counting_reads(follower: Any, reads: list[str]) -> Any:
    read = follower._read

    def counted(*args: Any) -> Any:
        reads.append(type(follower).__name__)
        return read(*args)

    follower._read = counted
    return follower


def test_handed_batches_give_the_feed_and_chain_the_followers_write_alone(settings: Settings) -> None:
    app = build_back_office(settings)
    try:
        submit(app, 40)
        views = build_views(app)
        reads: list[str] = []
        followers = [counting_reads(f, reads) if isinstance(f, (FeedFollower, ChainFollower)) else f for f in build_followers(app)]
        projector = Projector(app, views, batch_size=7, followers=followers)
        # The views and the followers start together: every batch is handed over, none re-read.
        position = projector.step(0)
        assert position == app.recorder.max_notification_id()
        assert reads == []
        # The views go on alone for a while; the followers, behind, catch up from the log to
        # where the next batch starts, then take it.
        submit(app, 10)
        projector.catch_up(position=position)
        submit(app, 10)
        position = projector.step(projector.position)
        assert position == app.recorder.max_notification_id()
        assert "FeedFollower" in reads and "ChainFollower" in reads
        handed = followed(settings)
        assert len(handed["feed"]) > 0 and handed["head"][0][0] == position and handed["head"][0][2] == position

        same_as_each_reading_alone(settings, app, handed)
    finally:
        app.close()


def test_a_follower_ahead_of_the_batch_skips_what_it_has_and_a_caught_up_one_reads_nothing(settings: Settings) -> None:
    app = build_back_office(settings)
    try:
        submit(app, 12)
        feed, chain = FeedFollower(datastore(app), reveal=app.personal_data.reveal_all), ChainFollower(datastore(app))  # type: ignore[attr-defined]
        middle = app.recorder.max_notification_id()
        feed.catch_up(), chain.catch_up()
        submit(app, 12)
        reads: list[str] = []
        projector = Projector(app, build_views(app), batch_size=1000, followers=[counting_reads(feed, reads), counting_reads(chain, reads)])
        # The views start from 0: the first batch holds events both followers have already.
        position = projector.step(0)
        assert reads == []
        assert position > middle
        handed = followed(settings)
        assert handed["head"][0][0] == position and handed["head"][0][2] == position
        assert projector.step(position) == position and reads == []
        same_as_each_reading_alone(settings, app, handed)
    finally:
        app.close()


def test_the_feed_keeps_its_position_when_the_last_events_are_internal_ones(settings: Settings) -> None:
    """Internal events (a receipt book's numbers) leave no row in the feed; the feed still records
    how far it has read, so a restarted feed does not read them again and health sees no lag."""
    from datetime import datetime, timezone

    from domain.receipt import ReceiptBook
    from infrastructure.integrations.event_feed import POSITION_SQL

    app = build_back_office(settings)
    try:
        submit(app, 2)
        book = ReceiptBook.open(id=uuid.uuid4(), organization="MUN-SAENSUK", fiscal_year=2570, at=datetime.now(timezone.utc))
        head = max(r.notification.id for r in app.save(book))
        feed = FeedFollower(datastore(app))
        feed.catch_up()
        with psycopg.connect(settings.database.conninfo()) as conn:
            published = conn.execute("SELECT max(position) FROM event_feed").fetchone()[0]
            assert published < head  # the book's event is not published
            assert conn.execute(POSITION_SQL).fetchone()[0] == head
        # A new follower (a restarted projector) starts from there: nothing to read again.
        again = FeedFollower(datastore(app))
        assert again.position() == head and again.catch_up() == 0
    finally:
        app.close()
