"""Outside systems that fail, workers and dispatchers killed mid-run, a broker that goes away:
everything completes, and nothing happens twice."""

from __future__ import annotations

import asyncio
import time
import signal
import socket
from typing import Any

import psycopg
import pytest

from tests.integration.jobs_harness import ADMIN, JobsStack, eventually, kill

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]


async def _address_changes(stack: JobsStack, count: int) -> list[dict[str, Any]]:
    people = [p for p in await stack.people(alive="true") if p["organization"].startswith(("MUN-", "SAO-"))][:count]
    assert len(people) == count
    houses: dict[str, list[dict[str, Any]]] = {}
    states = []
    for i, person in enumerate(people):
        org = person["organization"]
        if org not in houses:
            houses[org] = await stack.houses(org)
        target = next(h for h in houses[org][i % 7:] + houses[org] if h["house_id"] != person["house_id"])
        states.append((person, {"to_house_id": target["house_id"]}))
    return await asyncio.gather(*(stack.submit_as(p, "civil.address-change", d) for p, d in states))


async def _all_in(stack: JobsStack, ids: list[str], statuses: set[str], timeout: float) -> None:
    async def done() -> bool:
        states = await asyncio.gather(*(stack.request(i) for i in ids))
        return all(s.get("status") in statuses for s in states)
    await eventually(done, timeout, interval=0.5, what=f"{len(ids)} requests to reach {statuses}")


async def _approve_all(stack: JobsStack, ids: list[str]) -> None:
    for request_id in ids:
        response = await stack.harness.act(request_id, "approve", {}, headers=ADMIN)
        assert response.status == 200, await response.text()


def _events(stack: JobsStack, sql: str) -> list[tuple]:
    with psycopg.connect(stack.settings.database.conninfo()) as conn:
        return conn.execute(sql).fetchall()


def _payments_received_twice(stack: JobsStack) -> list[tuple]:
    return _events(stack, "SELECT originator_id, count(*) FROM onestop_events WHERE topic = 'onestop:Payment.Received' GROUP BY 1 HAVING count(*) > 1")


async def test_with_30_percent_errors_and_10_percent_timeouts_200_requests_all_finish_once(jobs_stack: JobsStack, rabbitmq_broker) -> None:
    stack = jobs_stack
    moves = await _address_changes(stack, 140)
    people = [p for p in await stack.people(alive="true") if p["organization"].startswith(("MUN-", "SAO-"))]
    copies = await asyncio.gather(*(
        stack.submit_as(people[i % len(people)], "civil.certified-copy", {"document": "house-registration", "copies": 1 + i % 3})
        for i in range(60)
    ))
    for url in (stack.registry_url, stack.bank_url):
        await stack.set_faults(url, error_rate=0.3, timeout_rate=0.1, timeout_seconds=1.5)
    stack.start_in_process_jobs(rabbitmq_broker, threads=16)
    copy_ids = [c["id"] for c in copies]
    await _all_in(stack, copy_ids, {"awaiting_payment"}, 120)
    for state in copies:
        current = await stack.request(state["id"])
        payment = await (await stack.harness.client.get(f"/v1/payments/{current['payment']['id']}", headers=ADMIN)).json()
        await stack.pay(payment["promptpay_payload"])
    move_ids = [m["id"] for m in moves]
    await _all_in(stack, move_ids + copy_ids, {"in_review"}, 180)
    await _approve_all(stack, move_ids + copy_ids)
    await _all_in(stack, move_ids + copy_ids, {"completed"}, 180)
    registry = await stack.stats(stack.registry_url)
    bank = await stack.stats(stack.bank_url)
    assert registry["keys_with_more_than_one_effect"] == 0 and bank["keys_with_more_than_one_effect"] == 0
    assert registry["effects"]["move"] == 140 and registry["effects"]["certified_copy"] == 60
    assert registry["injected"]["error"] > 0 and registry["injected"]["timeout"] > 0
    assert bank["effects"]["charge"] == 60
    assert _payments_received_twice(stack) == []
    assert len(_events(stack, "SELECT 1 FROM onestop_events WHERE topic = 'onestop:Payment.Received'")) == 60


