from __future__ import annotations

from typing import AsyncIterator

import pytest

from infrastructure.settings import Settings
from tests.integration.api_harness import Harness, ProjectorThread, start_harness


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Harness]:
    """The API on a clean database, with a projector following the log."""
    with ProjectorThread(settings) as projector:
        harness = await start_harness(settings)
        harness.projector = projector
        try:
            yield harness
        finally:
            await harness.client.close()
