"""Supervision without servers: backoff, a thread that fails ends its process, `onestop run`'s
supervisor restarts a child that ends and says why."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest

from infrastructure.eventstore.following import FAILURE_EXIT_STATUS, Backoff, catch_up_in_batches
from onestop.runner import Supervisor, describe_exit
from tests.conftest import ROOT


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0)
    delays = [backoff.next() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings)), delays
    assert len(set(delays)) > 1
    backoff.reset()
    assert backoff.next() <= 1.0


def test_an_exception_in_a_supervised_thread_ends_the_process_with_status_70() -> None:
    script = (
        "import threading, time\n"
        "from infrastructure.eventstore.following import start_thread\n"
        "def boom():\n"
        "    raise RuntimeError('the handler broke')\n"
        "start_thread('doomed', boom)\n"
        "time.sleep(10)\n"
        "print('still alive')\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == FAILURE_EXIT_STATUS
    assert time.monotonic() - started < 9
    assert "still alive" not in done.stdout
    assert "RuntimeError: the handler broke" in done.stderr and "doomed failed unexpectedly" in done.stderr


def test_batch_catch_up_stops_after_a_short_batch_and_returns_the_new_position() -> None:
    log = list(range(1, 26))
    written: list[list[int]] = []

    def read(after: int, limit: int) -> list[int]:
        return [p for p in log if p > after][:limit]

    def write(after: int, batch: list[int]) -> int:
        written.append(list(batch))
        return batch[-1]

    assert catch_up_in_batches(3, read, write, 10) == (22, 25)
    assert [len(b) for b in written] == [10, 10, 2]


def test_describe_exit_names_the_signal_or_the_status() -> None:
    assert describe_exit(-9) == "signal SIGKILL"
    assert describe_exit(70) == "exit status 70"


def test_the_supervisor_restarts_a_child_that_ends_after_a_backoff_and_logs_why(caplog: pytest.LogCaptureFixture) -> None:
    import os

    # `onestop nonsense` ends at once with argparse's exit status 2.
    supervisor = Supervisor({"broken": ["nonsense"]}, {**os.environ}, backoff=lambda: Backoff(initial=0.3, maximum=0.6))
    caplog.set_level(logging.WARNING, logger="onestop.run")
    supervisor.start_all()
    first = supervisor.children["broken"]
    deadline = time.monotonic() + 30
    try:
        while supervisor.restarts["broken"] < 2 and time.monotonic() < deadline:
            supervisor.check()
            time.sleep(0.05)
    finally:
        supervisor.stop_all()
    assert supervisor.restarts["broken"] >= 2
    assert supervisor.children["broken"] is not first
    assert "broken" in caplog.text and "ended with exit status 2" in caplog.text and "restarting in" in caplog.text
