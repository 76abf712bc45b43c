"""The webhook delivery actor.

Import this module only after ``workers.broker.setup_broker``: importing it declares the actor
on the current broker (queue ``onestop-webhooks``) and does nothing else; the database pool and
the HTTP session are made on the first message, on the worker's event loop. ``declare`` gives
the same actor on another queue (tests use a queue of their own).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import dramatiq

from infrastructure.webhooks import DeliveryAgent, WebhookSettings, create_pool

QUEUE = "onestop-webhooks"

_configured: dict[str, Any] = {}
_runtime: dict[str, Any] = {}
_declared: dict[tuple[int, str], dramatiq.Actor] = {}


def configure(database_url: str, settings: WebhookSettings, *, pool_size: int = 2) -> None:
    """Where deliveries are kept, how they are sent, and the most database connections they
    use. A worker that was not configured reads all from the environment on its first message."""
    _configured.update(database_url=database_url, settings=settings, pool_size=pool_size)
    _runtime.clear()


async def _agent() -> DeliveryAgent:
    loop = asyncio.get_running_loop()
    if _runtime.get("loop") is not loop:
        if not _configured:
            from infrastructure.settings import Settings

            settings = Settings.from_env(require_secret=False)
            from infrastructure.connection_budget import worker_pool

            configure(settings.database.url(), WebhookSettings.from_settings(settings), pool_size=worker_pool(settings))
        # One pool per event loop: a pool cannot be shared between loops.
        pool = await create_pool(_configured["database_url"], max_size=_configured.get("pool_size", 2))
        _runtime.update(loop=loop, agent=DeliveryAgent(pool, _configured["settings"]))
    return _runtime["agent"]  # type: ignore[no-any-return]


def close(timeout: float = 10.0) -> None:
    """Close the pool and the HTTP session on the worker's loop; call it before the worker
    stops (its loop stops with it)."""
    loop, agent = _runtime.get("loop"), _runtime.get("agent")
    _runtime.clear()
    if loop is not None and agent is not None and loop.is_running():
        asyncio.run_coroutine_threadsafe(agent.close(), loop).result(timeout)


# Deliveries per message: each message's deliveries go out concurrently, which spares the
# broker and Dramatiq a round per delivery.
PER_MESSAGE = 25


def sender(actor: dramatiq.Actor) -> Callable[[list[tuple[int, float]]], None]:
    """A function that sends ``(delivery id, delay in seconds)`` pairs to ``actor``: those due
    now in messages of up to PER_MESSAGE ids, each delayed one alone."""

    def send(pairs: list[tuple[int, float]]) -> None:
        now = [delivery_id for delivery_id, delay in pairs if delay <= 0]
        for i in range(0, len(now), PER_MESSAGE):
            actor.send(now[i:i + PER_MESSAGE])
        for delivery_id, delay in pairs:
            if delay > 0:
                actor.send_with_options(args=([delivery_id],), delay=int(delay * 1000))

    return send


def declare(broker: dramatiq.Broker, queue: str = QUEUE) -> dramatiq.Actor:
    """The delivery actor on ``broker`` and ``queue`` (declared once per pair)."""
    key = (id(broker), queue)
    if key not in _declared:
        async def deliver_webhooks(delivery_ids: list[int]) -> None:
            """Send each delivery that is due and first of its subject, concurrently; safe to
            run twice. Retries are scheduled here, from the delivery's schedule, not by Dramatiq."""
            agent = await _agent()
            followups = await asyncio.gather(*(agent.deliver(delivery_id) for delivery_id in delivery_ids))
            send([pair for pairs in followups for pair in pairs])

        actor = dramatiq.actor(deliver_webhooks, actor_name=f"deliver_webhooks@{queue}", queue_name=queue, broker=broker,
                               max_retries=0, time_limit=10 * 60 * 1000)
        send = sender(actor)
        _declared[key] = actor
    return _declared[key]


deliver_webhooks = declare(dramatiq.get_broker())
enqueue = sender(deliver_webhooks)
