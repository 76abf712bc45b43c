"""Auditors: the global log, point-in-time state, the export and tamper evidence, on the real
PostgreSQL with the projector and its followers running."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator
from urllib.parse import quote

import orjson
import psycopg
import pytest

from onestop.settings import Settings
from tests.conftest import JWT_SECRET, KEY_ENV, ROOT
from tests.integration.api_harness import (
    AUDITOR, CITIZEN, INTEGRATOR, OFFICER, FollowingProjectorThread, Harness, complaint, serving, token, wait_until_followed,
)

pytestmark = pytest.mark.postgres

ADMIN = token("admin", "admin.moi")
FLYER = {"description": "ประกาศงานวัด", "area": "ตลาด", "start_date": "2026-12-01", "end_date": "2026-12-03", "quantity": 20}


@pytest.fixture
async def audited(settings: Settings) -> AsyncIterator[Harness]:
    async with serving(settings, FollowingProjectorThread) as harness:
        yield harness


def now() -> datetime:
    return datetime.now(timezone.utc)


def as_of(moment: datetime) -> str:
    return quote(moment.isoformat())


async def read(api: Harness, path: str, headers: dict[str, str] = OFFICER) -> dict[str, Any]:
    response = await api.client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()  # type: ignore[no-any-return]


async def test_as_of_states_match_what_the_api_answered_at_that_time(audited: Harness) -> None:
    api = audited
    # (time right after the answer, path, body, whether it was a read of the views)
    answered: list[tuple[datetime, str, dict[str, Any], bool]] = []

    async def remember(path: str, body: dict[str, Any], *, read_of_views: bool) -> None:
        answered.append((now(), path, body, read_of_views))
        await asyncio.sleep(0.002)

    async def command_then_read(path: str, body: dict[str, Any]) -> None:
        await remember(path, body, read_of_views=False)
        request_path = path if "/service-requests/" in path else f"/v1/service-requests/{body['request_id']}"
        # The payment route does not take min_position: wait on the request route.
        await read(api, f"{request_path}?min_position={body['position']}")
        await remember(path, await read(api, path), read_of_views=True)

    state = await api.submit(complaint(service="local.flyer-permit", details=FLYER))
    request_path, payment_path = f"/v1/service-requests/{state['id']}", f"/v1/payments/{state['payment']['id']}"
    await command_then_read(request_path, state)
    await remember(payment_path, await read(api, payment_path), read_of_views=True)
    paid = await (await api.client.post(f"{payment_path}/record-cash", json={"amount_satang": 20000}, headers=OFFICER)).json()
    await command_then_read(payment_path, {k: v for k, v in paid.items() if k != "request"})
    await command_then_read(request_path, paid["request"])
    for action, body, headers in (("assign", {"officer": "officer.b"}, OFFICER), ("request-info", {"message": "สำเนาบัตร"}, OFFICER),
                                  ("provide-info", {"message": "แนบแล้ว"}, CITIZEN), ("approve", {"note": "ok"}, OFFICER)):
        response = await api.act(state["id"], action, body, headers=headers)
        assert response.status == 200, await response.text()
        await command_then_read(request_path, await response.json())

    assert len({body["version"] for _, path, body, _ in answered if path == request_path}) == 6  # versions 2 to 7
    for moment, path, body, read_of_views in answered:
        response = await api.client.get(f"{path}?as_of={as_of(moment)}", headers=AUDITOR)
        assert response.status == 200, await response.text()
        assert response.headers["ETag"] == f'"{body["version"]}"'
        past, then = orjson.loads(await response.read()), orjson.loads(orjson.dumps(body))
        if not read_of_views:
            # A command's position is the last of everything it saved (the new payment's Opened
            # event, when filing a request opens one); a read's is the aggregate's own last event.
            assert past.pop("position") <= then.pop("position")
        assert past == then, (path, moment, read_of_views)


async def test_as_of_is_for_auditors_and_admins_and_before_the_request_existed_it_is_not_found(audited: Harness) -> None:
    before = now()
    state = await audited.submit()
    path = f"/v1/service-requests/{state['id']}"
    assert (await audited.client.get(f"{path}?as_of={as_of(before)}", headers=AUDITOR)).status == 404
    assert (await audited.client.get(f"{path}?as_of={as_of(now())}", headers=ADMIN)).status == 200
    for headers in (OFFICER, CITIZEN):
        assert (await audited.client.get(f"{path}?as_of={as_of(now())}", headers=headers)).status == 403
    bad = await audited.client.get(f"{path}?as_of=yesterday", headers=AUDITOR)
    assert bad.status == 400 and (await bad.json())["errors"][0]["field"] == "as_of"
    naive = await audited.client.get(f"{path}?as_of=2026-01-01T00:00:00", headers=AUDITOR)
    assert naive.status == 400


async def test_the_audit_log_lists_every_event_in_order_with_filters_and_cursors(audited: Harness) -> None:
    api = audited
    first = await api.submit()
    await api.act(first["id"], "approve", {"note": "ok"})
    middle = now()
    await asyncio.sleep(0.01)
    await api.submit(complaint(organization="MUN-PHRAE"))
    await wait_until_followed(api.settings)

    async def all_pages(query: str) -> list[dict[str, Any]]:
        items, cursor = [], ""
        while True:
            page = await read(api, f"/v1/audit/events?limit=2&after={cursor}{query}", AUDITOR)
            items += page["items"]
            if page["next_cursor"] is None:
                return items
            cursor = page["next_cursor"]

    everything = await all_pages("")
    assert [e["position"] for e in everything] == sorted(e["position"] for e in everything) and len(everything) == api.event_count()
    assert set(everything[0]) >= {"position", "type", "aggregate_id", "version", "occurred_at", "actor", "data"}
    # Auditors see events as stored: personal fields as ciphertext, with the subject reference.
    # (one envelope an event: the personal fields are out of the plain data, named with their keys)
    stored = everything[0]["data"]
    assert "applicant" not in stored and isinstance(stored["_pd_"], str) and stored["_subject_"]
    assert stored["_sealed_"]["applicant"] == ["national_id", "name"] and "details" in stored["_sealed_"]
    assert "สมชาย" not in str(everything[0])
    clear = await read(api, "/v1/audit/events?limit=1&plain=1", AUDITOR | {"X-Purpose": "case review 42"})
    assert clear["items"][0]["data"]["applicant"]["name"] == "สมชาย ใจดี"
    assert [e["type"] for e in await all_pages("&type=ServiceRequest.Approved")] == ["ServiceRequest.Approved"]
    phrae = await all_pages("&organization=MUN-PHRAE")
    assert len(phrae) == 2 and {e["aggregate_id"] for e in phrae} != {first["id"]}
    later = await all_pages(f"&from={as_of(middle)}")
    assert later == [e for e in everything if datetime.fromisoformat(e["occurred_at"]) >= middle] and len(later) == 2
    earlier = await all_pages(f"&to={as_of(middle)}")
    assert earlier + later == everything
    for query, field in (("type=Nope.Nothing", "type"), ("from=soon", "from"), ("after=x", "after")):
        response = await api.client.get(f"/v1/audit/events?{query}", headers=AUDITOR)
        assert response.status == 400 and (await response.json())["errors"][0]["field"] == field
    for headers in (INTEGRATOR, OFFICER, CITIZEN):
        assert (await api.client.get("/v1/audit/events", headers=headers)).status == 403


async def test_the_export_streams_every_event_as_one_json_line_with_its_chain_link(audited: Harness) -> None:
    for _ in range(3):
        await audited.submit()
    await wait_until_followed(audited.settings)
    response = await audited.client.get("/v1/audit/export", headers=AUDITOR)
    assert response.status == 200 and response.content_type == "application/x-ndjson"
    lines = (await response.read()).splitlines()
    events = [json.loads(line) for line in lines]
    assert len(events) == audited.event_count() == 6
    assert all(len(e["chain_link"]) == 64 for e in events)
    later = await audited.client.get(f"/v1/audit/export?from={as_of(now() + timedelta(minutes=1))}", headers=AUDITOR)
    assert (await later.read()) == b""


def run_cli_verify(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ONESTOP_DATABASE_URL": settings.database_url or "", "ONESTOP_JWT_SECRET": JWT_SECRET, **KEY_ENV}
    return subprocess.run([sys.executable, "-m", "onestop.cli", "audit", "verify"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


async def test_changing_one_stored_event_is_reported_by_verify_over_http_and_the_cli_at_that_position(audited: Harness) -> None:
    api = audited
    for i in range(4):
        state = await api.submit()
        await api.act(state["id"], "approve" if i % 2 else "reject", {"note": "ok"} if i % 2 else {"reason": "no"})
    head = await wait_until_followed(api.settings)
    intact = await read(api, "/v1/audit/verify", AUDITOR)
    assert intact["status"] == "intact" and intact["checked"] == api.event_count() == 12
    assert intact["head"]["position"] == head and len(intact["head"]["link"]) == 64
    cli = run_cli_verify(api.settings)
    assert cli.returncode == 0 and json.loads(cli.stdout)["status"] == "intact"

    tampered = 7  # the third request's Submitted event: someone moves it to another organisation
    with psycopg.connect(api.settings.database.conninfo(), autocommit=True) as conn:
        changed = conn.execute("UPDATE onestop_events SET state = convert_to(replace(convert_from(state, 'UTF8'), 'MUN-SAENSUK', 'MUN-PHRAE'), 'UTF8')"
                               " WHERE notification_id = %s AND topic = 'onestop:ServiceRequest.Submitted'", (tampered,))
        assert changed.rowcount == 1
    broken = await read(api, "/v1/audit/verify", ADMIN)
    assert broken["status"] == "broken" and broken["first_broken_position"] == tampered and broken["checked"] == tampered - 1
    cli = run_cli_verify(api.settings)
    assert cli.returncode == 1
    assert json.loads(cli.stdout)["first_broken_position"] == tampered


async def test_a_deleted_event_is_reported_at_its_position(audited: Harness) -> None:
    for _ in range(3):
        await audited.submit()
    await wait_until_followed(audited.settings)
    with psycopg.connect(audited.settings.database.conninfo(), autocommit=True) as conn:
        conn.execute("DELETE FROM onestop_events WHERE notification_id = 4")
    verdict = await read(audited, "/v1/audit/verify", AUDITOR)
    assert verdict["status"] == "broken" and verdict["first_broken_position"] == 4
    assert (await audited.client.get("/v1/audit/verify", headers=INTEGRATOR)).status == 403
