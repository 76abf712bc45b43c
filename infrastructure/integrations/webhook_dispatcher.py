"""The webhook dispatcher: follows the published feed with its own tracking position and turns
every event into a delivery for each subscription that wants it, then enqueues a message per
new delivery. It also carries out replays and sweeps up deliveries whose message was lost.

Several dispatchers may run: the tracking row is locked (``FOR UPDATE``) for the length of a
batch, so they take turns, and a delivery is unique per (subscription, position), so a batch done
twice creates nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import asyncpg

from infrastructure.integrations.event_feed import FEED_TABLE, EventFeed, FeedRow
from infrastructure.integrations.delivery import WebhookSettings
from infrastructure.integrations.subscriptions import DELIVERIES, DISPATCH_TRACKING, REPLAYS, SUBSCRIPTIONS
from infrastructure.eventstore.following import broker_errors, follow_async

log = logging.getLogger("onestop.webhooks")

# Sends (delivery id, delay in seconds) pairs to the broker; synchronous, as Dramatiq's send is.
Enqueue = Callable[[list[tuple[int, float]]], None]
NAME = "webhooks"

_INSERT = f"""
INSERT INTO {DELIVERIES} (subscription_id, position, event_id, type, subject, payload)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[])
ON CONFLICT (subscription_id, position) DO NOTHING RETURNING id, subscription_id, subject, position
"""
# A replay sends again what was sent: the delivery starts over, unless a worker holds it now.
_REPLAY = f"""
INSERT INTO {DELIVERIES} (subscription_id, position, event_id, type, subject, payload)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[])
ON CONFLICT (subscription_id, position) DO UPDATE SET status = 'pending', attempts = 0, next_attempt_at = now(),
    last_status = NULL, last_error = NULL, delivered_at = NULL
WHERE {DELIVERIES}.status <> 'sending' RETURNING id
"""
_STRANDED = f"""
SELECT d.id, d.status FROM {DELIVERIES} d JOIN {SUBSCRIPTIONS} s ON s.id = d.subscription_id AND s.status = 'active'
WHERE ((d.status = 'pending' AND d.next_attempt_at < now() - make_interval(secs => $1))
       OR (d.status = 'sending' AND d.lease_until < now()))
  AND NOT EXISTS (SELECT 1 FROM {DELIVERIES} p WHERE p.subscription_id = d.subscription_id
                  AND p.subject = d.subject AND p.position < d.position AND p.status <> 'succeeded')
ORDER BY d.next_attempt_at LIMIT 1000
"""


def _wants(subscription: asyncpg.Record, row: FeedRow, *, replay: bool = False) -> bool:
    if not replay and row.position <= subscription["start_position"]:
        return False
    if subscription["types"] and row.type not in subscription["types"]:
        return False
    return subscription["organization"] is None or subscription["organization"] == row.organization


def _first_of_each_subject(created: list[asyncpg.Record]) -> list[asyncpg.Record]:
    """Of deliveries made in one transaction, the first per (subscription, subject): when it
    succeeds the agent goes on with the others, which it sees (they were committed with it).
    A later one's own message would only be refused while the first is under way."""
    first: dict[tuple[Any, str], asyncpg.Record] = {}
    for row in created:
        key = (row["subscription_id"], row["subject"])
        if key not in first or row["position"] < first[key]["position"]:
            first[key] = row
    return list(first.values())


def _columns(pairs: list[tuple[Any, FeedRow]]) -> list[list[Any]]:
    return [
        [s for s, _ in pairs], [r.position for _, r in pairs], [r.id for _, r in pairs],
        [r.type for _, r in pairs], [r.subject for _, r in pairs], [r.body for _, r in pairs],
    ]


