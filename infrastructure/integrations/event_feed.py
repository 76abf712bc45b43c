"""The published event feed: every event of the log as a CloudEvent, in log order.

A follower of the log (``FeedFollower``, run by the elected projector after each catch-up)
maps each event once to its CloudEvent and writes the encoded bytes to ``event_feed``, with
the event's organisation, type and subject beside it. The catch-up feed, the SSE stream and
the webhook dispatcher all read that table, so serving an event costs a row read (a few µs),
not a JSON decode, a mapping and an encode (tens of µs an event), again for every reader.

Organisations: only ``ServiceRequest.Submitted`` and ``Payment.Opened`` carry one. The
follower keeps ``aggregate_organizations`` (aggregate id → organisation), written in the same
transaction as the feed rows, and resolves every other event through it (and an in-memory
cache). The log puts an aggregate's first event before its others, and the follower reads the
log in order, so the organisation is always known by the time it is needed.

The feed is written by one follower, a batch per transaction, in increasing position order, so
"after position p" never skips a row, exactly like the log itself.

The elected projector hands the follower each batch of the log it has just read for the views
(``take``), so a live event is read from the log once, not once per follower; the follower
reads the log itself only to catch up to where the projector is (after a start, or a failure).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence
from uuid import UUID

import asyncpg

from application.cloudevents import to_cloudevent, is_published
from application.ports import FeedPage
from infrastructure.eventstore.following import Backoff, catch_up_in_batches
from infrastructure.json_codec import dumps
from infrastructure.eventstore.event_log import EVENTS_TABLE, stored_event_document

log = logging.getLogger("onestop.feed")

FEED_TABLE = "event_feed"
# How far the feed has read the log, published or not: the last events may all be internal ones
# (a slot's seats, a receipt book's numbers), which leave no row in the feed.
POSITION_TABLE = "event_feed_position"
POSITION_SQL = (f"SELECT greatest((SELECT coalesce(max(position), 0) FROM {FEED_TABLE}),"
                f" (SELECT coalesce(max(position), 0) FROM {POSITION_TABLE}))")
ORGANIZATIONS_TABLE = "aggregate_organizations"
# NOTIFYed with the feed's new position in the transaction that writes it.
FEED_CHANNEL = "onestop_feed"
# The events that name their aggregate's organisation.
_NAMES_ORGANIZATION = frozenset({"ServiceRequest.Submitted", "Payment.Opened", "Recipient.Registered", "AllowanceRun.Started",
                                 "DisbursementBatch.Prepared", "Appointment.Booked", "Receipt.Issued", "Reconciliation.Opened"})
_CACHE_LIMIT = 200_000

SCHEMA_STATEMENTS = [
    f"""CREATE TABLE IF NOT EXISTS {FEED_TABLE} (
        position bigint PRIMARY KEY, id text NOT NULL, type text NOT NULL, organization text,
        subject uuid NOT NULL, occurred_at timestamptz NOT NULL, body bytea NOT NULL)""",
    f"CREATE INDEX IF NOT EXISTS {FEED_TABLE}_organization ON {FEED_TABLE} (organization, position)",
    f"CREATE INDEX IF NOT EXISTS {FEED_TABLE}_occurred ON {FEED_TABLE} (occurred_at)",
    f"""CREATE TABLE IF NOT EXISTS {ORGANIZATIONS_TABLE} (
        aggregate_id uuid PRIMARY KEY, organization text NOT NULL)""",
    f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} (name text PRIMARY KEY, position bigint NOT NULL)",
    f"INSERT INTO {POSITION_TABLE} (name, position) VALUES ('feed', 0) ON CONFLICT DO NOTHING",
]

_READ_LOG = (
    f"SELECT notification_id, originator_id::text AS aggregate_id, originator_version, topic, state"
    f" FROM {EVENTS_TABLE} WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id LIMIT %s"
)
_FEED_COLUMNS = ("position", "id", "type", "organization", "subject", "occurred_at", "body")
_FEED_TYPES = ("int8", "text", "text", "text", "uuid", "timestamptz", "bytea")
# Fewer rows than this are inserted in one pipeline rather than copied (see FeedFollower._insert).
COPY_ROWS = 200
# The rows as one JSON array of arrays (one orjson encode, not an array per column that psycopg
# dumps value by value): PostgreSQL reads each value as its column's type, the time from the
# event's ISO text as fromisoformat does, the body from its UTF-8 text back to the same bytes.
_INSERT_FEED = (
    f"INSERT INTO {FEED_TABLE} ({', '.join(_FEED_COLUMNS)})"
    f" SELECT (r->>0)::int8, r->>1, r->>2, r->>3, (r->>4)::uuid, (r->>5)::timestamptz, convert_to(r->>6, 'UTF8')"
    f" FROM jsonb_array_elements(%s::jsonb) AS r"
)


def _row_of(notification: Any) -> dict[str, Any]:
    """A notification the projector read (eventsourcing's ``Notification``) as a row of the log."""
    return {"notification_id": notification.id, "aggregate_id": str(notification.originator_id),
            "originator_version": notification.originator_version, "topic": notification.topic, "state": notification.state}


class FeedFollower:
    """Writes the CloudEvent of every new event to ``event_feed``. Runs in the elected
    projector only (one writer), after the views' catch-up."""

    def __init__(self, datastore: Any, *, batch_size: int = 2000,
                 reveal: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None) -> None:
        self.datastore = datastore
        # Opens the personal fields encrypted per person (infrastructure/privacy/), for the
        # allowlist to pick from; an erased person's read "[erased]".
        self.reveal = reveal
        self.batch_size = batch_size
        self._position: int | None = None
        self._organizations: dict[str, str] = {}

    def position(self) -> int:
        """The last position of the log the feed has read (published or not)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(POSITION_SQL + " AS p")
            return int(curs.fetchone()["p"])

    def catch_up(self, until: int | None = None) -> int:
        """Publish every event after the feed's position (up to ``until``, when given: the
        projector's position), a batch per transaction. With ``until`` and the feed there
        already, nothing is read."""
        if self._position is None:
            self._position = self.position()
        if until is not None and self._position >= until:
            return 0
        limit = until if until is not None else 2**62
        try:
            done, position = catch_up_in_batches(self._position, lambda after, n: self._read(after, n, limit), self._write, self.batch_size)
            # Events up to ``until`` have all been read, published or not.
            self._position = max(position, until or 0)
            return done
        except Exception:
            # Another writer, or a failed transaction: read the position again next time.
            self._position = None
            raise

    def take(self, after: int, notifications: Sequence[Any]) -> int:
        """Publish a batch the projector read: every event of the log after position ``after``
        up to the last of ``notifications`` (eventsourcing notifications, in log order). The
        feed catches up to ``after`` from the log first if it is behind; what it has published
        already is skipped. Returns how many events it processed."""
        if not notifications:
            return 0
        done = self.catch_up(until=after)
        assert self._position is not None
        rows = [_row_of(n) for n in notifications if n.id > self._position]
        if rows:
            try:
                self._write(after, rows)
            except Exception:
                self._position = None
                raise
            self._position = rows[-1]["notification_id"]
        return done + len(rows)

    def _read(self, after: int, limit: int, until: int = 2**62) -> list[Mapping[str, Any]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(_READ_LOG, (after, until, limit))
            return curs.fetchall()

    def _write(self, _: int, rows: list[Mapping[str, Any]]) -> int:
        self._publish(rows)
        return int(rows[-1]["notification_id"])

    def _publish(self, rows: list[Mapping[str, Any]]) -> None:
        # Internal aggregates (a slot's seats, an applicant's open bookings) are not published.
        documents = [d for d in map(stored_event_document, rows) if is_published(d["type"])]
        last = int(rows[-1]["notification_id"])
        if not documents:
            with self.datastore.transaction(commit=True) as curs:
                _record_position(curs, last)
            return
        if self.reveal is not None:
            documents = self.reveal(documents)
        new_organizations = {
            d["aggregate_id"]: d["data"]["organization"] for d in documents
            if d["type"] in _NAMES_ORGANIZATION and d["data"].get("organization")
        }
        if len(documents) < COPY_ROWS:
            self._insert(documents, new_organizations, last)
            return
        with self.datastore.transaction(commit=True) as curs:
            self._organizations_of(curs, documents, new_organizations)
            # Binary: the body goes as it is, not as hex text.
            with curs.copy(f"COPY {FEED_TABLE} ({', '.join(_FEED_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_FEED_TYPES)
                for d in documents:
                    organization = self._organizations.get(d["aggregate_id"])
                    event = to_cloudevent(d, organization)
                    copy.write_row((d["position"], event["id"], event["type"], organization, UUID(d["aggregate_id"]),
                                    datetime.fromisoformat(d["occurred_at"]), dumps(event)))
            _record_position(curs, last)
            curs.execute(f"NOTIFY {FEED_CHANNEL}, '{int(documents[-1]['position'])}'")

    def _organizations_of(self, curs: Any, documents: list[dict[str, Any]], new_organizations: dict[str, str]) -> None:
        """Know the organisation of every document's aggregate: those the batch opens are
        recorded, the others read once from the table into the cache."""
        missing = {d["aggregate_id"] for d in documents} - new_organizations.keys() - self._organizations.keys()
        if missing:
            curs.execute(f"SELECT aggregate_id::text AS id, organization FROM {ORGANIZATIONS_TABLE} WHERE aggregate_id = ANY(%s::uuid[])", (list(missing),))
            self._remember({r["id"]: r["organization"] for r in curs.fetchall()})
        self._remember(new_organizations)
        if new_organizations:
            curs.execute(
                f"INSERT INTO {ORGANIZATIONS_TABLE} (aggregate_id, organization)"
                f" SELECT * FROM unnest(%s::uuid[], %s::text[]) ON CONFLICT DO NOTHING",
                (list(new_organizations), list(new_organizations.values())),
            )

    def _insert(self, documents: list[dict[str, Any]], new_organizations: dict[str, str], last: int) -> None:
        """``_publish`` for a few events (the live projector's batches): the same rows with an
        INSERT of JSON instead of a COPY, every statement in one pipeline with BEGIN and COMMIT,
        so the batch costs one round trip (two when organisations must be read first)."""
        with self.datastore.get_connection() as conn, conn.pipeline(), conn.transaction():
            curs = conn.cursor()
            self._organizations_of(curs, documents, new_organizations)
            rows = []
            for d in documents:
                organization = self._organizations.get(d["aggregate_id"])
                event = to_cloudevent(d, organization)
                rows.append((d["position"], event["id"], event["type"], organization, d["aggregate_id"], d["occurred_at"],
                             dumps(event).decode()))
            curs.execute(_INSERT_FEED, (dumps(rows).decode(),))
            _record_position(curs, last)
            curs.execute(f"NOTIFY {FEED_CHANNEL}, '{int(documents[-1]['position'])}'")

    def _remember(self, organizations: Mapping[str, str]) -> None:
        if len(self._organizations) + len(organizations) > _CACHE_LIMIT:
            self._organizations.clear()
        self._organizations.update(organizations)


def _record_position(curs: Any, position: int) -> None:
    """The feed has read the log up to ``position`` (in the transaction that publishes it)."""
    curs.execute(f"INSERT INTO {POSITION_TABLE} (name, position) VALUES ('feed', %s)"
                 f" ON CONFLICT (name) DO UPDATE SET position = greatest({POSITION_TABLE}.position, EXCLUDED.position)", (position,))


class FeedNotifier:
    """One LISTEN connection per process; wakes every waiting stream when the feed grows.

    Waiters take ``waiter()`` *before* they read, then wait on it, so a notification that
    arrives between the read and the wait is not lost. Streams also poll, so a lost
    connection only slows them down.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._event = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._closed = False
        self._reconnect: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """LISTEN; when the database cannot be reached now, keep trying in the background."""
        if not await self._connect() and not self._closed:
            self._reconnect = asyncio.get_running_loop().create_task(self._restart())

    async def _connect(self) -> bool:
        try:
            self._conn = await asyncpg.connect(self.dsn)
            await self._conn.add_listener(FEED_CHANNEL, self._on_notify)
            self._conn.add_termination_listener(self._on_lost)
            return True
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("cannot LISTEN for the feed (%s); streams poll meanwhile", error)
            self._conn = None
            return False

    def _on_notify(self, *_: Any) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def _on_lost(self, *_: Any) -> None:
        self._conn = None
        if not self._closed:
            self._reconnect = asyncio.get_running_loop().create_task(self._restart())

    async def _restart(self) -> None:
        # Until it listens again (the server may be restarting, or refusing connections).
        backoff = Backoff(initial=1.0)
        while not self._closed:
            await asyncio.sleep(backoff.next())
            if not self._closed and await self._connect():
                self._on_notify()  # whatever was published meanwhile
                return

    def waiter(self) -> asyncio.Event:
        return self._event

    async def close(self) -> None:
        self._closed = True
        self._on_notify()  # release every waiter
        if self._reconnect is not None:
            self._reconnect.cancel()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


@dataclass(frozen=True)
class FeedRow:
    position: int
    id: str
    type: str
    organization: str | None
    subject: str
    body: bytes


class EventFeed:
    """Reads of the published feed (asyncpg)."""

    def __init__(self, pool: asyncpg.Pool, notifier: FeedNotifier) -> None:
        self.pool = pool
        self.notifier = notifier

    @staticmethod
    def _where(args: list[Any], types: list[str] | None, organization: str | None) -> str:
        where = ""
        if types:
            args.append(types)
            where += f" AND type = ANY(${len(args)}::text[])"
        if organization is not None:
            args.append(organization)
            where += f" AND organization = ${len(args)}"
        return where

    async def page(self, after: int, limit: int, *, types: list[str] | None = None, organization: str | None = None) -> FeedPage:
        """Up to ``limit`` events after ``after``, in log order, narrowed by CloudEvents
        ``types`` and ``organization``. When the page is not full, ``next_position`` is the
        feed's head, read in the same snapshot: no later match can appear below it, so a filtered
        reader does not scan the same non-matching rows again."""
        args: list[Any] = [after, limit]
        where = self._where(args, types, organization)
        rows = await self.pool.fetch(
            f"SELECT h.head, f.position, f.body FROM (SELECT coalesce(max(position), 0) AS head FROM {FEED_TABLE}) h"
            f" LEFT JOIN LATERAL (SELECT position, body FROM {FEED_TABLE} WHERE position > $1{where}"
            f" ORDER BY position LIMIT $2) f ON true",
            *args,
        )
        items = [(row[1], row[2]) for row in rows if row[1] is not None]
        if len(items) == limit:
            return FeedPage(items, items[-1][0])
        return FeedPage(items, max(after, rows[0][0]))

    async def rows(self, after: int, limit: int, *, until: int | None = None, conn: asyncpg.Connection | None = None) -> list[FeedRow]:
        """Published events after ``after`` (and at most ``until``) with what a subscription
        matches on; on ``conn`` when given, to be part of its transaction."""
        rows = await (conn or self.pool).fetch(
            f"SELECT position, id, type, organization, subject::text, body FROM {FEED_TABLE}"
            f" WHERE position > $1 AND position <= $3 ORDER BY position LIMIT $2", after, limit, until if until is not None else 2**62,
        )
        return [FeedRow(*row) for row in rows]

    def waiter(self) -> asyncio.Event:
        """An event that fires when the feed grows."""
        return self.notifier.waiter()

    async def wait(self, waiter: asyncio.Event, timeout: float) -> None:
        """Until the feed grows (``waiter`` fires) or ``timeout`` passes."""
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
        except asyncio.TimeoutError:
            pass
