"""The connection budget: how many PostgreSQL connections each process may open, all derived
from one setting (ONESTOP_POOL_SIZE, the API's pools), so that `onestop run` at the defaults
stays within 20 and a server too small for the configured budget is refused at start."""

from __future__ import annotations

import psycopg

from onestop.settings import Settings, SettingsError


def worker_pool(settings: Settings) -> int:
    """A worker's event store pool, and the webhook deliveries' pool: the jobs mostly wait on
    outside systems, so half the API's will do."""
    return max(2, settings.pool_size // 2)


def process_budget(settings: Settings, process: str) -> dict[str, int]:
    """The most connections each pool of ``process`` opens (pools start with one and grow)."""
    p = settings.pool_size
    if process == "api":
        return {"commands (event store)": p, "reads (views)": p, "views and feed listeners": 2}
    if process == "projector":
        # Catch-up, the feed and the chain run one after another on one connection.
        return {"event store and views": 1, "election lock and LISTEN": 1}
    if process == "dispatcher":
        return {"event store (dispatcher and sweeper)": 2, "election locks (dispatcher, sweeper)": 2}
    if process == "worker":
        return {"event store": worker_pool(settings), "webhook deliveries": worker_pool(settings)}
    if process == "jobs":
        # Dispatcher, sweeper and worker in one process share one event store pool.
        return {"event store (shared)": worker_pool(settings), "election locks (dispatcher, sweeper)": 2}
    if process == "webhooks":
        deliveries = worker_pool(settings) if settings.broker_url is None else 0
        return {"dispatcher": 1, "feed listener": 1, "webhook deliveries (in-process)": deliveries}
    raise SettingsError(f"unknown process {process!r}")


def run_processes(settings: Settings) -> list[str]:
    """The processes `onestop run` starts that use PostgreSQL."""
    outside = ["jobs"] if settings.broker_url is None else ["dispatcher", "worker"]
    return ["api", "projector", *outside, "webhooks"]


def run_budget(settings: Settings) -> dict[str, int]:
    """Connections per process of `onestop run` (the largest each may open)."""
    return {name: sum(process_budget(settings, name).values()) for name in run_processes(settings)}


def check_server(settings: Settings, need: int, what: str) -> None:
    """Refuse (SettingsError, with what to change) when the server cannot give ``need``
    connections at all: ``max_connections`` less those reserved for superusers."""
    with psycopg.connect(settings.database.conninfo(), autocommit=True, connect_timeout=10) as conn:
        max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
        reserved = int(conn.execute("SHOW superuser_reserved_connections").fetchone()[0])
    available = max_connections - reserved
    if available < need:
        raise SettingsError(
            f"{what} needs up to {need} PostgreSQL connections at ONESTOP_POOL_SIZE={settings.pool_size}, but the server allows"
            f" {available} (max_connections {max_connections} less {reserved} reserved for superusers): raise max_connections"
            f" or lower ONESTOP_POOL_SIZE"
        )
