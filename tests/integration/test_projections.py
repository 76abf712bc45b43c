"""Views are exact functions of the log: rebuilt from the start they come out the same."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from onestop.bootstrap import build_back_office, build_views
from infrastructure.views.projector import Projector
from tests.conftest import JWT_SECRET, KEY_ENV, ROOT
from tests.integration.api_harness import CITIZEN, OFFICER, Harness, complaint

pytestmark = pytest.mark.postgres

FLYER = {"description": "d", "area": "ตลาด", "start_date": "2026-12-01", "end_date": "2026-12-03", "quantity": 20}


async def _a_busy_day(api: Harness) -> int:
    """Requests in every state, and a payment, all through the API."""
    last = 0
    for i in range(12):
        state = await api.submit()
        if i % 3 == 0:
            state = await (await api.act(state["id"], "assign", {"officer": "officer.b"})).json()
            state = await (await api.act(state["id"], "approve", {"note": "ok"})).json()
        if i % 3 == 1:
            state = await (await api.act(state["id"], "reject", {"reason": "duplicate"})).json()
        last = max(last, state["position"])
    paying = await api.submit(complaint(service="local.flyer-permit", details=FLYER))
    await api.client.get(f"/v1/service-requests/{paying['id']}?min_position={paying['position']}", headers=CITIZEN)
    paid = await api.client.post(f"/v1/payments/{paying['payment']['id']}/record-cash", json={"amount_satang": 20000}, headers=OFFICER)
    return max(last, (await paid.json())["position"])


async def test_rebuild_gives_identical_views(api: Harness) -> None:
    position = await _a_busy_day(api)
    response = await api.client.get(f"/v1/service-requests?min_position={position}&limit=1", headers=OFFICER)
    assert response.status == 200
    app = build_back_office(api.settings)
    try:
        views = build_views(app)
        before = views.checksum()
        assert before["request_summaries"].startswith("13:")
        assert before["daily_counts"] != "0:"
        refused = subprocess.run(
            [sys.executable, "-m", "onestop.cli", "projector", "--rebuild"],
            env={**os.environ, "ONESTOP_DATABASE_URL": api.settings.database_url, "ONESTOP_JWT_SECRET": JWT_SECRET, **KEY_ENV},
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        assert refused.returncode != 0 and "a projector is running" in refused.stderr
        api.stop_projector()
        env = {**os.environ, "ONESTOP_DATABASE_URL": api.settings.database_url, "ONESTOP_JWT_SECRET": JWT_SECRET, **KEY_ENV}
        result = subprocess.run(
            [sys.executable, "-m", "onestop.cli", "projector", "--rebuild", "--batch-size", "7"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "same as before" in result.stdout and "was " not in result.stdout
        assert views.checksum() == before
    finally:
        app.close()


async def test_the_work_queue_holds_open_items_oldest_first_and_counts_add_up(api: Harness) -> None:
    position = await _a_busy_day(api)
    await api.client.get(f"/v1/service-requests?min_position={position}", headers=OFFICER)
    with psycopg.connect(api.settings.database.conninfo()) as conn:
        queue = conn.execute("SELECT status, submitted_at, due_at FROM work_queue WHERE organization = 'MUN-SAENSUK' ORDER BY submitted_at").fetchall()
        counts = conn.execute("SELECT sum(submitted), sum(approved), sum(rejected), sum(paid_satang) FROM daily_counts").fetchone()
    # Approved requests stay in the queue until they are completed; rejected ones leave it.
    assert sorted(row[0] for row in queue) == ["approved"] * 4 + ["in_review"] * 5
    assert [r[1] for r in queue] == sorted(r[1] for r in queue)
    assert all(r[2] > r[1] for r in queue)
    assert counts == (13, 4, 4, 20000)


def test_a_second_projector_stands_by_while_the_first_holds_the_lock(settings) -> None:  # type: ignore[no-untyped-def]
    import threading

    first_app, second_app = build_back_office(settings), build_back_office(settings)
    first, second = Projector(first_app, build_views(first_app)), Projector(second_app, build_views(second_app))
    stop_first, stop_second = threading.Event(), threading.Event()
    applied: list[str] = []
    second.catch_up = lambda *_, **__: applied.append("second") or 0  # type: ignore[method-assign]
    t1 = threading.Thread(target=first.run, args=(stop_first, settings.database.conninfo()), kwargs={"poll_seconds": 0.1})
    t2 = threading.Thread(target=second.run, args=(stop_second, settings.database.conninfo()), kwargs={"poll_seconds": 0.1})
    t1.start()
    import time

    time.sleep(0.5)
    t2.start()
    time.sleep(0.8)
    assert applied == []  # the second never ran while the first held the lock
    stop_first.set()
    t1.join(5)
    time.sleep(0.8)
    assert "second" in applied  # and took over once it was gone
    stop_second.set()
    t2.join(5)
    first_app.close()
    second_app.close()


async def test_the_views_come_out_the_same_when_every_envelope_is_opened(api: Harness) -> None:
    """The projector does not open an envelope holding only a citizen actor's sub (no view reads
    who acted): folding the same log with every envelope opened gives the same views, so a view
    that came to read an actor's sub would fail here before it read a gap."""
    position = await _a_busy_day(api)
    withdrawn = await api.submit()
    await api.act(withdrawn["id"], "withdraw", {"reason": "ยื่นผิด"}, headers=CITIZEN)
    response = await api.client.get(f"/v1/service-requests?min_position={position}&limit=1", headers=OFFICER)
    assert response.status == 200
    api.stop_projector()
    app = build_back_office(api.settings)
    try:
        views = build_views(app)
        Projector(app, views).catch_up()
        skipping = views.checksum()
        with psycopg.connect(api.settings.database.conninfo(), autocommit=True) as conn:
            sealed_sub_only = conn.execute(
                "SELECT count(*) FROM onestop_events WHERE convert_from(state, 'UTF8') LIKE '%\"_sealed_\":{\"actor.sub\":null}%'").fetchone()[0]
        assert sealed_sub_only > 0  # the log has such envelopes: the citizens' own steps

        class OpensEverything(Projector):
            unread = frozenset()

        views.reset()
        OpensEverything(app, views).catch_up()
        assert views.checksum() == skipping
        assert skipping["request_summaries"].startswith("14:")
    finally:
        app.close()
