"""PostgreSQL drops the stack's connections (failover, restart, `pg_terminate_backend`) while
requests flow: the followers reconnect, take their election locks again and go on from their
tracking records; every acknowledged request reaches its end state and no job runs twice."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from typing import Any

import aiohttp
import psycopg
import pytest

from infrastructure.jobs.dispatcher import TOPICS as DISPATCHER_TOPICS
from infrastructure.eventstore.following import FAILURE_EXIT_STATUS, statuses
from tests.conftest import ROOT
from tests.integration.jobs_harness import ADMIN, JobsStack, eventually, process_log, token

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]


def _terminate(stack: JobsStack, only_listening: bool = False) -> int:
    """End every connection to the stack's database but this one (or only those that LISTEN)."""
    where = " AND query ILIKE 'LISTEN%%'" if only_listening else ""
    with psycopg.connect(stack.settings.database.conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
            f" AND pid <> pg_backend_pid(){where}"
        ).fetchall()
    return len(rows)


async def _running(*processes: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until each process has said it is running (its first line of service): a connection
    dropped while a process still starts makes it exit for its supervisor to start again, which
    is not what these tests are about (the stack's processes have no supervisor)."""
    said = {"worker": "worker running", "dispatcher": "dispatcher following the event log",
            "webhooks": "webhook dispatcher following the published feed"}

    async def all_running() -> bool:
        for process in processes:
            assert process.poll() is None, f"a process ended while starting:\n{process_log(process)}"
            if said[process.args[3]] not in process.log_path.read_text(errors="replace"):  # type: ignore[attr-defined]
                return False
        return True
    await eventually(all_running, timeout, interval=0.05, what="the stack's processes to be running")


def _positions(stack: JobsStack) -> tuple[int, int, int, int]:
    """(log head, views, last event the dispatcher needs, dispatcher)."""
    with psycopg.connect(stack.settings.database.conninfo()) as conn:
        return conn.execute(
            "SELECT (SELECT coalesce(max(notification_id), 0) FROM onestop_events),"
            " (SELECT coalesce(max(notification_id), 0) FROM onestop_views_tracking),"
            " (SELECT coalesce(max(notification_id), 0) FROM onestop_events WHERE topic = ANY(%s)),"
            " (SELECT coalesce(max(notification_id), 0) FROM onestop_dispatcher_tracking)",
            (DISPATCHER_TOPICS,),
        ).fetchone()


async def _until_followers_at_head(stack: JobsStack, timeout: float = 60) -> float:
    """Seconds until the views and the dispatcher have reached the log head as it is now (later
    events, such as retried jobs' records, may keep moving the head meanwhile)."""
    started = time.monotonic()
    head, _, needed, _ = _positions(stack)

    async def caught_up() -> bool:
        _, views, _, dispatched = _positions(stack)
        return views >= head and dispatched >= needed
    try:
        await eventually(caught_up, timeout, interval=0.05, what=f"the followers to reach the log head ({head})")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{_situation(stack)}") from None
    return time.monotonic() - started


def _situation(stack: JobsStack) -> str:
    """Where each follower is, and what the processes said last: for a failure message."""
    head, views, needed, dispatched = _positions(stack)
    return (f"log head {head}, views at {views}, dispatcher at {dispatched} (needs {needed});"
            f" followers in this process: {statuses()}\n{stack.describe_processes()}")


async def _post_acknowledged(stack: JobsStack, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any] | None:
    """POST as a careful client does: on a 5xx or a broken connection, send again with the same
    Idempotency-Key. Returns the acknowledged (2xx) answer."""
    key = str(uuid.uuid4())
    for _ in range(60):
        try:
            response = await stack.harness.client.post(path, json=body, headers={**headers, "Idempotency-Key": key})
            if response.status in (200, 201):
                return await response.json()
            assert response.status >= 500, await response.text()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        await asyncio.sleep(0.2)
    return None


async def _wave(stack: JobsStack, people: list[dict[str, Any]], houses: dict[str, list[dict[str, Any]]]) -> list[str]:
    async def one(person: dict[str, Any]) -> dict[str, Any] | None:
        org = person["organization"]
        target = next(h for h in houses[org] if h["house_id"] != person["house_id"])
        body = {"service": "civil.address-change", "organization": org, "channel": "web",
                "applicant": {"national_id": person["national_id"], "name": f"{person['first_name_th']} {person['last_name_th']}"},
                "details": {"to_house_id": target["house_id"]}}
        return await _post_acknowledged(stack, "/v1/service-requests", body, token("citizen", person["national_id"]))
    answers = await asyncio.gather(*(one(p) for p in people))
    return [a["id"] for a in answers if a is not None]


async def _people(stack: JobsStack, count: int) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    people = [p for p in await stack.people(alive="true") if p["organization"].startswith(("MUN-", "SAO-"))][:count]
    assert len(people) == count
    houses = {org: await stack.houses(org) for org in {p["organization"] for p in people}}
    return people, houses


async def _all_in(stack: JobsStack, ids: list[str], statuses_: set[str], timeout: float) -> None:
    async def done() -> bool:
        states = await asyncio.gather(*(stack.request(i) for i in ids))
        return all(s.get("status") in statuses_ for s in states)
    try:
        await eventually(done, timeout, interval=0.5, what=f"{len(ids)} requests to reach {statuses_}")
    except AssertionError as error:
        states = await asyncio.gather(*(stack.request(i) for i in ids))
        behind = sorted({s.get("status", "missing") for s in states} - statuses_)
        raise AssertionError(f"{error}: some are {behind}\n{_situation(stack)}") from None


async def test_the_projector_and_the_dispatcher_survive_every_connection_dropped_twice_while_requests_flow(jobs_stack: JobsStack) -> None:
    stack = jobs_stack
    await stack.set_faults(stack.registry_url, latency_ms=100)
    await _running(stack.start("dispatcher"), stack.start("worker"), stack.start("webhooks"))
    people, houses = await _people(stack, 45)
    ids = await _wave(stack, people[:15], houses)
    assert _terminate(stack) >= 4
    ids += await _wave(stack, people[15:30], houses)
    await asyncio.sleep(1.0)
    ids += await _wave(stack, people[30:], houses)
    drop = time.monotonic()
    assert _terminate(stack) >= 4
    recovery = await _until_followers_at_head(stack)
    print(f"\nrecovery after dropping every connection: {recovery:.2f}s (drop to views and dispatcher at the log head)")
    assert len(ids) >= 40  # a few may not have been acknowledged while the connections were down
    await _all_in(stack, ids, {"in_review"}, 120)
    for request_id in ids:
        assert await _post_acknowledged(stack, f"/v1/service-requests/{request_id}/approve", {}, ADMIN) is not None
    await _all_in(stack, ids, {"completed"}, 120)
    await _until_followers_at_head(stack, 30)
    stats = await stack.stats(stack.registry_url)
    assert stats["keys_with_more_than_one_effect"] == 0
    assert stats["effects"]["verification"] == len(ids) and stats["effects"]["move"] == len(ids)
    with psycopg.connect(stack.settings.database.conninfo()) as conn:
        completed = conn.execute("SELECT originator_id FROM onestop_events WHERE topic = 'onestop:ServiceRequest.Completed'").fetchall()
    assert len(completed) == len({r[0] for r in completed}) == len(ids)
    # The in-process projector saw the drops and reconnected.
    assert statuses()["projector"].errors >= 2 and statuses()["projector"].state == "running"
    # The feed and the audit chain caught up too, and health is ok again: every follower
    # running at the head, every dependency up.

    async def healthy() -> dict[str, Any] | None:
        response = await stack.harness.client.get("/v1/health", headers=ADMIN)
        body = await response.json()
        caught_up = all(body["followers"][n]["lag"] == 0 for n in ("projector", "feed", "audit_chain"))
        return body if body["status"] == "ok" and caught_up else None
    try:
        health = await eventually(healthy, 30, interval=0.5, what="health to be ok again")
    except AssertionError:
        response = await stack.harness.client.get("/v1/health", headers=ADMIN)
        raise AssertionError(f"health: {await response.text()}\n{_situation(stack)}") from None
    assert all(f["state"] == "running" for f in health["followers"].values()), health
    assert time.monotonic() - drop < 300


async def test_with_only_the_listen_connections_dropped_the_followers_listen_again(jobs_stack: JobsStack) -> None:
    stack = jobs_stack
    await _running(stack.start("dispatcher"), stack.start("worker"))
    people, houses = await _people(stack, 20)
    first = await _wave(stack, people[:10], houses)
    await _all_in(stack, first, {"in_review"}, 60)
    errors_before = statuses()["projector"].errors
    # The projector's and the dispatcher's (and the API's feed notifier's).
    assert _terminate(stack, only_listening=True) >= 2
    second = await _wave(stack, people[10:], houses)
    await _all_in(stack, second, {"in_review"}, 60)
    await _until_followers_at_head(stack, 30)
    assert statuses()["projector"].errors > errors_before
    assert (await stack.stats(stack.registry_url))["effects"]["verification"] == 20


def test_a_follower_whose_step_raises_ends_its_process_with_status_70(settings) -> None:  # type: ignore[no-untyped-def]
    script = (
        "import sys, threading, time\n"
        "from infrastructure.eventstore.following import LogFollower, start_thread\n"
        "def step(position):\n"
        "    raise KeyError('a handler bug')\n"
        f"follower = LogFollower('broken', {settings.database.conninfo()!r}, 0x0E57_00FF, 'onestop_events',"
        " position=lambda: 0, step=step, poll_seconds=0.1)\n"
        "start_thread('broken', follower.run, threading.Event())\n"
        "time.sleep(20)\n"
        "print('still alive')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == FAILURE_EXIT_STATUS, done.stderr
    assert "still alive" not in done.stdout
    assert "KeyError: 'a handler bug'" in done.stderr
