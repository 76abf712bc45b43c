"""`onestop run` started as a process, driven over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import JWT_SECRET, ROOT, create_database, drop_database, free_port


@dataclass
class RunningStack:
    base: str
    process: subprocess.Popen[str]
    output: list[str]


def start_stack(env: dict[str, str], timeout: float = 120) -> RunningStack:
    process = subprocess.Popen(
        [sys.executable, "-m", "onestop.cli", "run"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            output.append(line)
            match = re.search(r"OneStop is running at (http://\S+)/v1", line)
            if match:
                # read the token lines that follow
                time.sleep(0.3)
                output.extend(process.stdout.readlines())
                return RunningStack(match.group(1), process, output)
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.1)
    stop_stack(process)
    raise AssertionError("onestop run did not start:\n" + "".join(output))


def stop_stack(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def stack(postgres_server: str, tmp_path: Path) -> Iterator[RunningStack]:
    """`onestop run` on a fresh database of the test server, on a free port."""
    url = create_database(postgres_server, "onestop_e2e")
    env = {**os.environ, "ONESTOP_DATABASE_URL": url, "ONESTOP_JWT_SECRET": JWT_SECRET, "ONESTOP_DEV_TOKENS": "1",
           "ONESTOP_PORT": str(free_port()), "ONESTOP_DATA_DIR": str(tmp_path / "data")}
    running = start_stack(env)
    # The keys of personal data were not given: `onestop run` made them in the data dir.
    assert (tmp_path / "data" / "master_key").exists() and (tmp_path / "data" / "blind_index_key").exists()
    try:
        yield running
    finally:
        stop_stack(running.process)
        drop_database(postgres_server, url)
