from __future__ import annotations

from typing import AsyncIterator

import pytest

from onestop.settings import Settings
from tests.integration.api_harness import FollowingProjectorThread, Harness, ProjectorThread, serving, start_harness


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Harness]:
    """The API on a clean database, with a projector following the log."""
    async with serving(settings) as harness:
        yield harness


@pytest.fixture(scope="session")
def rabbitmq_broker():  # type: ignore[no-untyped-def]
    """The real RabbitMQ broker, made current for this test process."""
    from tests.integration.jobs_harness import RABBITMQ_URL, require_rabbitmq
    from workers.broker import setup_broker

    require_rabbitmq()
    return setup_broker(RABBITMQ_URL)


@pytest.fixture
async def jobs_stack(settings: Settings, rabbitmq_broker):  # type: ignore[no-untyped-def]
    """Simulators (processes), the API and a projector; a test starts the dispatcher and worker
    it wants (in-process, or as processes it may kill)."""
    import aiohttp

    from tests.integration.jobs_harness import JobsStack, delete_queues, forget, process_env, simulator_processes, stack_settings, wait_http

    registry_url, bank_url, simulators = simulator_processes(settings.promptpay_biller_id)
    try:
        await wait_http(f"{registry_url}/health")
        await wait_http(f"{bank_url}/health")
        stack_settings_ = stack_settings(settings, registry_url, bank_url)
        with FollowingProjectorThread(stack_settings_) as projector:  # the views, the feed and the audit chain, as `onestop projector` runs them
            harness = await start_harness(stack_settings_)
            harness.projector = projector
            http = aiohttp.ClientSession()
            stack = JobsStack(harness, stack_settings_, registry_url, bank_url, process_env(stack_settings_), http)
            callback = f"http://127.0.0.1:{harness.client.port}/v1/payment-notifications/sim-bank"
            async with http.put(f"{bank_url}/admin/delivery", json={"callback_url": callback}) as response:
                assert response.status == 200, await response.text()
            try:
                yield stack
            finally:
                stack.stop_all()
                await http.close()
                await harness.client.close()
                delete_queues(stack_settings_.jobs_queue)
    finally:
        for process in simulators:
            forget(process)
