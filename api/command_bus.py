"""Runs the synchronous BackOffice from asyncio: one executor, sized to the connection pool.

Concurrent submissions are coalesced: while one batch is being saved, the next collects, and
each batch is one transaction. Up to three worker threads each take what is pending as one batch,
save it, hand the results to the event loop and take the next, until nothing is pending. The event store's table lock is taken per transaction, so this
is what lets many clients share the write ceiling.

The bus also keeps running totals of where a submission's time goes (`SubmitProfile`), which
``GET /metrics`` publishes: a few additions per batch, cheap enough to leave on.
"""

from __future__ import annotations

import asyncio
import threading
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
    * ``queued``: from the command joining the bus to a worker thread taking it into a batch
      (a worker takes the next batch as soon as it finished one; an idle one is woken first);
    * ``handoff``: the batch's results coming back from the worker thread to the event loop
      (the loop being busy with other requests);
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
        # Submissions waiting for a batch, shared by the event loop (which adds) and the worker
        # threads (which take), under the lock.
        self._pending: list[tuple[SubmitCommand, asyncio.Future[Outcome], float]] = []
        self._lock = threading.Lock()
        self._draining = 0
        self._start_scheduled = False
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
        entry = (command, future, time.perf_counter())
        with self._lock:
            self._pending.append(entry)
        if not self._start_scheduled:
            # A new batch starts on the loop's next turn, as the submissions that arrived
            # together have joined: they go to one worker as one batch (a burst for one
            # new person is not split over concurrent transactions).
            self._start_scheduled = True
            loop.call_soon(self._start, loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the event loop: one more worker takes what is pending, unless three are saving
        batches already (each goes on to the next batch by itself)."""
        self._start_scheduled = False
        with self._lock:
            if not self._pending or self._draining >= self._batches_in_flight:
                return
            self._draining += 1
        try:
            self.executor.submit(self._drain, loop)
        except RuntimeError as error:  # the executor is shut down (the API is stopping)
            with self._lock:
                self._draining -= 1
                failed, self._pending = self._pending, []
            self._deliver(failed, error, {}, 0.0)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """In a worker thread: save batches of what is pending, one transaction each, until
        nothing is. A worker goes on from one batch to the next by itself: a batch no longer
        costs an executor work item, an asyncio future chained to it and, while submissions
        keep coming, the wake-up of a sleeping thread. The results go back to the event loop,
        which alone touches the futures."""
        while True:
            with self._lock:
                if not self._pending:
                    self._draining -= 1
                    return
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
            taken = time.perf_counter()
            timings: dict[str, float] = {}
            outcome: list[Outcome | Exception] | BaseException
            try:
                timings["started"] = time.perf_counter()
                outcome = self.app.submit_many([c for c, _, _ in batch], timings=timings)
                timings["finished"] = time.perf_counter()
            except Exception as failure:  # the database is down, for example: fail this batch
                outcome = failure
            try:
                loop.call_soon_threadsafe(self._deliver, batch, outcome, timings, taken)
            except RuntimeError:  # the loop is closed: nobody waits for these any more
                pass

    def _deliver(self, batch: list[tuple[SubmitCommand, asyncio.Future[Outcome], float]],
                 results: list[Outcome | Exception] | BaseException, timings: dict[str, float], taken: float) -> None:
        """On the event loop: a batch's results (or the error that failed it) to its
        submissions, and the profile."""
        if isinstance(results, BaseException):
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(results)
            return
        back = time.perf_counter()
        size = len(batch)
        profile = self.profile
        validate, store = timings.get("validate", 0.0), timings.get("store", 0.0)
        profile.batches += 1
        profile.batch_validate_seconds += validate
        profile.batch_store_seconds += store
        profile.queued_seconds += taken * size - sum(t for _, _, t in batch)
        profile.validate_seconds += validate * size
        profile.store_seconds += store * size
        profile.handoff_seconds += max(0.0, (back - taken) - (timings.get("finished", back) - timings.get("started", taken))) * size
        for (_, future, _), result in zip(batch, results):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=False)
