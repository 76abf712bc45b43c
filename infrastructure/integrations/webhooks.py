"""Webhooks: subscriptions, their deliveries, and one signed delivery attempt.

State lives in PostgreSQL. ``webhook_subscriptions`` holds what an integrator asked for;
``webhook_deliveries`` holds one row per (subscription, event) with the exact bytes to send;
``webhook_attempts`` records every attempt. The dispatcher (infrastructure.integrations.webhook_dispatcher)
creates deliveries from the published feed; a Dramatiq actor (workers.webhooks) runs
``DeliveryAgent.deliver`` for one delivery id at a time.

Ordering and loss: per subscription and subject, a delivery is only *claimed* when every
earlier delivery of the same subject has succeeded; the claim is one UPDATE, so two workers can
never send one subject out of order. After a success the agent sends the subject's next
delivery straight away (a few in a row, then it enqueues the next). A failure is retried on the schedule, and when the schedule runs out the delivery is
``failed`` and its subject waits (nothing later overtakes it) until the integrator replays.
Messages lost between a commit and the broker are found again by the dispatcher's sweep.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import socket
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import yarl

from application.errors import IdempotencyKeyReused
from infrastructure.json_codec import loads
from infrastructure.errors import InfrastructureError
from infrastructure.secret_box import SecretBox, SecretUnreadable, webhook_secret_row

SUBSCRIPTIONS = "webhook_subscriptions"
DELIVERIES = "webhook_deliveries"
ATTEMPTS = "webhook_attempts"
REPLAYS = "webhook_replays"
DISPATCH_TRACKING = "webhook_dispatch"

# Seconds before each attempt: 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h (about 3 days).
DEFAULT_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)
SIGNATURE_VERSION = "v1"

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


@dataclass(frozen=True)
class WebhookSettings:
    """How webhooks are delivered. Read once, in the composition root."""

    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    timeout_seconds: float = 10.0
    allow_private: bool = False
    # The dispatcher sends again a due delivery that nobody attempted for this long (a message
    # lost between a commit and the broker, or a worker that died holding it).
    stranded_after_seconds: float = 60.0
    sweep_seconds: float = 5.0
    # Decrypts the stored signing secrets (ONESTOP_SECRETS_KEY).
    secrets_key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Any) -> WebhookSettings:  # onestop.settings.Settings
        """Raises SettingsError when ONESTOP_SECRETS_KEY is not set."""
        return cls(
            secrets_key=settings.require_secrets_key(),
            schedule=settings.webhook_schedule,
            timeout_seconds=settings.webhook_timeout_seconds,
            allow_private=settings.webhooks_allow_private,
            stranded_after_seconds=settings.webhook_stranded_seconds,
            sweep_seconds=settings.webhook_sweep_seconds,
        )


async def _no_reset(_conn: asyncpg.Connection) -> None:
    return None


async def create_pool(dsn: str, *, max_size: int) -> asyncpg.Pool:
    """A pool for the dispatcher and the delivery agent. Their connections keep no session state
    (no LISTEN, advisory lock, cursor or SET), so the reset query asyncpg runs on every release,
    a round trip a delivery, is skipped."""
    return await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, reset=_no_reset)


# -- signing -----------------------------------------------------------------------------------


def new_secret() -> str:
    """A signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (Standard Webhooks, v1: HMAC-SHA256 of
    ``id.timestamp.body`` keyed with the base64-decoded part of the secret after ``whsec_``)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return f"{SIGNATURE_VERSION}," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


# -- where deliveries may go -------------------------------------------------------------------

# IPv6 ranges that carry an IPv4 address in their last 32 bits, or translate to one: NAT64
# (64:ff9b::/96, RFC 6052), IPv4-compatible (::/96, deprecated), SIIT (::ffff:0:0:0/96) and
# IPv4-mapped (::ffff:0:0/96). An address in one of them is as public as the IPv4 it names;
# Python calls most of them global whatever they embed.
_EMBEDS_IPV4_LOW32 = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96", "::ffff:0:0/96"))
# Ranges refused whatever follows: local-use NAT64 (RFC 8215, where the IPv4 sits at a
# prefix-dependent place) and the deprecated site-local fec0::/10.
_REFUSED_IPV6 = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b:1::/48", "fec0::/10"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.sixtofour is not None:  # 2002::/16, 6to4
        return ip.sixtofour
    if any(ip in network for network in _EMBEDS_IPV4_LOW32):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address. An IPv6 address that embeds or translates
    to an IPv4 one (NAT64, 6to4, IPv4-compatible, SIIT, IPv4-mapped) is judged by that IPv4;
    site-local and local-use NAT64 addresses are never public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _REFUSED_IPV6):
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


