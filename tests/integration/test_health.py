"""Health that tells the truth: followers' positions, lag, election and stalls from
PostgreSQL; set-aside events; liveness and readiness; no addresses for anonymous callers."""

from __future__ import annotations

import asyncio
import dataclasses

import psycopg

from onestop.settings import Settings
from infrastructure.views.recorder import FAILURES_VIEW
from tests.integration.api_harness import (
    FollowingProjectorThread, Harness, complaint, eventually, start_harness, token, wait_until_followed, write_an_old_style_assignment,
)

ADMIN = token("admin", "ops")


async def _health(harness, headers=None):  # type: ignore[no-untyped-def]
    response = await harness.client.get("/v1/health", headers=headers or {})
    return response.status, await response.json()


async def test_health_reports_each_follower_running_at_the_log_head_while_the_projector_holds_its_lock(settings: Settings) -> None:
    harness = await start_harness(settings)
    try:
        with FollowingProjectorThread(settings):
            for _ in range(3):
                await harness.submit(complaint())
            head = await wait_until_followed(settings)
            status, body = await _health(harness)
            assert status == 200
            for name in ("projector", "feed", "audit_chain"):
                assert body["followers"][name]["state"] == "running", body
                assert body["followers"][name]["position"] == head and body["followers"][name]["lag"] == 0
            # No dispatcher runs in this test: nobody holds its lock, so it is down and health degraded.
            assert body["followers"]["dispatcher"]["state"] == "down"
            assert body["status"] == "degraded" and any("dispatcher" in r for r in body["reasons"])
    finally:
        await harness.client.close()


async def test_a_second_projector_stands_by_and_health_counts_it(settings: Settings) -> None:
    from infrastructure.eventstore.following import standby_name

    harness = await start_harness(settings)
    try:
        # A copy that is about to take the lock (its session says it stands by) while nobody
        # holds it: the projector is in standby, not down.
        with psycopg.connect(settings.database.conninfo(), autocommit=True, application_name=standby_name("projector")):
            _, body = await _health(harness)
            assert body["followers"]["projector"]["state"] == "standby" and body["followers"]["projector"]["standby"] == 1, body

        async def down() -> dict | None:  # type: ignore[type-arg]
            # (PostgreSQL ends the closed session's backend a moment after the client leaves.)
            _, body = await _health(harness)
            projector = body["followers"]["projector"]
            return body if projector["state"] == "down" and projector["standby"] == 0 else None
        await eventually(down, 10, "the projector down once the waiting copy has left")
        # Two projectors: one is elected and runs, the other stands by.
        with FollowingProjectorThread(settings), FollowingProjectorThread(settings):
            await harness.submit(complaint())
            await wait_until_followed(settings)

            async def one_running_one_waiting() -> dict | None:  # type: ignore[type-arg]
                _, body = await _health(harness)
                projector = body["followers"]["projector"]
                feed = body["followers"]["feed"]
                return body if projector["state"] == "running" and projector["standby"] == 1 and feed["standby"] == 1 else None
            body = await eventually(one_running_one_waiting, 10, "one projector running and one standing by, with its feed")
            assert body["followers"]["dispatcher"]["standby"] == 0
    finally:
        await harness.client.close()


async def test_a_follower_whose_lag_does_not_shrink_is_stalled_and_health_is_degraded(settings: Settings) -> None:
    harness = await start_harness(dataclasses.replace(settings, stall_seconds=0.5))
    try:
        # Hold the projector's election lock without following: events wait, nothing moves.
        from infrastructure.views.projector import ADVISORY_LOCK_KEY

        with psycopg.connect(settings.database.conninfo(), autocommit=True) as holder:
            assert holder.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()[0]
            await harness.submit(complaint())
            _, first = await _health(harness)
            assert first["followers"]["projector"]["state"] == "running" and first["followers"]["projector"]["lag"] > 0
            await asyncio.sleep(0.7)
            status, body = await _health(harness)
            assert status == 200 and body["status"] == "degraded"
            assert body["followers"]["projector"]["state"] == "stalled"
            assert any("projector is stalled" in r for r in body["reasons"])
    finally:
        await harness.client.close()


async def test_set_aside_events_degrade_health_and_are_named_by_view(api: Harness) -> None:
    # An event written by an older release that the views cannot apply: the projector sets it aside.
    template = await api.submit()
    assert (await api.act(template["id"], "assign", {"officer": "officer.b"})).status == 200
    target = await api.submit()
    write_an_old_style_assignment(api, template["id"], target["id"])

    async def set_aside() -> bool:
        with psycopg.connect(api.settings.database.conninfo()) as conn:
            return conn.execute("SELECT count(*) FROM projection_failures").fetchone()[0] == 1

    await eventually(set_aside, 10, "the projector to set the event aside")
    _, body = await _health(api)
    assert body["status"] == "degraded"
    assert body["projection_failures"] == {"count": 1, "views": {FAILURES_VIEW: 1}}
    assert any(f"{FAILURES_VIEW}: 1" in r for r in body["reasons"])


async def test_health_shows_addresses_and_errors_to_admins_only(settings: Settings) -> None:
    harness = await start_harness(dataclasses.replace(settings, registry_url="http://127.0.0.1:9/registry"))
    try:
        _, anonymous = await _health(harness)
        text = str(anonymous)
        assert "url" not in text and "127.0.0.1" not in text and settings.database.dbname not in text
        assert anonymous["dependencies"]["registry"]["status"] == "down"
        _, admin = await _health(harness, ADMIN)
        assert admin["dependencies"]["registry"]["url"] == "http://127.0.0.1:9/registry"
        assert settings.database.dbname in admin["dependencies"]["database"]["url"]
        _, citizen = await _health(harness, token("citizen", "3100600445635"))
        assert "url" not in str(citizen)
    finally:
        await harness.client.close()


async def test_live_answers_and_ready_follows_the_database(settings: Settings) -> None:
    harness = await start_harness(settings)
    try:
        assert (await harness.client.get("/v1/health/live")).status == 200
        assert (await harness.client.get("/v1/health/ready")).status == 200
        from api.app_key import CTX

        await harness.client.app[CTX].read_model.pool.close()
        ready = await harness.client.get("/v1/health/ready")
        assert ready.status == 503
        status, body = await _health(harness)
        assert status == 503 and body["status"] == "down"
    finally:
        await harness.client.close()


async def test_verify_says_how_far_it_checked_and_how_far_behind_the_log_head_that_is(settings: Settings) -> None:
    harness = await start_harness(settings)
    try:
        with FollowingProjectorThread(settings):
            for _ in range(2):
                await harness.submit(complaint())
            chained = await wait_until_followed(settings)
        for _ in range(3):  # the chain's follower is stopped: these are not chained
            await harness.submit(complaint())
        verdict = await (await harness.client.get("/v1/audit/verify", headers=ADMIN)).json()
        assert verdict["status"] == "intact" and verdict["checked_to"] == chained
        assert verdict["behind"] == 6 and verdict["complete"] is False  # two events a complaint
        with FollowingProjectorThread(settings):
            await wait_until_followed(settings)
        verdict = await (await harness.client.get("/v1/audit/verify", headers=ADMIN)).json()
        assert verdict["behind"] == 0 and verdict["complete"] is True
    finally:
        await harness.client.close()
