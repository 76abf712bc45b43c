"""SIGTERM: a follower process finishes its step, lets go of its election lock and exits 0, so a
standby copy takes over at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from infrastructure.views.projector import ADVISORY_LOCK_KEY
from tests.conftest import JWT_SECRET, KEY_ENV, ROOT

pytestmark = pytest.mark.postgres


def _lock_holders(conninfo: str, key: int) -> int:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = %s AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())", (key,),
        ).fetchone()[0]


def test_sigterm_makes_the_projector_release_its_election_lock_and_exit_0(settings) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "ONESTOP_DATABASE_URL": settings.database_url, "ONESTOP_JWT_SECRET": JWT_SECRET, "ONESTOP_POOL_SIZE": "2", **KEY_ENV}
    process = subprocess.Popen([sys.executable, "-m", "onestop.cli", "projector"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        conninfo = settings.database.conninfo()
        deadline = time.monotonic() + 30
        while _lock_holders(conninfo, ADVISORY_LOCK_KEY) == 0:
            assert time.monotonic() < deadline and process.poll() is None, "the projector never took its lock"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=25) == 0, process.stderr.read() if process.stderr else ""
        assert _lock_holders(conninfo, ADVISORY_LOCK_KEY) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
