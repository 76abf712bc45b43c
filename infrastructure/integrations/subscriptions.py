"""Webhook subscriptions in PostgreSQL: the tables, and the store the API reads and writes.

``webhook_subscriptions`` holds what an integrator asked for; ``webhook_deliveries`` one row per
(subscription, event) with the exact bytes to send; ``webhook_attempts`` every attempt;
``webhook_replays`` the replays asked for; ``webhook_dispatch`` the dispatcher's position.
"""

from __future__ import annotations

import uuid
from typing import Any, Mapping

import asyncpg

from application.errors import IdempotencyKeyReused
from infrastructure.integrations.signing import new_secret
from infrastructure.json_codec import loads
from infrastructure.secret_box import SecretBox, webhook_secret_row

SUBSCRIPTIONS = "webhook_subscriptions"
DELIVERIES = "webhook_deliveries"
ATTEMPTS = "webhook_attempts"
REPLAYS = "webhook_replays"
DISPATCH_TRACKING = "webhook_dispatch"

SCHEMA_STATEMENTS = [
    f"""CREATE TABLE IF NOT EXISTS {SUBSCRIPTIONS} (
        id uuid PRIMARY KEY, owner text NOT NULL, url text NOT NULL,
        types text[] NOT NULL DEFAULT '{{}}', organization text, secret text NOT NULL,
        status text NOT NULL DEFAULT 'active', disabled_reason text,
        start_position bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
        idempotency_key text NOT NULL, request_hash text NOT NULL, UNIQUE (owner, idempotency_key))""",
    f"""CREATE TABLE IF NOT EXISTS {DELIVERIES} (
        id bigserial PRIMARY KEY,
        subscription_id uuid NOT NULL REFERENCES {SUBSCRIPTIONS} (id) ON DELETE CASCADE,
        position bigint NOT NULL, event_id text NOT NULL, type text NOT NULL, subject text NOT NULL,
        payload bytea NOT NULL, status text NOT NULL DEFAULT 'pending', attempts int NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(), lease uuid, lease_until timestamptz,
        last_status int, last_error text, created_at timestamptz NOT NULL DEFAULT now(),
        delivered_at timestamptz, UNIQUE (subscription_id, position))""",
    f"CREATE INDEX IF NOT EXISTS {DELIVERIES}_chain ON {DELIVERIES} (subscription_id, subject, position)",
    f"CREATE INDEX IF NOT EXISTS {DELIVERIES}_due ON {DELIVERIES} (next_attempt_at) WHERE status IN ('pending', 'sending')",
    f"""CREATE TABLE IF NOT EXISTS {ATTEMPTS} (
        delivery_id bigint NOT NULL REFERENCES {DELIVERIES} (id) ON DELETE CASCADE, attempt int NOT NULL,
        at timestamptz NOT NULL DEFAULT now(), status int, error text, duration_ms int,
        PRIMARY KEY (delivery_id, attempt))""",
    f"""CREATE TABLE IF NOT EXISTS {REPLAYS} (
        id bigserial PRIMARY KEY, subscription_id uuid NOT NULL REFERENCES {SUBSCRIPTIONS} (id) ON DELETE CASCADE,
        from_position bigint NOT NULL, done_position bigint, requested_by text NOT NULL,
        requested_at timestamptz NOT NULL DEFAULT now(), done_at timestamptz)""",
    f"CREATE TABLE IF NOT EXISTS {DISPATCH_TRACKING} (name text PRIMARY KEY, position bigint NOT NULL)",
]


_PUBLIC_COLUMNS = "id::text AS id, url, types, organization, status, disabled_reason, created_at, start_position"


def _subscription(row: Mapping[str, Any]) -> dict[str, Any]:
    document = {k: row[k] for k in ("id", "url", "types", "organization", "status", "disabled_reason", "created_at")}
    document["types"] = list(document["types"])
    return document


