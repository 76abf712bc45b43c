"""`onestop run` supervises its children: each one killed with -9 is restarted, the reason is logged,
and the restarted stack does the whole work again."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from api.auth import make_token
from tests.conftest import JWT_SECRET
from tests.e2e.conftest import RunningStack, stop_stack

pytestmark = pytest.mark.e2e

CITIZEN_ID = "3100600445635"
CITIZEN = {"Authorization": f"Bearer {make_token(JWT_SECRET, sub=CITIZEN_ID, role='citizen')}"}


def _child(parent: int, subcommand: str) -> int | None:
    """The pid of the child of ``parent`` that runs `onestop <subcommand>`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"onestop.cli" in argv and subcommand.encode() in argv:
            return int(entry.name)
    return None


def _read_output(stack: RunningStack) -> str:
    assert stack.process.stdout is not None
    while line := stack.process.stdout.readline():
        stack.output.append(line)
    return "".join(stack.output)


# Each child of `onestop run` (its log name, and a word of its command line that finds it).
CHILDREN = (("api", "api"), ("projector", "projector"), ("jobs", "jobs"), ("webhooks", "webhooks"),
            ("registry simulator", "registry"), ("bank simulator", "bank"))


def _kill_and_wait_for_restart(stack: RunningStack, word: str) -> tuple[int, int]:
    """SIGKILL the child whose command line holds ``word``; (old pid, new pid) once restarted."""
    old = _child(stack.process.pid, word)
    assert old is not None, f"no child runs {word}: {_read_output(stack)}"
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = _child(stack.process.pid, word)
        if new not in (None, old):
            return old, new  # type: ignore[return-value]
        time.sleep(0.2)
    raise AssertionError(f"{word} was not restarted within 30 s: {_read_output(stack)}")


async def _wait_healthy(base: str) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(f"{base}/v1/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, "the API did not come back"
            await asyncio.sleep(0.2)


async def test_onestop_run_restarts_each_child_killed_with_sigkill_and_logs_why(stack: RunningStack) -> None:
    for name, word in CHILDREN:
        old, new = _kill_and_wait_for_restart(stack, word)
        assert f"{name} (pid {old}) ended with signal SIGKILL" in _read_output(stack)
    await _wait_healthy(stack.base)
    # The restarted processes do the whole work again: the API files, the projector keeps the
    # views current, the jobs process asks the restarted registry simulator and records the answer.
    async with aiohttp.ClientSession() as s:
        body = {"service": "civil.certified-copy", "organization": "MUN-SAENSUK", "channel": "web",
                "applicant": {"national_id": CITIZEN_ID, "name": "สมชาย ใจดี"}, "details": {"document": "house-registration", "copies": 1}}
        async with s.post(f"{stack.base}/v1/service-requests", json=body, headers={**CITIZEN, "Idempotency-Key": str(uuid.uuid4())}) as r:
            assert r.status == 201, await r.text()
            state = await r.json()
        assert state["status"] == "verifying"
        async with s.get(f"{stack.base}/v1/service-requests?min_position={state['position']}", headers=CITIZEN) as r:
            assert r.status == 200
            assert state["id"] in {item["id"] for item in (await r.json())["items"]}
        deadline = time.monotonic() + 60
        while True:
            async with s.get(f"{stack.base}/v1/service-requests/{state['id']}", headers=CITIZEN) as r:
                status = (await r.json())["status"]
            if status != "verifying":
                break
            assert time.monotonic() < deadline, f"the request stayed {status}: {_read_output(stack)}"
            await asyncio.sleep(0.3)
        assert status == "awaiting_payment"  # verified at the registry, the fee assessed, a payment opened
    # SIGTERM: every process finishes its work and the whole stack exits 0.
    stop_stack(stack.process)
    assert stack.process.returncode == 0, _read_output(stack)
