"""The webhooks side of the program: the delivery actor a worker declares, the agents it makes,
and `onestop webhooks` (the webhook dispatcher process)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Awaitable, Callable

from onestop.bootstrap import webhook_settings
from onestop.settings import Settings

if TYPE_CHECKING:
    from application.ports import WebhookDeliverer
    from infrastructure.integrations.delivery import WebhookSettings


def webhook_agents(database_url: str, hooks: WebhookSettings, *, pool_size: int = 2) -> Callable[[], Awaitable[WebhookDeliverer]]:
    """How a worker makes its webhook delivery agent (one per event loop, on its first message),
    with at most ``pool_size`` database connections (onestop.connection_budget)."""
    from infrastructure.integrations.delivery import DeliveryAgent, create_pool

    async def make_agent() -> WebhookDeliverer:
        pool = await create_pool(database_url, max_size=pool_size)
        return DeliveryAgent(pool, hooks)

    return make_agent


def declare_webhook_delivery(settings: Settings, broker: object) -> Callable[[list[tuple[int, float]]], None]:
    """Declare the webhook delivery actor on ``broker`` and configure it from ``settings``;
    returns the function that enqueues deliveries."""
    import workers.webhooks as webhook_actors

    from onestop.connection_budget import worker_pool

    webhook_actors.configure(webhook_agents(settings.database.url(), webhook_settings(settings), pool_size=worker_pool(settings)))
    return webhook_actors.sender(webhook_actors.declare(broker))  # type: ignore[arg-type]


def serve_webhooks(settings: Settings) -> None:
    """`onestop webhooks`: the webhook dispatcher until SIGTERM; on the in-process broker (no
    ONESTOP_BROKER_URL) the delivery worker runs here too, else `onestop worker` delivers."""
    import dramatiq

    from infrastructure.integrations.event_feed import EventFeed, FeedNotifier
    from infrastructure.integrations.webhook_dispatcher import WebhookDispatcher
    from infrastructure.integrations.delivery import create_pool
    from onestop.processes import GRACE_SECONDS, async_stop_on_signals
    from workers.broker import setup_broker

    broker = setup_broker(settings.broker_url)
    import workers.webhooks as webhook_actors

    hooks = webhook_settings(settings)
    enqueue = declare_webhook_delivery(settings, broker)
    worker = None
    if settings.broker_url is None:
        worker = dramatiq.Worker(broker, queues={webhook_actors.QUEUE}, worker_threads=8)
        worker.start()

    async def follow() -> None:
        stop = async_stop_on_signals()
        # One connection: dispatch, replay and sweep take turns on it (the feed's notifier has its own).
        pool = await create_pool(settings.database.url(), max_size=1)
        notifier = FeedNotifier(settings.database.url())
        await notifier.start()
        dispatcher = WebhookDispatcher(pool, EventFeed(pool, notifier), enqueue, hooks)
        print("webhook dispatcher following the published feed", flush=True)
        try:
            await dispatcher.run(stop)
        finally:
            dispatcher.close()
            await notifier.close()
            await pool.close()

    try:
        asyncio.run(follow())
    finally:
        if worker is not None:
            webhook_actors.close()
            worker.stop(timeout=int(GRACE_SECONDS * 1000))
