"""Tamper evidence: a SHA-256 hash chain over the whole event log.

Each event's link is SHA-256 of the previous link and the event's stored bytes (notification
id, originator id, originator version, topic and state, each length-delimited so no two
different rows hash alike). ``audit_chain`` keeps one link per position and ``audit_chain_head``
the last one, with how many events the chain covers.

``ChainFollower`` extends the chain; the elected projector hands it each batch of the log it
has read for the views (and runs it after each catch-up), so there is one writer, the chain
grows in log order, and a live event is read from the log once. ``verify_chain`` recomputes every link from the
log as it is now, streaming both tables in batches (constant memory), and reports the first
position where the log and the chain disagree: an event changed, deleted or slipped in.

What this proves: nobody changed a chained event without also rewriting every later link and
the head. To make that rewrite detectable as well, publish the head (position and link) outside
the database from time to time, e.g. in a signed daily report; ``verify`` prints it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, AsyncIterator, Sequence
from uuid import UUID

import asyncpg

from infrastructure.errors import ChainHeadMoved
from infrastructure.eventstore.event_log import EVENTS_TABLE
from infrastructure.eventstore.following import catch_up_in_batches

CHAIN_TABLE = "audit_chain"
HEAD_TABLE = "audit_chain_head"
GENESIS = bytes(32)

SCHEMA_STATEMENTS = [
    f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} (position bigint PRIMARY KEY, link bytea NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS {HEAD_TABLE} (
        id boolean PRIMARY KEY DEFAULT true CHECK (id), position bigint NOT NULL, link bytea NOT NULL,
        count bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())""",
]

_READ_LOG = (
    f"SELECT notification_id, originator_id, originator_version, topic, state FROM {EVENTS_TABLE}"
    " WHERE notification_id > {after} AND notification_id <= {until} ORDER BY notification_id LIMIT {limit}"
)


# Fewer links than this are inserted in one pipeline rather than copied (see ChainFollower._write).
COPY_ROWS = 200
# Guarded by the previous head, so two writers can never both extend the chain.
_MOVE_HEAD = (
    f"INSERT INTO {HEAD_TABLE} (id, position, link, count) VALUES (true, %s, %s, %s)"
    f" ON CONFLICT (id) DO UPDATE SET position = EXCLUDED.position, link = EXCLUDED.link,"
    f" count = EXCLUDED.count, updated_at = now() WHERE {HEAD_TABLE}.position = %s"
)


def chain_link(previous: bytes, position: int, originator_id: UUID | Any, version: int, topic: str, state: bytes) -> bytes:
    """The link of one stored event, given the link before it."""
    digest = hashlib.sha256(previous)
    digest.update(position.to_bytes(8, "big", signed=True))
    digest.update(originator_id.bytes)
    digest.update(version.to_bytes(8, "big", signed=True))
    encoded = topic.encode()
    digest.update(len(encoded).to_bytes(4, "big"))
    digest.update(encoded)
    digest.update(len(state).to_bytes(8, "big"))
    digest.update(state)
    return digest.digest()


