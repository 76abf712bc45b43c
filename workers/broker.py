"""Dramatiq broker set-up. It must run before any actor module is imported, because actors bind
to the broker that is current when they are declared."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO, CurrentMessage

from workers.errors import UnsupportedBroker

_configured: dramatiq.Broker | None = None


def make_broker(url: str | None) -> dramatiq.Broker:
    """RabbitMQ (`amqp://`, durable queues) in production; Redis (`redis://`) supported; the
    in-process stub broker when no URL is given (the embedded one-machine `run`)."""
    if url is None:
        broker: dramatiq.Broker = StubBroker()
        broker.emit_after("process_boot")
    elif url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=url, confirm_delivery=True)
    elif url.startswith(("redis://", "rediss://")):
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)
    else:
        raise UnsupportedBroker("ONESTOP_BROKER_URL must start with amqp:// or redis://")
    broker.add_middleware(AsyncIO())
    broker.add_middleware(CurrentMessage())
    return broker


def setup_broker(url: str | None) -> dramatiq.Broker:
    """Make the broker current (once per process) and return it."""
    global _configured
    if _configured is None:
        _configured = make_broker(url)
        dramatiq.set_broker(_configured)
    return _configured
