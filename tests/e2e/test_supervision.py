"""`onestop run` supervises its children: one killed with -9 is restarted, and the reason is logged."""

from __future__ import annotations

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


async def test_onestop_run_restarts_a_child_killed_with_sigkill_and_logs_why(stack: RunningStack) -> None:
    projector = _child(stack.process.pid, "projector")
    assert projector is not None
    os.kill(projector, signal.SIGKILL)
    deadline = time.monotonic() + 30
    restarted = None
    while time.monotonic() < deadline:
        restarted = _child(stack.process.pid, "projector")
        if restarted not in (None, projector):
            break
        time.sleep(0.2)
    assert restarted not in (None, projector)
    assert f"projector (pid {projector}) ended with signal SIGKILL" in _read_output(stack)
    # The new projector keeps the views current.
    async with aiohttp.ClientSession() as s:
        body = {"service": "complaint", "organization": "MUN-SAENSUK", "channel": "web",
                "applicant": {"national_id": CITIZEN_ID, "name": "สมชาย ใจดี"}, "details": {"subject": "s", "description": "d"}}
        async with s.post(f"{stack.base}/v1/service-requests", json=body, headers={**CITIZEN, "Idempotency-Key": str(uuid.uuid4())}) as r:
            assert r.status == 201, await r.text()
            state = await r.json()
        async with s.get(f"{stack.base}/v1/service-requests?min_position={state['position']}", headers=CITIZEN) as r:
            assert r.status == 200
            assert state["id"] in {item["id"] for item in (await r.json())["items"]}
    # SIGTERM: every process finishes its work and the whole stack exits 0.
    stop_stack(stack.process)
    assert stack.process.returncode == 0, _read_output(stack)
