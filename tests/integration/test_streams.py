"""Integrators' event streams: the catch-up feed and the live SSE stream, on the real
PostgreSQL with the projector (and its followers) running."""

from __future__ import annotations

from dataclasses import replace

import asyncio
import time
from typing import Any, AsyncIterator

import orjson
import psycopg
import pytest
from cloudevents.v1.http import from_json

from api.auth import make_token
from onestop.settings import Settings
from tests.conftest import JWT_SECRET
from tests.integration.api_harness import (
    CITIZEN, CITIZEN_ID, INTEGRATOR, OFFICER, FollowingProjectorThread, Harness, complaint, serving, wait_until_followed,
)

pytestmark = pytest.mark.postgres

FLYER = {"description": "ประกาศงานวัด", "area": "ตลาด", "start_date": "2026-12-01", "end_date": "2026-12-03", "quantity": 20}


@pytest.fixture
async def integrated(settings: Settings) -> AsyncIterator[Harness]:
    """The API with the projector and its followers (feed, chain), heartbeats every 0.3 s."""
    async with serving(replace(settings, sse_heartbeat_seconds=0.3), FollowingProjectorThread) as harness:
        yield harness


async def some_history(api: Harness) -> None:
    """Requests in two organisations, actions on them, and a fee paid in cash."""
    first = await api.submit()
    await api.act(first["id"], "assign", {"officer": "officer.b"})
    await api.act(first["id"], "approve", {"note": "ok"})
    await api.submit(complaint(organization="MUN-PHRAE"))
    paying = await api.submit(complaint(service="local.flyer-permit", details=FLYER))
    paid = await api.client.post(f"/v1/payments/{paying['payment']['id']}/record-cash", json={"amount_satang": 20000}, headers=OFFICER)
    assert paid.status == 200, await paid.text()


def logged(settings: Settings) -> list[tuple[int, str, int]]:
    """Every event of the log the feed publishes (internal counters, such as a slot's seats or a
    receipt book's numbers, are not published)."""
    from application.cloudevents import is_published

    with psycopg.connect(settings.database.conninfo()) as conn:
        return [(r[0], str(r[1]), r[2]) for r in conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic FROM onestop_events ORDER BY notification_id")
            if is_published(r[3])]


