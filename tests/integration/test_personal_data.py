"""Personal data encrypted per person in the event log, found by a keyed blind index, under a
master key that can be rotated: on the real PostgreSQL."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, AsyncIterator

import psycopg
import pytest

from infrastructure.privacy.keys import KeyUnreadable
from onestop.bootstrap import build_back_office, rotate_master_key
from onestop.settings import Settings
from tests.conftest import JWT_SECRET, ROOT
from tests.integration.api_harness import (
    CITIZEN, CITIZEN_ID, OFFICER, Harness, complaint, serving, start_harness, token,
)

pytestmark = pytest.mark.postgres

NAME = "สมชาย ใจดี"
OTHER_CITIZEN_ID = "1101700230708"
OTHER_NAME = "สมหญิง รักดี"
OTHER_CITIZEN = token("citizen", OTHER_CITIZEN_ID)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Harness]:
    async with serving(settings) as harness:
        yield harness


def stored_states(settings: Settings) -> list[str]:
    with psycopg.connect(settings.database.conninfo()) as conn:
        return [row[0] for row in conn.execute("SELECT convert_from(state, 'UTF8') FROM onestop_events ORDER BY notification_id")]


async def listed(api: Harness, query: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/service-requests?{query}", headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["items"]


async def test_the_log_holds_no_plain_national_id_name_or_complaint_text(api: Harness) -> None:
    filed = await api.submit()
    await api.act(filed["id"], "request-info", {"message": "ขอสำเนาทะเบียนบ้านของนายสมชาย"})
    states = stored_states(api.settings)
    assert len(states) >= 2
    for state in states:
        for plain in (CITIZEN_ID, "สมชาย", "ไฟถนน", "ซอย 5"):
            assert plain not in state
        assert state.startswith('{"_subject_":"')
    # What is not personal stays plain, so the log can still be filtered and audited.
    assert '"organization":"MUN-SAENSUK"' in states[0] and filed["reference"] in states[0]
    # The application reads its own events in the clear.
    app = build_back_office(api.settings)
    try:
        request = app.get_request(__import__("uuid").UUID(filed["id"]))
        assert request.applicant == {"national_id": CITIZEN_ID, "name": NAME}
        assert request.details["description"] == "ไฟถนนหน้าบ้านดับสามคืน"
    finally:
        app.close()


async def test_the_blind_index_finds_a_persons_requests_and_a_wrong_key_finds_nothing(api: Harness) -> None:
    mine = [await api.submit() for _ in range(2)]
    other = await api.submit(complaint(applicant={"national_id": OTHER_CITIZEN_ID, "name": OTHER_NAME}), headers=OTHER_CITIZEN)
    position = other["position"]
    found = await listed(api, f"applicant={CITIZEN_ID}&min_position={position}", OFFICER)
    assert {r["id"] for r in found} == {r["id"] for r in mine}
    assert [r["id"] for r in await listed(api, f"min_position={position}", OTHER_CITIZEN)] == [other["id"]]
    assert {r["id"] for r in await listed(api, f"min_position={position}", CITIZEN)} == {r["id"] for r in mine}
    # The views keep the index, never a way back to the ID from it.
    with psycopg.connect(api.settings.database.conninfo()) as conn:
        indexes = {row[0] for row in conn.execute("SELECT applicant_index FROM request_summaries")}
        keyed = {row[0] for row in conn.execute("SELECT blind_index FROM subject_keys")}
    assert len(indexes) == 2 and indexes == keyed and not any(CITIZEN_ID in i for i in indexes)
    # An API with another blind-index key computes other indexes: it finds nobody.
    wrong = replace(api.settings, blind_index_key=b"w" * 32)
    other_api = await start_harness(wrong)
    try:
        assert await listed(other_api, f"applicant={CITIZEN_ID}", OFFICER) == []
        assert await listed(other_api, "", CITIZEN) == []
    finally:
        await other_api.client.close()


async def test_rotating_the_master_key_keeps_old_events_readable_and_touches_no_event(api: Harness, tmp_path: Path) -> None:
    filed = await api.submit()
    before = stored_states(api.settings)
    old_key = base64.b64decode("b25lc3RvcC10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=")
    key_file = tmp_path / "master_key"
    key_file.write_text(base64.b64encode(old_key).decode())
    with_file = replace(api.settings, master_key_file=key_file)
    result = rotate_master_key(with_file, None)
    assert result["rewrapped"] == 1
    assert (tmp_path / "master_key.previous").read_text().strip() == base64.b64encode(old_key).decode()
    new_key = base64.b64decode(key_file.read_text().strip())
    assert new_key != old_key
    assert stored_states(api.settings) == before  # not one stored byte changed
    rotated = replace(api.settings, master_key=new_key)
    app = build_back_office(rotated)
    try:
        assert app.get_request(__import__("uuid").UUID(filed["id"])).applicant["name"] == NAME
    finally:
        app.close()
    stale = build_back_office(replace(api.settings, master_key=old_key))
    try:
        with pytest.raises(KeyUnreadable, match="not configured"):
            stale.get_request(__import__("uuid").UUID(filed["id"]))
    finally:
        stale.close()
    # Run again to the same key (after an interruption, say), it re-wraps nothing more.
    assert rotate_master_key(rotated, key_file)["rewrapped"] == 0


def test_the_api_refuses_to_start_without_a_master_key_and_says_why(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONESTOP_")}
    env.update({"ONESTOP_DATABASE_URL": settings.database_url or "", "ONESTOP_JWT_SECRET": JWT_SECRET,
                "ONESTOP_SECRETS_KEY": "b25lc3RvcC10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE=",
                "ONESTOP_BLIND_INDEX_KEY": "b25lc3RvcC10ZXN0LWJsaW5kLWluZGV4LWtleS0zMiE=", "ONESTOP_PORT": "0"})
    refused = subprocess.run([sys.executable, "-m", "onestop.cli", "api"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "ONESTOP_MASTER_KEY or ONESTOP_MASTER_KEY_FILE is required" in refused.stderr
    assert "Traceback" not in refused.stderr


async def test_a_key_set_erased_by_another_process_is_not_reused_for_a_new_request(settings: Settings) -> None:
    from application.commands import SubmitCommand
    from domain.actors import Actor

    def filing(key: str) -> SubmitCommand:
        body = complaint()
        return SubmitCommand(body=body, actor=Actor(sub=CITIZEN_ID, role="citizen", pid=CITIZEN_ID), request_hash=key, idempotency_key=key)

    app = build_back_office(settings)
    fresh = build_back_office(settings)
    try:
        first = app.submit(filing("one")).state
        # Another process erases the person: this one still has their key set cached.
        with psycopg.connect(settings.database.conninfo(), autocommit=True) as conn:
            conn.execute("UPDATE subject_keys SET wrapped_key = NULL, erased_at = now()")
        second = app.submit(filing("two")).state
        uuid = __import__("uuid")
        assert fresh.get_request(uuid.UUID(second["id"])).applicant["name"] == NAME  # readable: under a new key set
        assert fresh.get_request(uuid.UUID(first["id"])).applicant["name"] == "[erased]"
        with psycopg.connect(settings.database.conninfo()) as conn:
            rows = conn.execute("SELECT count(*), count(wrapped_key), count(DISTINCT blind_index) FROM subject_keys").fetchone()
        assert rows == (2, 1, 1)
    finally:
        app.close()
        fresh.close()