class WebhookDispatcher:
    def __init__(self, pool: asyncpg.Pool, feed: EventFeed, enqueue: Enqueue, settings: WebhookSettings, *, batch_size: int = 1000) -> None:
        self.pool = pool
        self.feed = feed
        self.enqueue = enqueue
        self.settings = settings
        self.batch_size = batch_size
        # Dramatiq's send blocks until the broker confirms; a few threads keep the loop free and
        # confirm in parallel (the order of messages does not matter: the claim keeps the order).
        self._senders = 4
        self._sender = ThreadPoolExecutor(max_workers=self._senders, thread_name_prefix="webhook-enqueue")

    async def _send(self, pairs: list[tuple[int, float]]) -> None:
        if pairs:
            loop = asyncio.get_running_loop()
            chunks = [pairs[i::self._senders] for i in range(min(self._senders, len(pairs)))]
            await asyncio.gather(*(loop.run_in_executor(self._sender, self.enqueue, chunk) for chunk in chunks))

    async def run(self, stop: asyncio.Event, *, poll_seconds: float = 1.0) -> None:
        """Follow the feed until ``stop`` is set. A database or broker that is away is retried
        with backoff (what was committed is swept up later); anything unexpected escapes."""
        last_sweep = 0.0

        async def step() -> int:
            nonlocal last_sweep
            seen = await self.dispatch()
            seen += await self.replay()
            if time.monotonic() - last_sweep >= self.settings.sweep_seconds:
                last_sweep = time.monotonic()
                await self.sweep()
            return seen

        async def position() -> int:
            return int(await self.pool.fetchval(f"SELECT coalesce(max(position), 0) FROM {DISPATCH_TRACKING} WHERE name = $1", NAME))

        await follow_async(NAME, step, lambda: self.feed.notifier.waiter().wait(), stop, position=position,
                           tracking=DISPATCH_TRACKING, poll_seconds=poll_seconds, transient=broker_errors())

    def close(self) -> None:
        self._sender.shutdown(wait=True)

    async def dispatch(self) -> int:
        """Create the deliveries of every event after the tracking position; return how many
        events were looked at."""
        seen = 0
        while True:
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    position = await self._tracking(conn)
                    rows = await self.feed.rows(position, self.batch_size, conn=conn)
                    if not rows:
                        return seen
                    subscriptions = await conn.fetch(
                        f"SELECT id, types, organization, start_position FROM {SUBSCRIPTIONS} WHERE status = 'active'"
                    )
                    pairs = [(s["id"], row) for row in rows for s in subscriptions if _wants(s, row)]
                    created = await conn.fetch(_INSERT, *_columns(pairs)) if pairs else []
                    await conn.execute(f"UPDATE {DISPATCH_TRACKING} SET position = $1 WHERE name = $2", rows[-1].position, NAME)
            await self._send([(r["id"], 0.0) for r in _first_of_each_subject(created)])
            seen += len(rows)
            if len(rows) < self.batch_size:
                return seen

    async def _tracking(self, conn: asyncpg.Connection) -> int:
        # A new dispatcher starts where the oldest subscription starts (or at the feed's head):
        # there is nothing to deliver before that.
        await conn.execute(
            f"INSERT INTO {DISPATCH_TRACKING} (name, position) SELECT $1, coalesce("
            f"(SELECT min(start_position) FROM {SUBSCRIPTIONS}), (SELECT max(position) FROM {FEED_TABLE}), 0)"
            f" ON CONFLICT (name) DO NOTHING", NAME,
        )
        return int(await conn.fetchval(f"SELECT position FROM {DISPATCH_TRACKING} WHERE name = $1 FOR UPDATE", NAME))

    async def replay(self) -> int:
        """Carry out requested replays, a batch per transaction; return deliveries (re)started."""
        started = 0
        while True:
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    replay = await conn.fetchrow(
                        f"SELECT r.id, r.from_position, r.done_position, s.id AS subscription_id, s.types, s.organization,"
                        f" s.start_position FROM {REPLAYS} r JOIN {SUBSCRIPTIONS} s ON s.id = r.subscription_id"
                        f" WHERE r.done_at IS NULL ORDER BY r.id LIMIT 1 FOR UPDATE OF r SKIP LOCKED"
                    )
                    if replay is None:
                        return started
                    # Up to where the dispatcher has been; after that, it delivers them itself
                    # (the replay lowered the subscription's start to its from position).
                    until = await self._tracking(conn)
                    after = replay["from_position"] if replay["done_position"] is None else replay["done_position"]
                    rows = await self.feed.rows(after, self.batch_size, until=until, conn=conn)
                    pairs = [(replay["subscription_id"], row) for row in rows if _wants(replay, row, replay=True)]
                    restarted = await conn.fetch(_REPLAY, *_columns(pairs)) if pairs else []
                    finished = len(rows) < self.batch_size
                    await conn.execute(
                        f"UPDATE {REPLAYS} SET done_position = $2, done_at = CASE WHEN $3 THEN now() END WHERE id = $1",
                        replay["id"], rows[-1].position if rows else until, finished,
                    )
            await self._send([(r["id"], 0.0) for r in restarted])
            started += len(restarted)

    async def sweep(self) -> int:
        """Enqueue again the deliveries that are due and first of their subject but were not
        attempted for a while, and those whose worker's lease ran out."""
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                rows = await conn.fetch(_STRANDED, self.settings.stranded_after_seconds)
                pending = [r["id"] for r in rows if r["status"] == "pending"]
                if pending:
                    # So the next sweep does not send them again straight away.
                    await conn.execute(f"UPDATE {DELIVERIES} SET next_attempt_at = now() WHERE id = ANY($1::bigint[])", pending)
        if rows:
            log.info("re-sending %d stranded webhook deliveries", len(rows))
        await self._send([(r["id"], 0.0) for r in rows])
        return len(rows)
