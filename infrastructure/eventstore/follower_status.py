"""Where each follower of the log stands, read from PostgreSQL: its tracking position, how many
events wait for it, whether a process holds its election lock, and whether it is moving.

The followers write their positions in their own tables (in the transaction that does their
work), and the elected ones hold a session advisory lock, which `pg_locks` shows; so any API
process can tell, without asking the followers, who is running and who is behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import asyncpg

from infrastructure.audit.audit_chain import HEAD_TABLE as CHAIN_HEAD_TABLE
from infrastructure.jobs.dispatcher import ADVISORY_LOCK_KEY as DISPATCHER_LOCK, TOPICS as DISPATCHED_TOPICS, TRACKING_NAME as DISPATCHER_NAME, TRACKING_TABLE as DISPATCHER_TRACKING
from infrastructure.integrations.event_feed import FEED_TABLE, POSITION_SQL as FEED_POSITION_SQL
from infrastructure.views.projector import ADVISORY_LOCK_KEY as PROJECTOR_LOCK
from infrastructure.views.recorder import TRACKING_TABLE as VIEWS_TRACKING, VIEWS_NAME
from infrastructure.eventstore.event_log import EVENTS_TABLE
from infrastructure.eventstore.following import standby_name
from infrastructure.integrations.webhook_dispatcher import NAME as WEBHOOKS_NAME
from infrastructure.integrations.subscriptions import DISPATCH_TRACKING as WEBHOOKS_TRACKING

FAILURES_TABLE = "projection_failures"
# Counting waiting events stops here: past it, "very far behind" is all that matters.
LAG_CAP = 1_000_000

_EVENTS_AFTER = f"SELECT count(*) FROM (SELECT 1 FROM {EVENTS_TABLE} WHERE notification_id > $1 LIMIT {LAG_CAP}) w"


@dataclass(frozen=True)
class Follower:
    name: str
    position_sql: str
    lag_sql: str
    lag_args: tuple[Any, ...] = ()
    # The advisory lock that elects it (the feed and the chain run in the elected projector);
    # None when it has none (the webhook dispatcher takes turns by row lock).
    lock_key: int | None = None
    # The follow-the-log loop that holds that lock (its sessions' application_name says whether
    # they run or stand by).
    elected_as: str | None = None


FOLLOWERS = (
    Follower("projector", f"SELECT notification_id FROM {VIEWS_TRACKING} WHERE application_name = '{VIEWS_NAME}'", _EVENTS_AFTER,
             lock_key=PROJECTOR_LOCK, elected_as="projector"),
    # The dispatcher reads only the events that may need outside work, and its position moves
    # only with them: what waits for it is those events.
    Follower("dispatcher", f"SELECT notification_id FROM {DISPATCHER_TRACKING} WHERE application_name = '{DISPATCHER_NAME}'",
             f"SELECT count(*) FROM (SELECT 1 FROM {EVENTS_TABLE} WHERE notification_id > $1 AND topic = ANY($2::text[]) LIMIT {LAG_CAP}) w",
             (list(DISPATCHED_TOPICS),), lock_key=DISPATCHER_LOCK, elected_as="dispatcher"),
    Follower("feed", FEED_POSITION_SQL, _EVENTS_AFTER, lock_key=PROJECTOR_LOCK, elected_as="projector"),
    Follower("audit_chain", f"SELECT position FROM {CHAIN_HEAD_TABLE}", _EVENTS_AFTER, lock_key=PROJECTOR_LOCK, elected_as="projector"),
    Follower("webhook_dispatcher", f"SELECT position FROM {WEBHOOKS_TRACKING} WHERE name = '{WEBHOOKS_NAME}'",
             f"SELECT count(*) FROM (SELECT 1 FROM {FEED_TABLE} WHERE position > $1 LIMIT {LAG_CAP}) w"),
)


@dataclass
class _Progress:
    """The last time a follower's lag shrank: its lag then, and the log head then."""

    lag: int
    head: int
    shrunk_at: float  # monotonic
    progressed_at: datetime  # wall clock, for last_progress_at


class FollowerWatch:
    """Reads the followers' state and remembers, between reads, when each last moved: a follower
    with events waiting whose position has not moved for ``stall_seconds`` is stalled."""

    def __init__(self, pool: asyncpg.Pool, *, stall_seconds: float = 30.0) -> None:
        self.pool = pool
        self.stall_seconds = stall_seconds
        self._progress: dict[str, _Progress] = {}

    async def read(self) -> dict[str, Any]:
        """``{"log_position", "followers": {name: {state, position, lag, last_progress_at}},
        "projection_failures": {"count", "views": {view: count}}}``."""
        async with self.pool.acquire() as conn:
            log_position = int(await conn.fetchval(f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}"))
            # A bigint key of pg_try_advisory_lock shows as classid (high half), objid (low half).
            rows = await conn.fetch(
                "SELECT (classid::bigint << 32) | objid::bigint AS key FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
            held = {int(row["key"]) for row in rows}
            standing_by = {row["application_name"]: int(row["n"]) for row in await conn.fetch(
                "SELECT application_name, count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name LIKE 'onestop-%-standby' GROUP BY 1")}
            followers = {}
            for follower in FOLLOWERS:
                position = int(await conn.fetchval(follower.position_sql) or 0)
                lag = int(await conn.fetchval(follower.lag_sql, position, *follower.lag_args))
                standby = standing_by.get(standby_name(follower.elected_as), 0) if follower.elected_as else 0
                followers[follower.name] = self._state(follower, position, lag, log_position, held, standby)
            failures = await _failures(conn)
        return {"log_position": log_position, "followers": followers, "projection_failures": failures}

    def _state(self, follower: Follower, position: int, lag: int, head: int, held: set[int], standby: int) -> dict[str, Any]:
        """running, standby (nobody holds the election lock, a copy waiting for it is about to),
        down (nobody holds it and nobody waits), or stalled: events wait and the lag has not
        shrunk for ``stall_seconds``. The lag counts as shrunk when it is smaller than it was, or
        when the follower has passed what was the log head then (a busy log may keep a lag
        that is steady but always new)."""
        now = time.monotonic()
        seen = self._progress.get(follower.name)
        if seen is None or lag == 0 or lag < seen.lag or position >= seen.head:
            seen = self._progress[follower.name] = _Progress(lag, head, now, datetime.now(timezone.utc))
        if follower.lock_key is not None and follower.lock_key not in held:
            state = "standby" if standby else "down"
        elif lag > 0 and now - seen.shrunk_at >= self.stall_seconds:
            state = "stalled"
        else:
            state = "running"
        result = {"state": state, "position": position, "lag": lag, "last_progress_at": seen.progressed_at}
        if follower.elected_as is not None:
            result["standby"] = standby  # copies waiting to take over
        return result


async def _failures(conn: asyncpg.Connection) -> dict[str, Any]:
    """Events the views set aside (the ``projection_failures`` table, where it exists)."""
    if await conn.fetchval("SELECT to_regclass($1)", FAILURES_TABLE) is None:
        return {"count": 0, "views": {}}
    try:
        rows = await conn.fetch(f"SELECT view::text AS view, count(*) AS n FROM {FAILURES_TABLE} GROUP BY 1 ORDER BY 1")
    except asyncpg.PostgresError:  # another shape than (view, position, error): count the rows
        return {"count": int(await conn.fetchval(f"SELECT count(*) FROM {FAILURES_TABLE}")), "views": {}}
    views = {row["view"]: int(row["n"]) for row in rows}
    return {"count": sum(views.values()), "views": views}
