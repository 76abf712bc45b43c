"""The command bus coalesces concurrent submissions into batches saved by worker threads, and
hands each submission its own result, its own error, or the error that failed its batch."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Sequence

import pytest

from api.command_bus import CommandBus
from application.commands import SubmitCommand
from application.errors import IdempotencyKeyReused
from application.outcomes import Outcome
from domain.actors import Actor

CITIZEN = Actor(sub="3100600445635", role="citizen", pid="3100600445635")


class DatabaseDown(ConnectionError):
    pass


class FakeOffice:
    """Answers each command with its body; a body "reused" gets its own error; a batch holding
    "down" fails whole. Records the batches and the threads that saved them."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # set when a batch reaches the office

    def submit_many(self, commands: Sequence[SubmitCommand], *, timings: dict[str, float] | None = None) -> list[Outcome | Exception]:
        self.entered.set()
        self.gate.wait(5)
        self.threads.add(threading.current_thread().name)
        bodies = [c.body for c in commands]
        self.batches.append(bodies)
        if "down" in bodies:
            raise DatabaseDown("the database went away")
        if timings is not None:
            timings.update(validate=0.001, store=0.002)
        return [IdempotencyKeyReused("reused") if b == "reused" else Outcome({"id": b}) for b in bodies]


def command(body: Any) -> SubmitCommand:
    return SubmitCommand(body=body, actor=CITIZEN, request_hash="h", idempotency_key=str(body))


def test_concurrent_submissions_share_batches_and_each_gets_its_own_result() -> None:
    office = FakeOffice()
    bus = CommandBus(office, workers=4)  # type: ignore[arg-type]

    async def run() -> list[Any]:
        office.gate.clear()  # the first batches wait, so the rest pile up behind them
        tasks = [asyncio.ensure_future(bus.submit(command(f"r{n}"))) for n in range(40)]
        await asyncio.sleep(0.05)
        office.gate.set()
        return await asyncio.wait_for(asyncio.gather(*tasks), 10)

    try:
        outcomes = asyncio.run(run())
    finally:
        bus.close()
    assert [o.state["id"] for o in outcomes] == [f"r{n}" for n in range(40)]
    assert sorted(b for batch in office.batches for b in batch) == sorted(f"r{n}" for n in range(40))
    assert len(office.batches) < 40  # coalesced
    assert all(name.startswith("onestop-command") for name in office.threads)
    assert bus.profile.batches == len(office.batches)
    assert bus.profile.validate_seconds == pytest.approx(0.001 * 40)


def test_a_command_that_fails_alone_gets_its_error_and_a_failed_batch_fails_each_of_its_submissions() -> None:
    office = FakeOffice()
    bus = CommandBus(office, workers=2, batches_in_flight=1)  # type: ignore[arg-type]

    async def alone_then(first_body: str, bodies: tuple[str, ...]) -> list[asyncio.Future[Any]]:
        """``first_body`` is being saved alone (held at the gate) while ``bodies`` join the bus."""
        office.gate.clear()
        office.entered.clear()
        first = asyncio.ensure_future(bus.submit(command(first_body)))
        await asyncio.to_thread(office.entered.wait, 5)
        rest = [asyncio.ensure_future(bus.submit(command(b))) for b in bodies]
        await asyncio.sleep(0)  # each task runs up to its wait: all are pending now
        office.gate.set()
        return [first, *rest]

    async def run() -> list[Any]:
        mixed = await asyncio.wait_for(asyncio.gather(*await alone_then("first", ("a", "reused", "b")), return_exceptions=True), 10)
        return mixed + list(await asyncio.wait_for(asyncio.gather(*await alone_then("c", ("d", "down")), return_exceptions=True), 10))

    try:
        results = asyncio.run(run())
    finally:
        bus.close()
    first, a, reused, b, c, d, down = results
    assert [x.state["id"] for x in (first, a, b, c)] == ["first", "a", "b", "c"]
    assert isinstance(reused, IdempotencyKeyReused)
    assert isinstance(d, DatabaseDown) and d is down
    assert office.batches == [["first"], ["a", "reused", "b"], ["c"], ["d", "down"]]


def test_after_close_a_submission_fails_instead_of_waiting_for_ever() -> None:
    bus = CommandBus(FakeOffice(), workers=2)  # type: ignore[arg-type]
    bus.close()

    async def run() -> Any:
        return await asyncio.wait_for(bus.submit(command("late")), 5)

    with pytest.raises(RuntimeError):
        asyncio.run(run())
