"""Request references from a PostgreSQL sequence: unique, short, and readable over a counter."""

from __future__ import annotations

import threading
from datetime import datetime

from eventsourcing.postgres import PostgresDatastore

from application.ports import ReferenceIssuer
from domain.calendar import buddhist_era_year

SEQUENCE = "onestop_reference_seq"
CREATE_SEQUENCE = f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}"


def format_reference(number: int, at: datetime) -> str:
    """``OS690000042``: "OS", the Buddhist Era year's last two digits, a sequence number.

    Only ``[0-9A-Z]`` and at most 20 characters, because the reference is the bill-payment Ref1
    and bank apps refuse anything else. References issued before this rule (``OS69-0000042``)
    stay in the log as they were; :func:`domain.promptpay.bank_reference` makes them bank-safe."""
    return f"OS{buddhist_era_year(at.year) % 100:02d}{number:07d}"


class PostgresReferenceIssuer(ReferenceIssuer):
    """Takes numbers from the sequence a block at a time, so most submissions need no round
    trip for their reference. Numbers left in a block when the process stops are never issued:
    references have gaps, like the log's positions, and are still unique."""

    def __init__(self, datastore: PostgresDatastore, *, block: int = 64) -> None:
        self.datastore = datastore
        self.block = block
        self._numbers: list[int] = []
        self._lock = threading.Lock()

    def issue(self, count: int, at: datetime) -> list[str]:
        if count <= 0:
            return []
        with self._lock:
            if len(self._numbers) < count:
                wanted = max(count - len(self._numbers), self.block)
                with self.datastore.get_connection() as conn:
                    rows = conn.execute(f"SELECT nextval('{SEQUENCE}') AS n FROM generate_series(1, %s)", (wanted,)).fetchall()
                self._numbers.extend(row["n"] for row in rows)
            numbers, self._numbers = self._numbers[:count], self._numbers[count:]
        return [format_reference(n, at) for n in numbers]
