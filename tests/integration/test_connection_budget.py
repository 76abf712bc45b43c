"""The connection budget: one setting sizes every pool; `onestop run` at the defaults stays
within 20 PostgreSQL connections; a server too small for the budget is refused at start."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from onestop.connection_budget import check_server, run_budget
from onestop.settings import DatabaseAddress, Settings, SettingsError
from tests.conftest import JWT_SECRET, create_database, drop_database, free_port


def test_the_run_budget_at_the_defaults_is_at_most_twenty_and_grows_with_the_pool_size() -> None:
    defaults = Settings.from_env({"ONESTOP_DATABASE_URL": "postgresql://x@h/db", "ONESTOP_JWT_SECRET": "s"})
    assert defaults.pool_size == 4 and sum(run_budget(defaults).values()) <= 20
    bigger = dataclasses.replace(defaults, pool_size=16)
    assert sum(run_budget(bigger).values()) > sum(run_budget(defaults).values())
    assert run_budget(bigger)["api"] == 2 * 16 + 2


def test_a_server_too_small_for_the_budget_is_refused_with_a_clear_message(settings: Settings) -> None:
    with pytest.raises(SettingsError, match="max_connections"):
        check_server(settings, 100_000, "onestop run")
    check_server(settings, 5, "onestop run")


@pytest.mark.e2e
def test_onestop_run_at_the_defaults_uses_at_most_twenty_connections_while_idle(postgres_server: str, tmp_path: Path) -> None:
    from tests.e2e.conftest import start_stack, stop_stack

    url = create_database(postgres_server, "onestop_budget")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ONESTOP_")}
    env.update({"ONESTOP_DATABASE_URL": url, "ONESTOP_JWT_SECRET": JWT_SECRET, "ONESTOP_PORT": str(free_port()),
                "ONESTOP_DATA_DIR": str(tmp_path / "data")})
    stack = start_stack(env)
    try:
        # Let every process settle (the jobs and webhooks processes connect after the API).
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(f"{stack.base}/v1/health", timeout=5) as response:
                followers = json.loads(response.read())["followers"]
            if all(followers[name]["state"] == "running" for name in ("projector", "dispatcher", "feed", "audit_chain")):
                break
            assert time.monotonic() < deadline, followers
            time.sleep(0.5)
        time.sleep(2)
        dbname = url.rsplit("/", 1)[1]
        with psycopg.connect(DatabaseAddress.from_url(postgres_server).conninfo(), autocommit=True) as conn:
            count = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)).fetchone()[0]
        print(f"onestop run idles on {count} PostgreSQL connections")
        assert 0 < count <= 20, f"{count} connections"
    finally:
        stop_stack(stack.process)
        drop_database(postgres_server, url)
