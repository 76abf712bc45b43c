"""Which database a stack works on, as a short marker: the jobs queue's default name comes from
it, and every job message carries it, so that two stacks on one broker never run each other's
jobs (a worker dead-letters a message marked for another database)."""

from __future__ import annotations

import hashlib

from typing import Any

import psycopg

QUEUE_PREFIX = "onestop-jobs-"


def database_marker(settings: Any) -> str:  # onestop.settings.Settings
    """The first 8 hex digits of sha256(the cluster's system identifier, the database's name)."""
    db = settings.database
    with psycopg.connect(db.conninfo(), autocommit=True, connect_timeout=10) as conn:
        try:
            cluster = str(conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0])
        except psycopg.Error:  # not allowed to read it: the server's address stands in
            conn.rollback()
            cluster = f"{db.host}:{db.port}"
        name = conn.execute("SELECT current_database()").fetchone()[0]
    return hashlib.sha256(f"{cluster}\n{name}".encode()).hexdigest()[:8]


def jobs_queue(settings: Any, marker: str) -> str:  # onestop.settings.Settings
    """ONESTOP_JOBS_QUEUE when set, else ``onestop-jobs-<marker>``."""
    return settings.jobs_queue or QUEUE_PREFIX + marker
