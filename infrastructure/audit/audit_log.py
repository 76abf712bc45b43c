"""The auditors' reads of the event log (asyncpg): the global ordered log with filters, a
streamed NDJSON export, the timeline that as-of reads replay, and chain verification.

Auditors see events as stored (``stored_event_document``: nothing masked), personal fields as
the ciphertext the log holds with the subject reference beside them; ``plain`` reads open them
(the API asks a purpose for that, and logs it). The published feed is for integrators.

Time filters (``since``/``until``) are exact and need no scan of the whole log: the feed table
indexes every published event's time, so the positions below the first event at or after
``since`` (and above the last at or before ``until``) are skipped; events the feed has not
published yet are scanned and filtered in SQL like any other.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable

import asyncpg

from application.ports import AuditTrail, LogFilter, Recorded
from infrastructure.audit.audit_chain import CHAIN_TABLE, verify_chain
from infrastructure.integrations.event_feed import FEED_TABLE, ORGANIZATIONS_TABLE
from infrastructure.json_codec import dumps
from infrastructure.eventstore.event_log import EVENTS_TABLE, stored_event_document

_TIME = "(convert_from(e.state, 'UTF8')::jsonb #>> '{timestamp,_data_}')::timestamptz"
# The organisation of an event's aggregate: from the table the feed follower keeps, or, for an
# aggregate it has not reached yet, from the aggregate's first event (which names it).
_ORGANIZATION = (
    f"coalesce((SELECT o.organization FROM {ORGANIZATIONS_TABLE} o WHERE o.aggregate_id = e.originator_id),"
    f" (SELECT convert_from(f.state, 'UTF8')::jsonb ->> 'organization' FROM {EVENTS_TABLE} f"
    f" WHERE f.originator_id = e.originator_id AND f.originator_version = 1))"
)
_COLUMNS = "e.notification_id, e.originator_id::text AS aggregate_id, e.originator_version, e.topic, e.state"


class AuditLog(AuditTrail):
    def __init__(self, pool: asyncpg.Pool, reveal: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None) -> None:
        self.pool = pool
        # Opens personal fields for ``plain`` reads (a batch at a time, in a thread: it may read
        # keys from the database). Without it, plain reads are as stored.
        self.reveal = reveal

    async def _documents(self, rows: list[Any], plain: bool) -> list[dict[str, Any]]:
        documents = [stored_event_document(row) for row in rows]
        if plain and self.reveal is not None and documents:
            documents = await asyncio.to_thread(self.reveal, documents)
        return documents

    async def _where(self, conn: asyncpg.Connection, after: int, log_filter: LogFilter, args: list[Any]) -> str:
        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        clauses = [f"e.notification_id > {arg(after)}"]
        if log_filter.topics:
            clauses.append(f"e.topic = ANY({arg(log_filter.topics)}::text[])")
        if log_filter.organization is not None:
            clauses.append(f"{_ORGANIZATION} = {arg(log_filter.organization)}")
        if log_filter.since is not None or log_filter.until is not None:
            published = int(await conn.fetchval(f"SELECT coalesce(max(position), 0) FROM {FEED_TABLE}"))
            if log_filter.since is not None:
                first = await conn.fetchval(f"SELECT min(position) FROM {FEED_TABLE} WHERE occurred_at >= $1", log_filter.since)
                # Every published event below ``first`` happened before ``since``.
                clauses.append(f"e.notification_id >= {arg(first if first is not None else published + 1)}")
                clauses.append(f"{_TIME} >= {arg(log_filter.since)}")
            if log_filter.until is not None:
                last = await conn.fetchval(f"SELECT max(position) FROM {FEED_TABLE} WHERE occurred_at <= $1", log_filter.until)
                # Every published event above ``last`` happened after ``until``.
                clauses.append(f"(e.notification_id <= {arg(last or 0)} OR e.notification_id > {arg(published)})")
                clauses.append(f"{_TIME} <= {arg(log_filter.until)}")
        return " AND ".join(clauses)

    async def page(self, after: int, limit: int, log_filter: LogFilter, *, plain: bool = False) -> tuple[list[dict[str, Any]], int | None]:
        """Events after position ``after`` in log order; the position to continue after, or
        None when the log has no more (for now)."""
        async with self.pool.acquire() as conn:
            args: list[Any] = []
            where = await self._where(conn, after, log_filter, args)
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM {EVENTS_TABLE} e WHERE {where} ORDER BY e.notification_id LIMIT {int(limit)}", *args,
            )
        items = await self._documents(rows, plain)
        return items, (items[-1]["position"] if len(items) == limit else None)

    async def export(self, log_filter: LogFilter, observe: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None,
                     *, plain: bool = False, batch_size: int = 1000) -> AsyncIterator[bytes]:
        """The matching events as NDJSON (one event per line, with its chain link), a chunk per
        batch, read with a server-side cursor in one read-only snapshot: memory stays constant
        however long the log is."""
        async with self.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                args: list[Any] = []
                where = await self._where(conn, 0, log_filter, args)
                cursor = await conn.cursor(
                    f"SELECT {_COLUMNS}, c.link FROM {EVENTS_TABLE} e LEFT JOIN {CHAIN_TABLE} c ON c.position = e.notification_id"
                    f" WHERE {where} ORDER BY e.notification_id", *args,
                )
                while True:
                    rows = await cursor.fetch(batch_size)
                    if not rows:
                        return
                    documents = await self._documents(rows, plain)
                    if observe is not None:
                        await observe(documents)
                    yield b"".join(
                        dumps({**document, "chain_link": row["link"].hex() if row["link"] else None}) + b"\n"
                        for document, row in zip(documents, rows)
                    )

    async def recorded(self, aggregate_id: str) -> list[Recorded]:
        rows = await self.pool.fetch(
            f"SELECT e.originator_version, e.notification_id, e.topic, {_TIME} AS occurred_at FROM {EVENTS_TABLE} e"
            f" WHERE e.originator_id = $1::uuid ORDER BY e.originator_version", aggregate_id,
        )
        return [Recorded(aggregate_id, r["originator_version"], r["notification_id"], r["topic"].partition(":")[2], r["occurred_at"]) for r in rows]

    async def verify(self) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            return (await verify_chain(conn)).as_dict()
