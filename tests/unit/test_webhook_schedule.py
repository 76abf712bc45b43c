"""The webhook retry schedule has one home (infrastructure.integrations.delivery); the settings
and the README say the same."""

from __future__ import annotations

import re

from infrastructure.integrations.delivery import DEFAULT_SCHEDULE, WebhookSettings
from onestop.settings import Settings
from tests.conftest import ROOT


def test_the_settings_and_the_delivery_agent_default_to_the_same_retry_schedule() -> None:
    assert Settings.webhook_schedule == WebhookSettings.schedule == DEFAULT_SCHEDULE


def test_the_readme_prints_the_retry_schedule_the_code_uses() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    default = re.search(r"\| `ONESTOP_WEBHOOK_SCHEDULE` \| `([0-9,.]+)` \|", readme)
    assert default is not None
    assert tuple(float(step) for step in default.group(1).split(",")) == DEFAULT_SCHEDULE
