"""Sweeps: lost job messages are sent again, open payments past their time are expired; both
idempotent and elected (one sweeper at a time)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Iterator

import psycopg
import pytest

from application.back_office import SubmitCommand
from application.jobs import CREATE_CHARGE, EXPIRE_PAYMENT, FULFIL, Job
from domain.actors import Actor
from onestop.bootstrap import build_back_office
from infrastructure.clock import SystemClock
from infrastructure.jobs.dispatcher import Dispatcher
from onestop.settings import Settings
from infrastructure.jobs.sweeps import ADVISORY_LOCK_KEY, Sweeper
from tests.integration.api_harness import CITIZEN_ID, complaint


class Later(SystemClock):
    def now(self):  # type: ignore[no-untyped-def]
        return super().now() + timedelta(days=4)


@pytest.fixture
def sent() -> list[Job]:
    return []


@pytest.fixture
def sweeper(settings: Settings, sent: list[Job]) -> Iterator[Sweeper]:
    app = build_back_office(settings, clock=Later())
    try:
        yield Sweeper(app, lambda job, delay: sent.append(job), stale_seconds=60, retry_grace_seconds=300)
    finally:
        app.close()


def _insert_job(settings: Settings, kind: str, status: str, age: str) -> uuid.UUID:
    job_id = uuid.uuid4()
    with psycopg.connect(settings.database.conninfo(), autocommit=True) as conn:
        conn.execute("INSERT INTO jobs (id, kind, request_id, status, created_at, updated_at) VALUES (%s, %s, %s, %s, now() - %s::interval, now() - %s::interval)",
                     (job_id, kind, uuid.uuid4(), status, age, age))
    return job_id


def test_a_job_pending_past_the_stale_time_is_sent_again_once_per_stale_period(settings: Settings, sweeper: Sweeper, sent: list[Job]) -> None:
    sweeper.app.clock = SystemClock()
    stale = _insert_job(settings, FULFIL, "pending", "1 hour")
    _insert_job(settings, FULFIL, "pending", "5 seconds")  # fresh: its message may still come
    _insert_job(settings, FULFIL, "done", "1 hour")
    _insert_job(settings, FULFIL, "retrying", "2 minutes")  # between retries, within the backoff
    assert sweeper.resend_stale_jobs() == 1
    assert [job.id for job in sent] == [stale] and sent[0].kind == FULFIL
    assert sweeper.resend_stale_jobs() == 0  # touched: not sent again before another stale period


def test_an_open_payment_past_its_time_is_expired_by_the_sweep_not_by_a_delayed_message(settings: Settings, sweeper: Sweeper, sent: list[Job]) -> None:
    app = build_back_office(settings)
    try:
        body = complaint(service="local.flyer-permit", details={"description": "ประกาศ", "area": "ตลาด", "start_date": "2026-12-01",
                                                                "end_date": "2026-12-07", "quantity": 10})
        outcome = app.submit(SubmitCommand(body=body, actor=Actor(sub=CITIZEN_ID, role="citizen", pid=CITIZEN_ID), request_hash="h", idempotency_key="k"))
        payment_id = uuid.UUID(outcome.state["payment"]["id"])
        dispatched: list[Job] = []
        Dispatcher(app, lambda job, delay: dispatched.append(job)).dispatch_once(0)
        assert [job.kind for job in dispatched] == [CREATE_CHARGE]  # no delayed expiry message
        with psycopg.connect(settings.database.conninfo()) as conn:
            assert conn.execute("SELECT status FROM jobs WHERE kind = %s", (EXPIRE_PAYMENT,)).fetchone()[0] == "pending"
        # Not due yet by the real clock.
        now_sweeper = Sweeper(app, lambda job, delay: None, stale_seconds=60)
        assert now_sweeper.expire_payments() == 0
        assert sweeper.expire_payments() == 1
        assert app.get_payment(payment_id).status == "expired"
        assert sweeper.expire_payments() == 0  # idempotent: its job is done
        with psycopg.connect(settings.database.conninfo()) as conn:
            assert conn.execute("SELECT status FROM jobs WHERE kind = %s", (EXPIRE_PAYMENT,)).fetchone()[0] == "done"
        assert sent == []  # the expiry job is never sent as a message, even when stale
    finally:
        app.close()


def test_only_the_sweeper_holding_the_lock_sweeps(settings: Settings, sweeper: Sweeper, sent: list[Job]) -> None:
    sweeper.app.clock = SystemClock()
    _insert_job(settings, FULFIL, "pending", "1 hour")
    stop = threading.Event()
    with psycopg.connect(settings.database.conninfo(), autocommit=True) as other:
        assert other.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()[0]
        thread = threading.Thread(target=sweeper.run, args=(stop, settings.database.conninfo()), kwargs={"every_seconds": 0.1}, daemon=True)
        thread.start()
        time.sleep(0.6)
        assert sent == []  # standing by
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(5)
    assert len(sent) == 1 and not thread.is_alive()