class ChainFollower:
    """Extends the chain over every new event, a batch per transaction."""

    def __init__(self, datastore: Any, *, batch_size: int = 5000) -> None:
        self.datastore = datastore
        self.batch_size = batch_size
        self._head: tuple[int, bytes, int] | None = None

    def head(self) -> tuple[int, bytes, int]:
        """(position, link, count) of the chain's last link; (0, GENESIS, 0) when empty."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(f"SELECT position, link, count FROM {HEAD_TABLE}")
            row = curs.fetchone()
        return (0, GENESIS, 0) if row is None else (row["position"], bytes(row["link"]), row["count"])

    def catch_up(self, until: int | None = None) -> int:
        """Chain every event after the head (up to ``until``, when given: the projector's
        position). With ``until`` and the chain there already, nothing is read."""
        if self._head is None:
            self._head = self.head()
        if until is not None and self._head[0] >= until:
            return 0
        limit = until if until is not None else 2**62
        try:
            done, _ = catch_up_in_batches(self._head[0], lambda after, n: self._read(after, n, limit), self._extend, self.batch_size)
            return done
        except Exception:
            self._head = None
            raise

    def take(self, after: int, notifications: Sequence[Any]) -> int:
        """Chain a batch the projector read: every event of the log after position ``after`` up
        to the last of ``notifications`` (eventsourcing notifications, in log order). The chain
        catches up to ``after`` from the log first if it is behind; what it has chained already
        is skipped. Returns how many events it chained."""
        if not notifications:
            return 0
        done = self.catch_up(until=after)
        assert self._head is not None
        rows = [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications if n.id > self._head[0]]
        if rows:
            try:
                self._extend(after, rows)
            except Exception:
                self._head = None
                raise
        return done + len(rows)

    def _read(self, after: int, limit: int, until: int = 2**62) -> list[Any]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(_READ_LOG.format(after="%s", until="%s", limit="%s"), (after, until, limit))
            return [(r["notification_id"], r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])) for r in curs.fetchall()]

    def _extend(self, _: int, rows: list[tuple[int, UUID, int, str, bytes]]) -> int:
        """Link ``rows`` (position, originator id, version, topic, state) after the head."""
        assert self._head is not None
        position, link, count = self._head
        links = []
        for notification_id, originator_id, version, topic, state in rows:
            link = chain_link(link, notification_id, originator_id, version, topic, state)
            links.append((notification_id, link))
        self._write(position, links, count)
        self._head = (links[-1][0], link, count + len(links))
        return links[-1][0]

    def _write(self, previous_position: int, links: list[tuple[int, bytes]], count: int) -> None:
        last_position, last_link = links[-1]
        if len(links) < COPY_ROWS:
            # A few links (the live projector's batches): an INSERT instead of a COPY,
            # in one pipeline with BEGIN, the head's update and COMMIT: two round trips, not five.
            with self.datastore.get_connection() as conn, conn.pipeline() as pipeline, conn.transaction():
                curs = conn.cursor()
                # One text parameter, "position:link in hex" per link: no array for psycopg to
                # dump value by value.
                curs.execute(f"INSERT INTO {CHAIN_TABLE} (position, link) SELECT split_part(l, ':', 1)::int8,"
                             f" decode(split_part(l, ':', 2), 'hex') FROM unnest(string_to_array(%s, ',')) AS l",
                             (",".join(f"{p}:{link.hex()}" for p, link in links),))
                curs.execute(_MOVE_HEAD, (last_position, last_link, count + len(links), previous_position))
                pipeline.sync()
                if curs.rowcount != 1:
                    raise ChainHeadMoved("the audit chain head moved under this follower")
            return
        with self.datastore.transaction(commit=True) as curs:
            with curs.copy(f"COPY {CHAIN_TABLE} (position, link) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(("int8", "bytea"))
                for row in links:
                    copy.write_row(row)
            # Guarded by the previous head, so two writers can never both extend the chain.
            curs.execute(_MOVE_HEAD, (last_position, last_link, count + len(links), previous_position))
            if curs.rowcount != 1:
                raise ChainHeadMoved("the audit chain head moved under this follower")


@dataclass
class Verdict:
    status: str  # intact | broken
    checked: int
    head: dict[str, Any] | None
    first_broken_position: int | None = None
    reason: str | None = None
    log_position: int = 0
    # How far the check reached (the chain's head), and how many logged events lie beyond it,
    # not chained yet: "intact" speaks only for the log up to ``checked_to``.
    checked_to: int = 0
    behind: int = 0

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"status": self.status, "checked": self.checked, "head": self.head, "log_position": self.log_position,
                                  "checked_to": self.checked_to, "behind": self.behind, "complete": self.status == "intact" and self.behind == 0}
        if self.status == "broken":
            result["first_broken_position"] = self.first_broken_position
            result["reason"] = self.reason
        return result


async def verify_chain(conn: asyncpg.Connection, *, batch_size: int = 5000) -> Verdict:
    """Recompute the chain from the log, in batches, and compare it with the stored one."""
    head_row = await conn.fetchrow(f"SELECT position, link, count FROM {HEAD_TABLE}")
    log_position = int(await conn.fetchval(f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}"))
    if head_row is None:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {CHAIN_TABLE})"):
            return Verdict("broken", 0, None, 0, "the chain has links but no head", log_position)
        return Verdict("intact", 0, None, log_position=log_position, behind=await _events_after(conn, 0))
    head = {"position": head_row["position"], "link": bytes(head_row["link"]).hex(), "count": head_row["count"]}
    until = head_row["position"]
    checked, after, previous = 0, 0, GENESIS

    def broken(position: int, reason: str) -> Verdict:
        return Verdict("broken", checked, head, position, reason, log_position, checked_to=after)

    async for chain_rows, events in _batches(conn, until, batch_size):
        # Both lists are in position order: walk them side by side.
        i = 0
        for position, stored_link in chain_rows:
            if i < len(events) and events[i]["notification_id"] < position:
                return broken(events[i]["notification_id"], "an event in the log is not in the chain (slipped in after it was chained?)")
            if i == len(events) or events[i]["notification_id"] != position:
                return broken(position, "a chained event is missing from the log (deleted?)")
            row = events[i]
            i += 1
            link = chain_link(previous, position, row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))
            if link != bytes(stored_link):
                return broken(position, "the event's stored bytes do not match its link (changed?)")
            previous, after = link, position
            checked += 1
        if i < len(events):
            return broken(events[i]["notification_id"], "an event in the log is not in the chain (slipped in after it was chained?)")
    if after != until:
        return broken(after, "the chain ends before its head (links deleted?)")
    if previous != bytes(head_row["link"]) or checked != head_row["count"]:
        return broken(until, "the head does not match the chain")
    return Verdict("intact", checked, head, log_position=log_position, checked_to=until, behind=await _events_after(conn, until))


async def _events_after(conn: asyncpg.Connection, position: int) -> int:
    """How many logged events lie after ``position`` (the chain's lag behind the log)."""
    return int(await conn.fetchval(f"SELECT count(*) FROM {EVENTS_TABLE} WHERE notification_id > $1", position))


async def _batches(conn: asyncpg.Connection, until: int, batch_size: int) -> AsyncIterator[tuple[list[Any], list[Any]]]:
    """Chain rows and the log rows they cover, batch by batch, up to the head."""
    after = 0
    while True:
        chain_rows = await conn.fetch(
            f"SELECT position, link FROM {CHAIN_TABLE} WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3",
            after, until, batch_size,
        )
        if not chain_rows:
            # Events above the last link (and at most the head) must not exist either.
            rest = await conn.fetch(_READ_LOG.format(after="$1", until="$2", limit="1"), after, until)
            if rest:
                yield [], list(rest)
            return
        last = chain_rows[-1]["position"]
        event_rows = await conn.fetch(_READ_LOG.format(after="$1", until="$2", limit="$3"), after, last, batch_size * 2)
        yield [(r["position"], r["link"]) for r in chain_rows], list(event_rows)
        after = last
