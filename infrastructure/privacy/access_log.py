"""The access log in PostgreSQL, written in batches off the read path.

``record`` only appends to an in-process buffer; a background task writes the buffer with one
``COPY`` every ONESTOP_ACCESS_LOG_FLUSH_MS, or as soon as ONESTOP_ACCESS_LOG_BATCH_ROWS rows
wait, and again when the API shuts down. So a read waits for no write. What this costs: a
process that dies without shutting down (SIGKILL, power loss) loses the rows of its last
interval, at most one flush interval of reads. A write that fails (the database away) is
retried with the rows kept; when MAX_PENDING rows wait, further reads of personal data are
refused (503) rather than served unrecorded.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import astuple
from typing import Any

import asyncpg

from application.errors import AccessLogUnavailable
from application.ports import AccessEntry, AccessLog

log = logging.getLogger("onestop.access_log")

TABLE = "access_log"
COLUMNS = ("at", "subject_ref", "actor_sub", "actor_role", "actor_org", "what", "resource", "purpose")
SCHEMA_STATEMENTS = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL, subject_ref text NOT NULL,
        actor_sub text NOT NULL, actor_role text NOT NULL, actor_org text, what text NOT NULL, resource text,
        purpose text)""",
    f"CREATE INDEX IF NOT EXISTS access_log_subject ON {TABLE} (subject_ref, id)",
]
MAX_PENDING = 100_000


class BatchedAccessLog(AccessLog):
    def __init__(self, pool: asyncpg.Pool, *, flush_ms: int = 200, batch_rows: int = 500, max_pending: int = MAX_PENDING) -> None:
        self.pool = pool
        self.flush_seconds = flush_ms / 1000
        self.batch_rows = batch_rows
        self.max_pending = max_pending
        self._pending: list[tuple[Any, ...]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._lock = asyncio.Lock()
        self.written = 0

    def record(self, entries: list[AccessEntry]) -> None:
        if len(self._pending) + len(entries) > self.max_pending:
            raise AccessLogUnavailable("the access log cannot be written now; reads of personal data wait until it can")
        self._pending.extend(astuple(entry) for entry in entries)
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="access-log")
        if len(self._pending) >= self.batch_rows:
            self._wake.set()

    async def _run(self) -> None:
        backoff = self.flush_seconds
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.flush()
                backoff = self.flush_seconds
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("access log: %d rows wait; writing failed: %s", len(self._pending), error)
                backoff = min(max(backoff * 2, 0.2), 10.0)

    async def flush(self) -> None:
        async with self._lock:
            while self._pending:
                batch = self._pending[: self.batch_rows * 4]
                async with self.pool.acquire() as conn:
                    await conn.copy_records_to_table(TABLE, records=batch, columns=COLUMNS)
                # Only once written: a failed COPY keeps the rows for the next try.
                del self._pending[: len(batch)]
                self.written += len(batch)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._task is not None:
            # Let a flush under way finish (cancelling it mid-COPY could write its rows twice).
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
        try:
            await self.flush()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.error("access log: %d rows could not be written at shutdown: %s", len(self._pending), error)

    async def page(self, subject_ref: str, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        rows = await self.pool.fetch(
            f"SELECT id, {', '.join(COLUMNS)} FROM {TABLE} WHERE subject_ref = $1 AND id > $2 ORDER BY id LIMIT $3",
            subject_ref, after, limit,
        )
        items = [
            {"cursor": str(r["id"]), "at": r["at"], "actor": {"sub": r["actor_sub"], "role": r["actor_role"], "org": r["actor_org"]},
             "what": r["what"], "resource": r["resource"], "purpose": r["purpose"]}
            for r in rows
        ]
        return items, (rows[-1]["id"] if len(rows) == limit else None)