class SubscriptionStore:
    """Subscriptions and their deliveries, for the API (asyncpg). An integrator sees only the
    subscriptions it made (``owner`` is its token's subject); an admin passes ``owner=None``.
    Signing secrets are stored encrypted with ``box``."""

    def __init__(self, pool: asyncpg.Pool, box: SecretBox) -> None:
        self.pool = pool
        self.box = box

    async def create(self, *, owner: str, url: str, types: list[str], organization: str | None, idempotency_key: str, request_hash: str) -> tuple[dict[str, Any], bool]:
        """The new subscription with its secret, and whether this replays an earlier create."""
        subscription_id = uuid.uuid4()
        secret = self.box.seal(new_secret(), webhook_secret_row(subscription_id))
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"INSERT INTO {SUBSCRIPTIONS} (id, owner, url, types, organization, secret, start_position, idempotency_key, request_hash)"
                f" VALUES ($1, $2, $3, $4, $5, $6, (SELECT coalesce(max(notification_id), 0) FROM onestop_events), $7, $8)"
                f" ON CONFLICT (owner, idempotency_key) DO NOTHING RETURNING {_PUBLIC_COLUMNS}, secret",
                subscription_id, owner, url, types, organization, secret, idempotency_key, request_hash,
            )
            replayed = row is None
            if row is None:
                row = await conn.fetchrow(
                    f"SELECT {_PUBLIC_COLUMNS}, secret, request_hash FROM {SUBSCRIPTIONS} WHERE owner = $1 AND idempotency_key = $2",
                    owner, idempotency_key,
                )
                if row is None:
                    raise IdempotencyKeyReused("the subscription made with this Idempotency-Key was deleted")
                if row["request_hash"] != request_hash:
                    raise IdempotencyKeyReused("this Idempotency-Key was used with a different body")
        return {**_subscription(row), "secret": self.box.open(row["secret"], webhook_secret_row(row["id"]))}, replayed

    async def list(self, owner: str | None, limit: int, after: str | None) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            f"SELECT {_PUBLIC_COLUMNS} FROM {SUBSCRIPTIONS} WHERE ($1::text IS NULL OR owner = $1)"
            f" AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3",
            owner, after, limit,
        )
        return [_subscription(row) for row in rows]

    async def get(self, subscription_id: str, owner: str | None) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            f"SELECT {_PUBLIC_COLUMNS} FROM {SUBSCRIPTIONS} WHERE id = $1::uuid AND ($2::text IS NULL OR owner = $2)",
            subscription_id, owner,
        )
        if row is None:
            return None
        counts = await self.pool.fetch(f"SELECT status, count(*) AS n FROM {DELIVERIES} WHERE subscription_id = $1::uuid GROUP BY status", subscription_id)
        return {**_subscription(row), "deliveries": {r["status"]: r["n"] for r in counts}}

    async def delete(self, subscription_id: str, owner: str | None) -> bool:
        result = await self.pool.execute(
            f"DELETE FROM {SUBSCRIPTIONS} WHERE id = $1::uuid AND ($2::text IS NULL OR owner = $2)", subscription_id, owner,
        )
        return result.endswith(" 1")

    async def deliveries(self, subscription_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Deliveries in log order after position ``after``, each with its attempts."""
        rows = await self.pool.fetch(
            f"SELECT d.id, d.position, d.event_id, d.type, d.subject, d.status, d.next_attempt_at,"
            f" d.last_status, d.last_error, d.created_at, d.delivered_at,"
            f" coalesce((SELECT json_agg(json_build_object('attempt', a.attempt, 'at', a.at, 'status', a.status,"
            f"   'error', a.error, 'duration_ms', a.duration_ms) ORDER BY a.attempt)"
            f"   FROM {ATTEMPTS} a WHERE a.delivery_id = d.id), '[]')::text AS attempts"
            f" FROM {DELIVERIES} d WHERE d.subscription_id = $1::uuid AND d.position > $2 ORDER BY d.position LIMIT $3",
            subscription_id, after, limit,
        )
        return [{**dict(row), "attempts": loads(row["attempts"])} for row in rows]

    async def replay(self, subscription_id: str, owner: str | None, from_position: int, requested_by: str) -> dict[str, Any] | None:
        """Ask the dispatcher to send again every matching event after ``from_position``; a
        disabled subscription becomes active again."""
        async with self.pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                f"UPDATE {SUBSCRIPTIONS} SET status = 'active', disabled_reason = NULL, start_position = least(start_position, $3)"
                f" WHERE id = $1::uuid AND ($2::text IS NULL OR owner = $2) RETURNING id", subscription_id, owner, from_position,
            )
            if found is None:
                return None
            row = await conn.fetchrow(
                f"INSERT INTO {REPLAYS} (subscription_id, from_position, requested_by) VALUES ($1::uuid, $2, $3)"
                f" RETURNING id, from_position, requested_at", subscription_id, from_position, requested_by,
            )
        return dict(row)
