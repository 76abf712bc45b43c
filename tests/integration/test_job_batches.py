"""Several jobs per broker message: a batch runs its jobs together, a job that fails is retried
on its own (its siblings are not run again), a batch delivered twice changes nothing the second
time, and a batch of registry answers is recorded from one load of its requests."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest

from application.jobs import VERIFY_APPLICANT, Job
from domain.actors import Actor
from infrastructure.jobs.aggregate_batch import PostgresAggregateBatch
from onestop.bootstrap import build_back_office
from onestop.settings import Settings
from tests.integration.api_harness import CITIZEN_ID, complaint
from tests.integration.jobs_harness import JobsStack, eventually

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

WORKER = Actor(sub="onestop-worker", role="system")


async def _address_changes(stack: JobsStack, count: int) -> list[str]:
    people = [p for p in await stack.people(alive="true") if p["organization"].startswith(("MUN-", "SAO-"))][:count]
    assert len(people) == count
    houses: dict[str, list[dict[str, Any]]] = {}
    for person in people:
        houses.setdefault(person["organization"], await stack.houses(person["organization"]))
    states = await asyncio.gather(*(
        stack.submit_as(p, "civil.address-change", {"to_house_id": next(h["house_id"] for h in houses[p["organization"]] if h["house_id"] != p["house_id"])})
        for p in people
    ))
    return [s["id"] for s in states]


def _rows(stack: JobsStack, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.settings.database.conninfo()) as conn:
        return conn.execute(sql, args).fetchall()


async def _all_reviewed(stack: JobsStack, ids: list[str], timeout: float) -> None:
    async def done() -> bool:
        states = await asyncio.gather(*(stack.request(i) for i in ids))
        return all(s.get("status") == "in_review" for s in states)
    await eventually(done, timeout, interval=0.5, what=f"{len(ids)} requests to reach in_review")


async def test_a_job_that_fails_in_a_batch_is_retried_alone_and_its_siblings_run_once(jobs_stack: JobsStack, rabbitmq_broker) -> None:
    stack = jobs_stack
    ids = await _address_changes(stack, 40)
    # Filed before the dispatcher starts: its first step sends them 32 and 8 to a message.
    await stack.set_faults(stack.registry_url, error_rate=0.25)
    stack.start_in_process_jobs(rabbitmq_broker)
    await _all_reviewed(stack, ids, 120)
    stats = await stack.stats(stack.registry_url)
    assert stats["injected"]["error"] > 0 and stats["keys_with_more_than_one_effect"] == 0

    async def rows_written() -> bool:
        return len(_rows(stack, "SELECT 1 FROM jobs WHERE status = 'done'")) == 40
    await eventually(rows_written, 30, what="the done marks")
    jobs = _rows(stack, "SELECT attempts, last_error, organization FROM jobs WHERE kind = %s", VERIFY_APPLICANT)
    assert len(jobs) == 40 and all(org for _, _, org in jobs)
    failed_once = [a for a, error, _ in jobs if error is not None]
    # A job that never failed ran once, though its batch had jobs that failed; a job that failed
    # ran once more for each failure, alone.
    assert failed_once and all(a >= 2 for a in failed_once)
    assert all(a == 1 for a, error, _ in jobs if error is None)
    assert stats["calls_by_route"]["POST /verifications"] == sum(a for a, _, _ in jobs)
    reviewed = _rows(stack, "SELECT originator_id, count(*) FROM onestop_events WHERE topic = 'onestop:ServiceRequest.ReviewStarted' GROUP BY 1")
    assert len(reviewed) == 40 and all(n == 1 for _, n in reviewed)


async def test_a_batch_delivered_again_after_its_jobs_are_done_changes_nothing(jobs_stack: JobsStack, rabbitmq_broker) -> None:
    from workers.actors import dramatiq_sender

    stack = jobs_stack
    ids = await _address_changes(stack, 10)
    stack.start_in_process_jobs(rabbitmq_broker)
    await _all_reviewed(stack, ids, 60)
    events = len(_rows(stack, "SELECT 1 FROM onestop_events"))
    before = await stack.stats(stack.registry_url)
    # The broker delivers the batch again (a worker died before acknowledging it), with the
    # facts the dispatcher puts in it, so each job asks the registry again.
    rows = _rows(stack, "SELECT id, kind, request_id, payment_id, organization FROM jobs WHERE kind = %s", VERIFY_APPLICANT)
    states = {s["id"]: s for s in await asyncio.gather(*(stack.request(str(r[2])) for r in rows))}
    facts = {r[0]: (("national_id", states[str(r[2])]["applicant"]["national_id"]), ("to_house_id", states[str(r[2])]["details"]["to_house_id"]))
             for r in rows}
    send = dramatiq_sender(rabbitmq_broker, stack.settings.jobs_queue, max_retries=3, min_backoff_ms=50, max_backoff_ms=500)
    send.many([(Job(r[0], r[1], r[2], r[3], facts=facts[r[0]]), r[4]) for r in rows])

    async def seen_again() -> bool:
        return len(_rows(stack, "SELECT 1 FROM jobs WHERE attempts = 2")) == 10
    await eventually(seen_again, 60, what="the batch to run again")
    after = await stack.stats(stack.registry_url)
    # Asked again under the same keys: answered from the registry's memory, no second effect.
    assert after["calls_by_route"]["POST /verifications"] == before["calls_by_route"]["POST /verifications"] + 10
    assert after["duplicate_keys"] == before["duplicate_keys"] + 10
    assert after["keys_with_more_than_one_effect"] == 0 and after["effects"]["verification"] == 10
    assert len(_rows(stack, "SELECT 1 FROM onestop_events")) == events  # nothing recorded twice


def test_answers_recorded_together_load_their_requests_once_and_two_answers_for_one_request_record_it_once(settings: Settings) -> None:
    from application.back_office import SubmitCommand

    app = build_back_office(settings)
    app.aggregate_batch = PostgresAggregateBatch(app)
    try:
        citizen = Actor(sub=CITIZEN_ID, role="citizen", pid=CITIZEN_ID)
        body = complaint(service="civil.certified-copy", details={"document": "house-registration", "copies": 1})
        ids = [uuid.UUID(app.submit(SubmitCommand(body=body, actor=citizen, request_hash=f"h{i}", idempotency_key=f"k{i}")).state["id"])
               for i in range(3)]
        assert all(app.get_request(i).status == "verifying" for i in ids)
        loaded = app.aggregate_batch.load([*ids, uuid.uuid4()])
        assert set(loaded) == set(ids) and all(loaded[i].version == app.get_request(i).version for i in ids)
        answer = {"found": True, "alive": True, "house_id": "1", "organization": "MUN-SAENSUK"}
        outcomes = app.record_verifications([(ids[0], answer), (ids[1], answer), (ids[0], answer), (ids[2], {"found": True, "alive": False})],
                                            WORKER)
        assert [o.replayed for o in outcomes] == [False, False, True, False]
        assert outcomes[0].state["status"] == outcomes[1].state["status"] == "awaiting_payment"
        assert outcomes[2].state["status"] == "awaiting_payment" and outcomes[3].state["status"] == "rejected"
        again = app.record_verifications([(ids[0], answer), (ids[1], answer)], WORKER)
        assert all(o.replayed for o in again)
        with psycopg.connect(settings.database.conninfo()) as conn:
            opened = conn.execute("SELECT count(*) FROM onestop_events WHERE topic = 'onestop:Payment.Opened'").fetchone()[0]
        assert opened == 2
    finally:
        app.close()
