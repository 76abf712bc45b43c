"""Events a view could not apply, set aside so that the view goes on with the rest.

A projection that cannot apply a stored event (a bug in the fold, an event written by an older
or newer program that lacks a field) records it here, in the same transaction as the batch that
skipped it, and never retries it by itself: one bad event must not halt every view. Operators
see the count in health and metrics, fix the cause, and run ``onestop projector --retry-failed``,
which applies the set-aside events again and removes the rows of those that now apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

FAILURES_TABLE = "projection_failures"

SCHEMA_STATEMENTS = [
    f"""CREATE TABLE IF NOT EXISTS {FAILURES_TABLE} (
        view text NOT NULL, position bigint NOT NULL, topic text NOT NULL, error text NOT NULL,
        failed_at timestamptz NOT NULL DEFAULT now(), retried_at timestamptz,
        PRIMARY KEY (view, position))""",
]

COUNT_SQL = f"SELECT count(*) FROM {FAILURES_TABLE}"


@dataclass(frozen=True)
class SetAside:
    view: str
    position: int
    topic: str
    error: str
    failed_at: datetime | None = None
    retried_at: datetime | None = None

    def describe(self) -> str:
        retried = f", last retried {self.retried_at:%Y-%m-%d %H:%M:%S}" if self.retried_at else ""
        return f"{self.view} position {self.position} ({self.topic}): {self.error}{retried}"


def describe_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


def record(curs: Any, view: str, position: int, topic: str, error: BaseException) -> None:
    """Set one event aside (psycopg cursor, inside the batch's transaction)."""
    curs.execute(
        f"INSERT INTO {FAILURES_TABLE} (view, position, topic, error) VALUES (%s, %s, %s, %s)"
        f" ON CONFLICT (view, position) DO UPDATE SET error = EXCLUDED.error, retried_at = now()",
        (view, position, topic, describe_error(error)),
    )


def set_aside(curs: Any, view: str | None = None) -> list[SetAside]:
    """The set-aside events, in log order (psycopg cursor with dict rows)."""
    where, args = ("WHERE view = %s", (view,)) if view else ("", ())
    curs.execute(f"SELECT view, position, topic, error, failed_at, retried_at FROM {FAILURES_TABLE} {where} ORDER BY view, position", args)
    return [SetAside(**row) for row in curs.fetchall()]


def count_projection_failures(conn: Any) -> int:
    """How many events are set aside, for health and metrics. ``conn`` is a psycopg connection;
    for asyncpg use ``await count_projection_failures_async(conn)``."""
    row = conn.execute(COUNT_SQL).fetchone()
    return int(row[0] if not isinstance(row, dict) else row["count"])


async def count_projection_failures_async(conn: Any) -> int:
    """``count_projection_failures`` on an asyncpg connection or pool."""
    return int(await conn.fetchval(COUNT_SQL))
