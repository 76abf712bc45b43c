"""Live-stream tickets in PostgreSQL, so that any API process can redeem a ticket another issued.

A ticket is 32 random bytes (256 bits), given to the client once. Only its SHA-256 is stored: a
slow hash would add nothing, since a 256-bit random value cannot be guessed, and a copy of the
table gives nobody a usable ticket. Redeeming deletes the row in the same statement that reads
it, so two requests with one ticket cannot both succeed. Expiry is the database's clock, which
every API process shares.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from datetime import datetime

import asyncpg
import orjson

from domain.actors import Actor

TICKETS_TABLE = "stream_tickets"

SCHEMA_STATEMENTS = [
    f"""CREATE TABLE IF NOT EXISTS {TICKETS_TABLE} (
        ticket_hash bytea PRIMARY KEY, actor text NOT NULL,
        issued_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL)""",
    f"CREATE INDEX IF NOT EXISTS {TICKETS_TABLE}_expires ON {TICKETS_TABLE} (expires_at)",
]

_ISSUE = (
    f"INSERT INTO {TICKETS_TABLE} (ticket_hash, actor, expires_at)"
    f" VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING expires_at"
)
_REDEEM = f"DELETE FROM {TICKETS_TABLE} WHERE ticket_hash = $1 RETURNING actor, expires_at > now() AS fresh"
# Tickets nobody redeemed; a few at a time, as tickets are issued, so the table stays small.
_SWEEP = (
    f"DELETE FROM {TICKETS_TABLE} WHERE ticket_hash IN"
    f" (SELECT ticket_hash FROM {TICKETS_TABLE} WHERE expires_at < now() LIMIT 100)"
)


def _digest(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode()).digest()


class PostgresStreamTickets:
    """``application.ports.StreamTickets`` on an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def issue(self, actor: Actor, ttl_seconds: float) -> tuple[str, datetime]:
        ticket = secrets.token_urlsafe(32)
        async with self.pool.acquire() as conn:
            await conn.execute(_SWEEP)
            expires_at = await conn.fetchval(_ISSUE, _digest(ticket), orjson.dumps(dataclasses.asdict(actor)).decode(), float(ttl_seconds))
        return ticket, expires_at

    async def redeem(self, ticket: str) -> Actor | None:
        if not ticket or len(ticket) > 200:
            return None
        row = await self.pool.fetchrow(_REDEEM, _digest(ticket))
        if row is None or not row["fresh"]:
            return None
        fields = orjson.loads(row["actor"])
        # Fields an older or newer Actor does not have are left out, not guessed.
        known = {f.name for f in dataclasses.fields(Actor)}
        return Actor(**{name: value for name, value in fields.items() if name in known})
