"""Request references from a PostgreSQL sequence: unique, short, and readable over a counter."""

from __future__ import annotations

from datetime import datetime

from eventsourcing.postgres import PostgresDatastore

from application.ports import ReferenceIssuer

SEQUENCE = "onestop_reference_seq"
CREATE_SEQUENCE = f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}"


def format_reference(number: int, at: datetime) -> str:
    """``OS69-0000042``: "OS", the Buddhist Era year's last two digits, a sequence number."""
    return f"OS{(at.year + 543) % 100:02d}-{number:07d}"


class PostgresReferenceIssuer(ReferenceIssuer):
    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    def issue(self, count: int, at: datetime) -> list[str]:
        if count <= 0:
            return []
        with self.datastore.get_connection() as conn:
            rows = conn.execute(f"SELECT nextval('{SEQUENCE}') AS n FROM generate_series(1, %s)", (count,)).fetchall()
        return [format_reference(row["n"], at) for row in rows]
