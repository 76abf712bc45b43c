"""Browser sessions in PostgreSQL: revocable, 12 h absolute and 30 min idle by default. The
cookie holds a random id; the table holds only its SHA-256, so a copy of the table signs no one in."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from application.ports import BrowserSession, SessionStore
from domain.actors import Actor

SCHEMA_STATEMENTS = [
    """CREATE TABLE IF NOT EXISTS auth_sessions (
        id_hash bytea PRIMARY KEY,
        actor jsonb NOT NULL,
        csrf_token text NOT NULL,
        created_at timestamptz NOT NULL,
        last_seen_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz
    )""",
    "CREATE INDEX IF NOT EXISTS auth_sessions_expires ON auth_sessions (expires_at)",
    """CREATE TABLE IF NOT EXISTS auth_pending_sign_ins (
        state_hash bytea PRIMARY KEY,
        pending jsonb NOT NULL,
        created_at timestamptz NOT NULL
    )""",
]
# The idle clock is written at most this often, so a busy page does not write on every call.
TOUCH_EVERY = timedelta(seconds=60)
PENDING_FOR = timedelta(minutes=10)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _actor_json(actor: Actor) -> bytes:
    return orjson.dumps({"sub": actor.sub, "role": actor.role, "org": actor.org, "pid": actor.pid,
                         "issuer": actor.issuer, "ial": actor.ial})


def _actor(data: Any) -> Actor:
    fields = orjson.loads(data) if isinstance(data, (str, bytes)) else data
    return Actor(**{k: fields.get(k) for k in ("sub", "role", "org", "pid", "issuer", "ial")})


class PostgresSessionStore(SessionStore):
    def __init__(self, pool: asyncpg.Pool, *, absolute: timedelta = timedelta(hours=12), idle: timedelta = timedelta(minutes=30)) -> None:
        self.pool = pool
        self.absolute = absolute
        self.idle = idle

    async def create(self, actor: Actor, now: datetime) -> tuple[str, BrowserSession]:
        session_id = secrets.token_urlsafe(32)
        session = BrowserSession(actor=actor, csrf_token=secrets.token_urlsafe(32), expires_at=now + self.absolute)
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO auth_sessions (id_hash, actor, csrf_token, created_at, last_seen_at, expires_at)"
                " VALUES ($1, $2::jsonb, $3, $4, $4, $5)",
                _digest(session_id), _actor_json(actor).decode(), session.csrf_token, now, session.expires_at,
            )
            # Sessions long over are of no use to anyone; dropping them keeps the table small.
            await conn.execute("DELETE FROM auth_sessions WHERE expires_at < $1", now - timedelta(days=1))
        return session_id, session

    async def get(self, session_id: str, now: datetime) -> BrowserSession | None:
        key = _digest(session_id)
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT actor, csrf_token, expires_at, last_seen_at FROM auth_sessions"
                " WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3",
                key, now, now - self.idle,
            )
            if row is None:
                return None
            if now - row["last_seen_at"] >= TOUCH_EVERY:
                await conn.execute("UPDATE auth_sessions SET last_seen_at = $2 WHERE id_hash = $1", key, now)
        return BrowserSession(actor=_actor(row["actor"]), csrf_token=row["csrf_token"], expires_at=row["expires_at"])

    async def revoke(self, session_id: str, now: datetime) -> bool:
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                "UPDATE auth_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL", _digest(session_id), now)
        return status.endswith(" 1")

    async def begin_sign_in(self, state: str, pending: dict[str, Any], now: datetime) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute("INSERT INTO auth_pending_sign_ins (state_hash, pending, created_at) VALUES ($1, $2::jsonb, $3)",
                               _digest(state), orjson.dumps(pending).decode(), now)
            await conn.execute("DELETE FROM auth_pending_sign_ins WHERE created_at < $1", now - PENDING_FOR)

    async def finish_sign_in(self, state: str, now: datetime) -> dict[str, Any] | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow("DELETE FROM auth_pending_sign_ins WHERE state_hash = $1 RETURNING pending, created_at", _digest(state))
        if row is None or now - row["created_at"] > PENDING_FOR:
            return None
        pending = row["pending"]
        return orjson.loads(pending) if isinstance(pending, (str, bytes)) else dict(pending)