class NotAnAddress(InfrastructureError, ValueError):
    """A host written as a number, but not as a dotted-decimal IPv4 or an IPv6 address."""


_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)


def literal_address(host: str) -> str | None:
    """The address that ``host`` (as the HTTP client sees it: ``yarl.URL(url).host``) writes
    literally, or None when it is a name to resolve. IPv4 written in decimal, octal or hex
    (``2130706433``, ``0x7f.1``, ``0177.0.0.1``), which resolvers accept as addresses, raises
    NotAnAddress: such a URL is refused whatever address it names."""
    bare = host.split("%", 1)[0].rstrip(".")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if _NUMERIC_HOST.match(bare):
        raise NotAnAddress(host)
    return None


def _url_host(url: str) -> str | None:
    """The host the HTTP client will connect to (after IDNA mapping: ``①②⑦.0.0.1`` is 127.0.0.1)."""
    return yarl.URL(url).host


async def check_target(url: str, allow_private: bool) -> str | None:
    """Why ``url`` may not receive webhooks, or None. Loopback, private, link-local and other
    non-global addresses are refused unless ``allow_private`` (tests, closed networks)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = _url_host(url)
    except (ValueError, UnicodeError):
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http:// or https:// URL with a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    if allow_private:
        return None
    try:
        literal = literal_address(host)
    except NotAnAddress:
        return "writes an IP address in a form other than dotted decimal or IPv6"
    try:
        addresses = [literal] if literal is not None else await _resolve(host, port)
    except (OSError, asyncio.TimeoutError, UnicodeError):
        return f"its host {host} cannot be resolved"
    if not addresses or not all(is_public_address(a) for a in addresses):
        return "points to a loopback, private or otherwise non-public address"
    return None


def delivery_refusal(url: str) -> str | None:
    """Why a delivery to ``url`` must not be attempted, judged on the URL alone (names are
    judged when resolved, by ``PublicOnlyResolver``)."""
    try:
        host = _url_host(url)
        literal = literal_address(host or "")
    except (ValueError, UnicodeError):
        return "refused: the URL's host is not a valid name or address"
    if literal is not None and not is_public_address(literal):
        return "refused: the URL points to a non-public address"
    return None


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), 5)
    return [str(info[4][0]) for info in infos]


class PublicOnlyResolver(aiohttp.ThreadedResolver):
    """Resolves names as usual but refuses non-public answers, so a name that was public when
    the subscription was made cannot be pointed at the internal network later."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[Any]:  # type: ignore[override]
        answers = await super().resolve(host, port, family)
        if not all(is_public_address(answer["host"]) for answer in answers):
            raise OSError(f"{host} resolves to a non-public address")
        return answers


# -- subscriptions (the API's side) -------------------------------------------------------------

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


# -- one delivery --------------------------------------------------------------------------------

_CLAIM = f"""
UPDATE {DELIVERIES} d SET status = 'sending', lease = $2, lease_until = now() + make_interval(secs => $3)
FROM {SUBSCRIPTIONS} s
WHERE d.id = $1 AND s.id = d.subscription_id AND s.status = 'active'
  AND ((d.status = 'pending' AND d.next_attempt_at <= now() + interval '250 milliseconds')
       OR (d.status = 'sending' AND d.lease_until < now()))
  AND NOT EXISTS (SELECT 1 FROM {DELIVERIES} p WHERE p.subscription_id = d.subscription_id
                  AND p.subject = d.subject AND p.position < d.position AND p.status <> 'succeeded')
RETURNING d.subscription_id, d.subject, d.position, d.event_id, d.payload, d.attempts, s.url, s.secret
"""


_RECORD = f"""
WITH updated AS (
    UPDATE {DELIVERIES} SET status = $3, attempts = $4, last_status = $5, last_error = $6, lease = NULL, lease_until = NULL,
        delivered_at = CASE WHEN $3 = 'succeeded' THEN now() END, next_attempt_at = now() + make_interval(secs => $7)
    WHERE id = $1 AND lease = $2 RETURNING id
), attempt AS (
    INSERT INTO {ATTEMPTS} (delivery_id, attempt, status, error, duration_ms)
    SELECT id, $4, $5, $6, $8 FROM updated ON CONFLICT DO NOTHING
), gone AS (
    UPDATE {SUBSCRIPTIONS} SET status = 'disabled', disabled_reason = 'the receiver answered 410 Gone'
    WHERE id = $9 AND $5 = 410 AND EXISTS (SELECT 1 FROM updated)
)
SELECT EXISTS (SELECT 1 FROM updated)
"""


@dataclass
class Attempt:
    status: int | None = None
    error: str | None = None
    duration_ms: int = 0


