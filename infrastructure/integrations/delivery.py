"""Webhook delivery: one signed attempt at a time, in order per subject, on a retry schedule.

The tables are in infrastructure.integrations.subscriptions. The dispatcher (infrastructure.integrations.webhook_dispatcher)
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
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

import aiohttp
import asyncpg

from infrastructure.integrations.signing import sign
from infrastructure.integrations.subscriptions import ATTEMPTS, DELIVERIES, SUBSCRIPTIONS
from infrastructure.integrations.targets import PublicOnlyResolver, delivery_refusal
from infrastructure.secret_box import SecretBox, SecretUnreadable, webhook_secret_row

# Seconds before each attempt: 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h (about 3 days).
DEFAULT_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)


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