async def read_feed(api: Harness, query: str = "", limit: int = 3, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        response = await api.client.get(f"/v1/streams/events?limit={limit}&after={cursor}{query}", headers=headers or INTEGRATOR)
        assert response.status == 200, await response.text()
        page = await response.json()
        items += page["items"]
        if not page["items"]:
            return items
        assert page["next_cursor"] > cursor
        cursor = page["next_cursor"]


async def test_the_feed_gives_every_event_once_in_log_order_and_the_sdk_parses_each(integrated: Harness) -> None:
    await some_history(integrated)
    await wait_until_followed(integrated.settings)
    events = await read_feed(integrated)
    log = logged(integrated.settings)
    assert [(int(e["sequence"]), e["subject"], int(e["id"].rsplit(".", 1)[1])) for e in events] == log
    for event in events:
        parsed = from_json(orjson.dumps(event))
        assert parsed["specversion"] == "1.0" and parsed["type"].startswith("th.onestop.")
        assert parsed["source"] in ("/onestop/MUN-SAENSUK", "/onestop/MUN-PHRAE")
    text = str(events)
    assert CITIZEN_ID not in text and "สมชาย" not in text
    types = [e["type"] for e in events]
    assert "th.onestop.payment.received.v1" in types and "th.onestop.service-request.approved.v1" in types
    # Payment events carry the organisation of the request they are for.
    assert all(e["source"] == "/onestop/MUN-SAENSUK" for e in events if e["type"].startswith("th.onestop.payment."))


async def test_the_feed_filters_by_organization_and_type_without_skipping_any_match(integrated: Harness) -> None:
    await some_history(integrated)
    await wait_until_followed(integrated.settings)
    everything = await read_feed(integrated, limit=100)
    phrae = await read_feed(integrated, "&organization=MUN-PHRAE", limit=1)
    assert phrae == [e for e in everything if e["source"] == "/onestop/MUN-PHRAE"] and len(phrae) == 2
    wanted = {"th.onestop.service-request.submitted.v1", "th.onestop.payment.received.v1"}
    typed = await read_feed(integrated, "&types=" + ",".join(sorted(wanted)), limit=2)
    assert typed == [e for e in everything if e["type"] in wanted] and len(typed) == 4
    # An integrator of one organisation sees its own events only.
    own = {"Authorization": f"Bearer {make_token(JWT_SECRET, sub='phrae-it', role='integrator', org='MUN-PHRAE')}"}
    assert await read_feed(integrated, headers=own) == phrae
    refused = await integrated.client.get("/v1/streams/events?organization=MUN-SAENSUK", headers=own)
    assert refused.status == 403


async def test_bad_feed_parameters_are_refused_naming_the_field_and_others_may_not_read(integrated: Harness) -> None:
    for query, field in (("after=abc", "after"), ("types=th.onestop.nothing.v1", "types"), ("limit=0", "limit"), ("organization=MUN-NOWHERE", "organization")):
        response = await integrated.client.get(f"/v1/streams/events?{query}", headers=INTEGRATOR)
        assert response.status == 400, query
        assert response.content_type == "application/problem+json"
        assert (await response.json())["errors"][0]["field"] == field
    assert (await integrated.client.get("/v1/streams/events", headers=CITIZEN)).status == 403
    assert (await integrated.client.get("/v1/streams/events")).status == 401


async def read_sse(response: Any, until: int, *, timeout: float = 10.0) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """Read events until ``until`` of them came; return them with the heartbeats seen."""
    events: list[tuple[str, dict[str, Any]]] = []
    heartbeats = 0
    event_id, data = None, None
    deadline = time.monotonic() + timeout
    while len(events) < until:
        line = await asyncio.wait_for(response.content.readline(), max(0.1, deadline - time.monotonic()))
        text = line.decode().rstrip("\n")
        if text.startswith(": heartbeat"):
            heartbeats += 1
        elif text.startswith("id: "):
            event_id = text[4:]
        elif text.startswith("data: "):
            data = text[6:]
        elif text == "" and data is not None:
            parsed = from_json(data.encode())
            assert parsed["sequence"] == event_id
            events.append((event_id, {"id": parsed["id"], "type": parsed["type"]}))  # type: ignore[arg-type]
            event_id, data = None, None
    return events, heartbeats


async def test_an_sse_client_that_disconnects_and_resumes_with_last_event_id_misses_nothing_and_gets_nothing_twice(integrated: Harness) -> None:
    api = integrated
    await api.submit()
    first = await api.client.get("/v1/streams/events/live", headers=INTEGRATOR)
    assert first.status == 200 and first.headers["Content-Type"].startswith("text/event-stream")

    async def keep_writing() -> None:
        for i in range(12):
            state = await api.submit()
            if i % 2:
                await api.act(state["id"], "reject", {"reason": "duplicate"})

    writer = asyncio.create_task(keep_writing())
    seen, _ = await read_sse(first, until=7)
    first.close()  # the client goes away in the middle of the writes
    await writer
    total = await wait_until_followed(api.settings)
    expected = len(logged(api.settings))
    resumed = await api.client.get("/v1/streams/events/live", headers={**INTEGRATOR, "Last-Event-ID": seen[-1][0]})
    rest, _ = await read_sse(resumed, until=expected - len(seen))
    resumed.close()
    ids = [event_id for event_id, _ in seen + rest]
    assert len(ids) == len(set(ids)) == expected
    assert [int(i) for i in ids] == [p for p, _, _ in logged(api.settings)]
    assert int(ids[-1]) == total


async def test_an_idle_live_stream_sends_heartbeats_and_then_new_events(integrated: Harness) -> None:
    response = await integrated.client.get("/v1/streams/events/live?types=th.onestop.service-request.submitted.v1", headers=INTEGRATOR)
    assert response.status == 200
    started = time.monotonic()
    heartbeats = 0
    while heartbeats < 2:
        line = await asyncio.wait_for(response.content.readline(), 5)
        heartbeats += line.startswith(b": heartbeat")
    assert time.monotonic() - started < 3
    await integrated.submit()
    events, _ = await read_sse(response, until=1)
    assert events[0][1]["type"] == "th.onestop.service-request.submitted.v1"
    response.close()
