"""Browser sessions in PostgreSQL: revocable, 12 h absolute and 30 min idle by default. The
cookie holds a random id; the table holds only its SHA-256, so a copy of the table signs no one in.

Who is signed in (the actor: a citizen's national ID, their ThaiD subject) is not kept in the
clear either: it is sealed (AES-256-GCM) with a key derived from the session id, which only the
cookie holds, so the table alone tells no one who signed in. A citizen's session also carries
the keyed blind index of their national ID (``subject_ref``, as ``subject_keys`` and the access
log do), so that erasing the person deletes their sessions (``delete_sessions_of``, run by the erasure in its own transaction).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime, timedelta
from typing import Any, Callable

import asyncpg
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from application.ports import BrowserSession, SessionStore
from domain.actors import Actor

SESSIONS_TABLE = "auth_sessions"
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
    # The actor sealed with the session's own key, and the person's blind index; a database made
    # before keeps no plain actor: its sessions are ended and their actors dropped.
    "ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS sealed_actor bytea",
    "ALTER TABLE auth_sessions ADD COLUMN IF NOT EXISTS subject_ref text",
    "ALTER TABLE auth_sessions ALTER COLUMN actor DROP NOT NULL",
    "UPDATE auth_sessions SET actor = NULL, revoked_at = coalesce(revoked_at, now()) WHERE actor IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS auth_sessions_subject ON auth_sessions (subject_ref) WHERE subject_ref IS NOT NULL",
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


def _actor_key(session_id: str) -> AESGCM:
    """The key that seals a session's actor: from the session id (in the cookie only), apart
    from its SHA-256 (in the table)."""
    return AESGCM(hashlib.sha256(b"onestop session actor key\0" + session_id.encode()).digest())


def seal_actor(session_id: str, actor: Actor) -> bytes:
    nonce = os.urandom(12)
    return nonce + _actor_key(session_id).encrypt(nonce, _actor_json(actor), _digest(session_id))


def open_actor(session_id: str, sealed: bytes) -> Actor | None:
    try:
        return _actor(_actor_key(session_id).decrypt(sealed[:12], sealed[12:], _digest(session_id)))
    except (InvalidTag, ValueError):
        return None


def _actor_json(actor: Actor) -> bytes:
    return orjson.dumps({"sub": actor.sub, "role": actor.role, "org": actor.org, "pid": actor.pid,
                         "issuer": actor.issuer, "ial": actor.ial})


def _actor(data: Any) -> Actor:
    fields = orjson.loads(data) if isinstance(data, (str, bytes)) else data
    return Actor(**{k: fields.get(k) for k in ("sub", "role", "org", "pid", "issuer", "ial")})


def subject_of(actor: Actor) -> str | None:
    """The national ID a citizen's session is about (None for staff)."""
    if actor.role != "citizen":
        return None
    for value in (actor.pid, actor.sub):
        if isinstance(value, str) and len(value) == 13 and value.isdigit():
            return value
    return None


class PostgresSessionStore(SessionStore):
    """``subject_index``: the keyed blind index of national IDs (``ONESTOP_BLIND_INDEX_KEY``)."""

    def __init__(self, pool: asyncpg.Pool, *, absolute: timedelta = timedelta(hours=12), idle: timedelta = timedelta(minutes=30),
                 subject_index: Callable[[str], str] | None = None) -> None:
        self.pool = pool
        self.absolute = absolute
        self.idle = idle
        self.subject_index = subject_index

    async def create(self, actor: Actor, now: datetime) -> tuple[str, BrowserSession]:
        session_id = secrets.token_urlsafe(32)
        session = BrowserSession(actor=actor, csrf_token=secrets.token_urlsafe(32), expires_at=now + self.absolute)
        national_id = subject_of(actor)
        subject_ref = self.subject_index(national_id) if national_id is not None and self.subject_index is not None else None
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO auth_sessions (id_hash, sealed_actor, subject_ref, csrf_token, created_at, last_seen_at, expires_at)"
                " VALUES ($1, $2, $3, $4, $5, $5, $6)",
                _digest(session_id), seal_actor(session_id, actor), subject_ref, session.csrf_token, now, session.expires_at,
            )
            # Sessions long over are of no use to anyone; dropping them keeps the table small.
            await conn.execute("DELETE FROM auth_sessions WHERE expires_at < $1", now - timedelta(days=1))
        return session_id, session

    async def get(self, session_id: str, now: datetime) -> BrowserSession | None:
        key = _digest(session_id)
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT sealed_actor, csrf_token, expires_at, last_seen_at FROM auth_sessions"
                " WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3",
                key, now, now - self.idle,
            )
            if row is None or row["sealed_actor"] is None:
                return None
            actor = open_actor(session_id, bytes(row["sealed_actor"]))
            if actor is None:
                return None
            if now - row["last_seen_at"] >= TOUCH_EVERY:
                await conn.execute("UPDATE auth_sessions SET last_seen_at = $2 WHERE id_hash = $1", key, now)
        return BrowserSession(actor=actor, csrf_token=row["csrf_token"], expires_at=row["expires_at"])

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


def delete_sessions_of(curs: Any, subject_ref: str) -> int:
    """End and delete every session of the person with this blind index (their erasure), in
    ``curs``'s transaction."""
    curs.execute(f"DELETE FROM {SESSIONS_TABLE} WHERE subject_ref = %s", (subject_ref,))
    return curs.rowcount  # type: ignore[no-any-return]