async def _kill_mid_run(stack: JobsStack, command: str, other: str) -> None:
    """Run `command` as a process, kill -9 it while jobs are in flight, restart it."""
    await stack.set_faults(stack.registry_url, latency_ms=150)
    stack.start(other)
    victim = stack.start(command)
    moves = await _address_changes(stack, 60)
    ids = [m["id"] for m in moves]

    async def some_verified() -> bool:
        return (await stack.stats(stack.registry_url))["effects"].get("verification", 0) >= 10
    await eventually(some_verified, 60, what="verifications to start")
    kill(victim, signal.SIGKILL)
    await asyncio.sleep(0.5)
    stack.start(command)
    await _all_in(stack, ids, {"in_review"}, 120)
    await _approve_all(stack, ids)

    async def some_moved() -> bool:
        return (await stack.stats(stack.registry_url))["effects"].get("move", 0) >= 10
    await eventually(some_moved, 60, what="moves to start")
    kill(stack.processes[-1], signal.SIGKILL)
    stack.start(command)
    await _all_in(stack, ids, {"completed"}, 120)
    stats = await stack.stats(stack.registry_url)
    assert stats["keys_with_more_than_one_effect"] == 0
    assert stats["effects"]["move"] == 60 and stats["effects"]["verification"] == 60
    completed = _events(stack, "SELECT originator_id FROM onestop_events WHERE topic = 'onestop:ServiceRequest.Completed'")
    assert len(completed) == len({row[0] for row in completed}) == 60


async def test_a_worker_killed_mid_run_and_restarted_completes_everything_once(jobs_stack: JobsStack) -> None:
    await _kill_mid_run(jobs_stack, "worker", "dispatcher")


async def test_a_dispatcher_killed_mid_run_and_restarted_completes_everything_once(jobs_stack: JobsStack) -> None:
    await _kill_mid_run(jobs_stack, "dispatcher", "worker")


class Gate:
    """A TCP proxy to RabbitMQ that can be shut: the broker as the dispatcher sees it."""

    def __init__(self) -> None:
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.links: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
            broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1", 5672)
            self.links += [client_writer, broker_writer]
            await asyncio.gather(pipe(client_reader, broker_writer), pipe(broker_reader, client_writer))

        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def shut(self) -> None:
        assert self.server is not None
        self.server.close()
        for link in self.links:
            link.close()
        self.links.clear()
        await self.server.wait_closed()


async def test_with_the_broker_unreachable_submits_succeed_and_jobs_run_once_it_is_back(jobs_stack: JobsStack) -> None:
    stack = jobs_stack
    gate = Gate()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        gate.port = s.getsockname()[1]
    stack.env = {**stack.env, "ONESTOP_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{gate.port}"}
    stack.start("dispatcher")  # its broker is behind the shut gate
    shut_at = time.monotonic()
    worker_env = {**stack.env, "ONESTOP_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672"}
    stack.env = worker_env
    stack.start("worker")
    moves = await _address_changes(stack, 20)
    assert all(m["status"] == "verifying" for m in moves)
    # RabbitMQ stays unreachable for the dispatcher for 20 s.
    await asyncio.sleep(max(3.0, 20 - (time.monotonic() - shut_at)))
    stuck = await asyncio.gather(*(stack.request(m["id"]) for m in moves))
    assert {s["status"] for s in stuck} == {"verifying"}
    assert (await stack.stats(stack.registry_url))["effects"].get("verification", 0) == 0
    await gate.open()
    try:
        await _all_in(stack, [m["id"] for m in moves], {"in_review"}, 90)
    finally:
        await gate.shut()
    stats = await stack.stats(stack.registry_url)
    assert stats["effects"]["verification"] == 20 and stats["keys_with_more_than_one_effect"] == 0
    # Where the registry is shows to admins only.
    health = await (await stack.harness.client.get("/v1/health", headers=ADMIN)).json()
    assert {"broker", "registry", "bank"} <= health["dependencies"].keys()
    assert health["dependencies"]["registry"]["url"] == stack.registry_url


async def test_the_jobs_also_run_on_a_redis_broker(jobs_stack: JobsStack) -> None:
    from tests.conftest import unavailable

    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            pass
    except OSError:
        unavailable("no Redis at 127.0.0.1:6379")
    stack = jobs_stack
    stack.env = {**stack.env, "ONESTOP_BROKER_URL": "redis://127.0.0.1:6379/0"}
    stack.start("dispatcher")
    stack.start("worker")
    moves = await _address_changes(stack, 5)
    await _all_in(stack, [m["id"] for m in moves], {"in_review"}, 60)
    assert (await stack.stats(stack.registry_url))["effects"]["verification"] == 5
