"""Worker modules declare nothing when imported: the composition root declares the actors on the
broker it set up, so an early import cannot create a default (RabbitMQ) broker behind its back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_worker_modules_sets_no_broker_and_declares_no_actor() -> None:
    code = (
        "import dramatiq.broker\n"
        "import workers.actors, workers.jobs, workers.webhooks\n"
        "assert dramatiq.broker.global_broker is None, dramatiq.broker.global_broker\n"
        "assert not hasattr(workers.webhooks, 'deliver_webhooks')\n"
        "print('clean')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_the_delivery_actor_is_declared_on_the_broker_it_is_given() -> None:
    from dramatiq.brokers.stub import StubBroker

    import workers.webhooks as webhook_actors

    broker = StubBroker()
    actor = webhook_actors.declare(broker, "onestop-webhooks-unit")
    assert actor.broker is broker and actor.queue_name == "onestop-webhooks-unit"
    assert webhook_actors.declare(broker, "onestop-webhooks-unit") is actor
