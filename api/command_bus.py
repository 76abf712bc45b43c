"""Runs the synchronous BackOffice from asyncio: one executor, sized to the connection pool.

Concurrent submissions are coalesced: while one batch is being saved, the next collects, and
each batch is one transaction. The event store's table lock is taken per transaction, so this
is what lets many clients share the write ceiling.

The bus also keeps running totals of where a submission's time goes (`SubmitProfile`), which
``GET /metrics`` publishes: a few additions per batch, cheap enough to leave on.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, TypeVar

from application.back_office import BackOffice
from application.commands import SubmitCommand
from application.outcomes import Outcome
from application.ports import UseCaseRunner

T = TypeVar("T")


@dataclass
class SubmitProfile:
    """Running totals, in seconds, of where ``POST /v1/service-requests`` spends its time in
    this API process. The ``*_seconds`` phases are summed over submissions (a batch's phase
    counts once for each submission in it, since each of them waits for all of it), so each
    divided by ``submits`` is the mean a submission spent there:

    * ``read``: from the handler's start to its command (Idempotency-Key, body read and parsed
      to storable JSON, its hash);
    * ``queued``: from the command joining the bus to its batch going to a worker thread;
    * ``handoff``: the batch waiting for a worker thread and its result coming back to the
      event loop (thread hand-offs, and the loop being busy with other requests);
    * ``validate``: checking each body against the schema and the catalogue, deciding (the
      domain's events), and issuing references, for the whole batch;
    * ``store``: the event store's transaction for the whole batch: mapping the events to
      stored events (encoding, encrypting personal fields), the table lock, the INSERT and the
      commit;
    * ``respond``: from the outcome to the response object (headers, JSON).

    ``batches`` and ``batch_*_seconds`` count each batch once (what the process spends)."""

    submits: int = 0
    batches: int = 0
    read_seconds: float = 0.0
    queued_seconds: float = 0.0
    handoff_seconds: float = 0.0
    validate_seconds: float = 0.0
    store_seconds: float = 0.0
    respond_seconds: float = 0.0
    batch_validate_seconds: float = 0.0
    batch_store_seconds: float = 0.0

    PHASES = ("read", "queued", "handoff", "validate", "store", "respond")


class CommandBus(UseCaseRunner):
    def __init__(self, app: BackOffice, *, workers: int, max_batch: int = 128, batches_in_flight: int | None = None) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="onestop-command")
        self.max_batch = max_batch
        self._pending: list[tuple[SubmitCommand, asyncio.Future[Outcome], float]] = []
        self._flushers = 0
        # Three batches in flight: one in PostgreSQL holding the log's lock, one waiting there
        # for it, one being validated and encoded here; so the lock is taken again as soon as it
        # is released. At least one worker (and connection) stays free for the other use cases.
        self._batches_in_flight = batches_in_flight or max(2, min(3, workers - 1))
        self.profile = SubmitProfile()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one use case in the executor."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(fn, *args, **kwargs))

    async def submit(self, command: SubmitCommand) -> Outcome:
        # The loop of the first submission, kept: asyncio.get_running_loop() makes a getpid()
        # system call each time (it checks for a fork), once per submission otherwise.
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._pending.append((command, future, time.perf_counter()))
        if self._flushers < self._batches_in_flight:
            self._flushers += 1
            loop.create_task(self._flush())
        return await future

    def _submit_batch(self, commands: list[SubmitCommand], timings: dict[str, float]) -> list[Outcome | Exception]:
        timings["started"] = time.perf_counter()
        results = self.app.submit_many(commands, timings=timings)
        timings["finished"] = time.perf_counter()
        return results

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        profile = self.profile
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                timings: dict[str, float] = {}
                sent = time.perf_counter()
                try:
                    results = await loop.run_in_executor(self.executor, self._submit_batch, [c for c, _, _ in batch], timings)
                except Exception as error:  # the database is down, for example: fail this batch
                    for _, future, _ in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                back = time.perf_counter()
                size = len(batch)
                validate, store = timings.get("validate", 0.0), timings.get("store", 0.0)
                profile.batches += 1
                profile.batch_validate_seconds += validate
                profile.batch_store_seconds += store
                profile.queued_seconds += sent * size - sum(t for _, _, t in batch)
                profile.validate_seconds += validate * size
                profile.store_seconds += store * size
                profile.handoff_seconds += max(0.0, (back - sent) - (timings.get("finished", back) - timings.get("started", sent))) * size
                for (_, future, _), result in zip(batch, results):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._flushers -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=False)
