"""``GET /metrics``: Prometheus text with HTTP requests by route, followers, jobs and more."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from onestop.settings import Settings
from tests.integration.api_harness import CITIZEN, FollowingProjectorThread, complaint, start_harness, wait_until_followed


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_count_requests_by_route_not_raw_url_and_report_followers_and_jobs(settings: Settings) -> None:
    harness = await start_harness(settings)
    try:
        with FollowingProjectorThread(settings):
            created = await harness.submit(complaint())
            await harness.client.get(f"/v1/service-requests/{created['id']}", headers=CITIZEN)
            await harness.client.get(f"/v1/service-requests/{uuid.uuid4()}", headers=CITIZEN)  # 404
            head = await wait_until_followed(settings)
            with psycopg.connect(settings.database.conninfo(), autocommit=True) as conn:
                conn.execute("INSERT INTO jobs (id, kind, status) VALUES (%s, 'fulfil', 'pending'), (%s, 'fulfil', 'failed')", (uuid.uuid4(), uuid.uuid4()))
            response = await harness.client.get("/metrics")
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
            got = samples(await response.text())
        route = "/v1/service-requests/{id}"
        assert got[("onestop_http_requests_total", (("method", "GET"), ("route", route), ("status", "200")))] == 1
        assert got[("onestop_http_requests_total", (("method", "GET"), ("route", route), ("status", "404")))] == 1
        assert got[("onestop_http_requests_total", (("method", "POST"), ("route", "/v1/service-requests"), ("status", "201")))] == 1
        assert got[("onestop_http_request_duration_seconds_count", (("method", "GET"), ("route", route)))] == 2
        assert not any(created["id"] in str(labels) for _, labels in got)
        assert got[("onestop_follower_position", (("follower", "projector"),))] == head
        assert got[("onestop_follower_lag_events", (("follower", "audit_chain"),))] == 0
        assert got[("onestop_jobs", (("kind", "fulfil"), ("state", "pending")))] == 1
        assert got[("onestop_jobs", (("kind", "fulfil"), ("state", "failed")))] == 1
        assert got[("onestop_sse_streams_open", ())] == 0
    finally:
        await harness.client.close()


async def test_metrics_say_where_submissions_spend_their_time(settings: Settings) -> None:
    harness = await start_harness(settings)
    try:
        await asyncio.gather(*(harness.submit(complaint()) for _ in range(5)))
        got = samples(await (await harness.client.get("/metrics")).text())
        phase = lambda name: got[("onestop_submit_phase_seconds_total", (("phase", name),))]  # noqa: E731
        assert got[("onestop_submits_total", ())] == 5
        assert 1 <= got[("onestop_submit_batches_total", ())] <= 5
        assert all(phase(name) >= 0 for name in ("read", "queued", "handoff", "validate", "store", "respond"))
        # Each batch validated and stored something, and a submission waited for all of its batch.
        assert phase("validate") > 0 and phase("store") > 0
        for name in ("validate", "store"):
            assert 0 < got[("onestop_submit_batch_seconds_total", (("phase", name),))] <= phase(name)
        # The phases happen inside the handler: together no longer than the requests took.
        inside = sum(phase(name) for name in ("read", "queued", "handoff", "validate", "store", "respond"))
        took = got[("onestop_http_request_duration_seconds_sum", (("method", "POST"), ("route", "/v1/service-requests")))]
        assert inside <= took
    finally:
        await harness.client.close()