@dataclass
class DeliveryAgent:
    """Sends one delivery, records the attempt, and says what to enqueue next:
    ``(delivery id, delay in seconds)`` pairs."""

    pool: asyncpg.Pool
    settings: WebhookSettings
    session: aiohttp.ClientSession | None = None

    def _secret(self, claimed: Mapping[str, Any]) -> str:
        stored = claimed["secret"]
        if self.settings.secrets_key is None:
            if stored.startswith("whsec_"):
                return stored  # stored before encryption
            raise SecretUnreadable("the subscription's secret is encrypted and ONESTOP_SECRETS_KEY is not set")
        return self._box.open(stored, webhook_secret_row(claimed["subscription_id"]))

    @cached_property
    def _box(self) -> SecretBox:
        assert self.settings.secrets_key is not None
        return SecretBox(self.settings.secrets_key)

    @classmethod
    def http_session(cls, settings: WebhookSettings) -> aiohttp.ClientSession:
        resolver = None if settings.allow_private else PublicOnlyResolver()
        connector = aiohttp.TCPConnector(resolver=resolver, limit=100)
        return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds))

    async def deliver(self, delivery_id: int, *, chain_limit: int = 20) -> list[tuple[int, float]]:
        """Send the delivery, and after a success the subject's next ones straight away (up to
        ``chain_limit``), rather than putting each at the back of the queue."""
        for _ in range(chain_limit):
            lease = uuid.uuid4()
            claimed = await self.pool.fetchrow(_CLAIM, delivery_id, lease, self.settings.timeout_seconds + 30)
            if claimed is None:
                return []  # done already, not due, not the subject's next, or the subscription is off
            attempt = await self._post(claimed)
            following = await self._record(delivery_id, lease, claimed, attempt)
            if not following or following[0][0] == delivery_id:
                return following  # nothing more, or this one's retry
            delivery_id = following[0][0]
        return [(delivery_id, 0.0)]

    async def _post(self, claimed: Mapping[str, Any]) -> Attempt:
        if self.session is None:
            self.session = self.http_session(self.settings)
        url = claimed["url"]
        refusal = None if self.settings.allow_private else delivery_refusal(url)
        if refusal is not None:
            return Attempt(error=refusal)
        try:
            secret = self._secret(claimed)
        except SecretUnreadable as error:
            return Attempt(error=f"refused: {error}")
        timestamp = int(time.time())
        body = bytes(claimed["payload"])
        headers = {
            "content-type": "application/cloudevents+json",
            "user-agent": "OneStop-Webhooks/1",
            "webhook-id": claimed["event_id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, claimed["event_id"], timestamp, body),
        }
        started = time.perf_counter()
        try:
            # No redirects: a redirect could lead to an address the subscription check refused.
            async with self.session.post(url, data=body, headers=headers, allow_redirects=False) as response:
                await response.read()
                return Attempt(status=response.status, duration_ms=int((time.perf_counter() - started) * 1000))
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            return Attempt(error=f"{type(error).__name__}: {error}"[:500], duration_ms=int((time.perf_counter() - started) * 1000))

    async def _record(self, delivery_id: int, lease: uuid.UUID, claimed: Mapping[str, Any], attempt: Attempt) -> list[tuple[int, float]]:
        number = claimed["attempts"] + 1
        ok = attempt.status is not None and 200 <= attempt.status < 300
        schedule = self.settings.schedule
        retry_in = schedule[number] if not ok and number < len(schedule) else None
        if ok:
            status = "succeeded"
        elif attempt.status == 410 or retry_in is not None:
            status = "pending"
        else:
            status = "failed"
        # One statement, so one round trip and atomic: the attempt, the delivery's new state
        # (only while this worker holds the lease), and a 410's disabling of the subscription.
        ours = await self.pool.fetchval(
            _RECORD, delivery_id, lease, status, number, attempt.status, attempt.error, retry_in or 0.0,
            attempt.duration_ms, claimed["subscription_id"],
        )
        if not ours or attempt.status == 410:
            return []  # our lease ran out and another worker took over; or the receiver is gone
        if not ok:
            return [] if retry_in is None else [(delivery_id, retry_in)]
        # Looked up only after the success is committed: a delivery of this subject that was
        # refused while this one was being sent is found here, so none is left waiting.
        following = await self.pool.fetchval(
            f"SELECT id FROM {DELIVERIES} WHERE subscription_id = $1 AND subject = $2 AND position > $3"
            f" AND status = 'pending' ORDER BY position LIMIT 1",
            claimed["subscription_id"], claimed["subject"], claimed["position"],
        )
        return [] if following is None else [(following, 0.0)]

    async def close(self) -> None:
        """Close the HTTP session and the pool."""
        if self.session is not None:
            await self.session.close()
            self.session = None
        await self.pool.close()
