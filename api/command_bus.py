"""Runs the synchronous BackOffice from asyncio: one executor, sized to the connection pool.

Concurrent submissions are coalesced: while one batch is being saved, the next collects, and
each batch is one transaction. The event store's table lock is taken per transaction, so this
is what lets many clients share the write ceiling.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, TypeVar

from application.back_office import BackOffice
from application.commands import SubmitCommand
from application.outcomes import Outcome
from application.ports import UseCaseRunner

T = TypeVar("T")


class CommandBus(UseCaseRunner):
    def __init__(self, app: BackOffice, *, workers: int, max_batch: int = 128, batches_in_flight: int = 2) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="onestop-command")
        self.max_batch = max_batch
        self._pending: list[tuple[SubmitCommand, asyncio.Future[Outcome]]] = []
        self._flushers = 0
        self._batches_in_flight = batches_in_flight

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one use case in the executor."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(fn, *args, **kwargs))

    async def submit(self, command: SubmitCommand) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((command, future))
        if self._flushers < self._batches_in_flight:
            self._flushers += 1
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                try:
                    results = await self.call(self.app.submit_many, [c for c, _ in batch])
                except Exception as error:  # the database is down, for example: fail this batch
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results):
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
