"""Queues that belong to one database: the default queue name comes from the database, every
job message carries the database's marker, and a worker dead-letters a job of another
database instead of acknowledging it as done."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Iterator

import dramatiq
import psycopg
import pytest
from dramatiq.common import xq_name

from application.jobs import CREATE_CHARGE, Job
from onestop.bootstrap import build_job_runtime, migrate
from infrastructure.jobs.database_identity import database_marker, jobs_queue
from workers.actors import dramatiq_sender
from onestop.settings import Settings
from tests.conftest import create_database, drop_database, settings_for


@pytest.fixture
def other_database(postgres_server: str) -> Iterator[Settings]:
    url = create_database(postgres_server, "onestop_other")
    migrate(settings_for(url))
    try:
        yield settings_for(url)
    finally:
        drop_database(postgres_server, url)


def test_two_databases_get_different_default_queues_and_the_override_still_wins(settings: Settings, other_database: Settings) -> None:
    mine, theirs = database_marker(settings), database_marker(other_database)
    assert mine != theirs and len(mine) == 8 and int(mine, 16) >= 0
    assert database_marker(settings) == mine  # stable
    assert jobs_queue(settings, mine) == f"onestop-jobs-{mine}" != jobs_queue(other_database, theirs)
    assert jobs_queue(dataclasses.replace(settings, jobs_queue="shared"), mine) == "shared"


def test_a_worker_dead_letters_a_job_of_another_database_on_a_shared_queue_and_records_nothing(
        settings: Settings, other_database: Settings, rabbitmq_broker) -> None:  # type: ignore[no-untyped-def]
    import workers.actors as actors

    broker = rabbitmq_broker
    queue = f"onestop-test-shared-{uuid.uuid4().hex[:8]}"
    # Stack A's dispatcher sends a job for its payment on a queue that stack B's worker consumes.
    send = dramatiq_sender(broker, queue, max_retries=3, min_backoff_ms=10, max_backoff_ms=50, database=database_marker(settings))
    foreign = Job(uuid.uuid4(), CREATE_CHARGE, uuid.uuid4(), uuid.uuid4())
    send(foreign, 0)
    b = dataclasses.replace(other_database, registry_url="http://127.0.0.1:9", bank_url="http://127.0.0.1:9")
    runtime = build_job_runtime(b)
    actors.install(runtime)
    worker = dramatiq.Worker(broker, worker_threads=1, queues={queue})
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while broker.get_queue_message_counts(queue)[2] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        ready, delayed, dead = broker.get_queue_message_counts(queue)
        assert (ready, delayed, dead) == (0, 0, 1)
    finally:
        worker.stop(timeout=5000)
        runtime.app.close()
        channel = broker.channel
        for name in (queue, xq_name(queue), f"{queue}.DQ"):
            channel.queue_delete(name)
    with psycopg.connect(other_database.database.conninfo()) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
