"""Abuse limits and the server's edges: rate limits, the live-stream cap, slow clients, and the
answers aiohttp gives by itself (oversize headers, 405) in problem+json."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, AsyncIterator

import pytest

from onestop.settings import Settings
from tests.integration.api_harness import CITIZEN, INTEGRATOR, OTHER_CITIZEN, Harness, complaint, start_harness, token

pytestmark = pytest.mark.postgres

PROBLEM = "application/problem+json"


@asynccontextmanager
async def api_with(settings: Settings, **changes: Any) -> AsyncIterator[Harness]:
    """The API alone (no projector: these tests read nothing from the views)."""
    harness = await start_harness(replace(settings, **changes))
    try:
        yield harness
    finally:
        await harness.client.close()


def assert_too_many(response: Any) -> int:
    assert response.status == 429
    assert response.content_type == PROBLEM
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    return int(retry_after)


async def test_a_token_over_its_burst_gets_429_with_retry_after_and_another_token_is_unaffected(settings: Settings) -> None:
    async with api_with(settings, rate_subject_per_second=0.5, rate_subject_burst=5) as api:
        for _ in range(5):
            response = await api.client.get("/v1/services", headers=CITIZEN)
            assert response.status == 200
        refused = await api.client.get("/v1/services", headers=CITIZEN)
        assert assert_too_many(refused) == 2  # one token every 2 s
        body = await refused.json(content_type=PROBLEM)
        assert body["status"] == 429 and body["instance"] == "/v1/services"
        other = await api.client.get("/v1/services", headers=OTHER_CITIZEN)
        assert other.status == 200


async def test_a_submission_over_the_limit_is_refused_before_anything_is_written(settings: Settings) -> None:
    async with api_with(settings, rate_subject_per_second=0.5, rate_subject_burst=2) as api:
        for _ in range(2):
            assert (await api.client.get("/v1/services", headers=CITIZEN)).status == 200
        before = api.event_count()
        refused = await api.client.post("/v1/service-requests", json=complaint(), headers={**CITIZEN, "Idempotency-Key": "k-429"})
        assert_too_many(refused)
        assert api.event_count() == before


async def test_one_address_over_its_burst_gets_429_even_without_a_token(settings: Settings) -> None:
    async with api_with(settings, rate_ip_per_second=0.5, rate_ip_burst=4) as api:
        for _ in range(4):
            assert (await api.client.get("/v1/openapi.json")).status == 200
        assert_too_many(await api.client.get("/v1/health"))
        # A token does not help: the address is over its limit whoever calls.
        assert_too_many(await api.client.get("/v1/services", headers=OTHER_CITIZEN))


async def test_bank_notices_are_not_starved_by_the_address_limit(settings: Settings) -> None:
    async with api_with(settings, rate_ip_per_second=0.5, rate_ip_burst=2, rate_notice_per_second=0.5, rate_notice_burst=3) as api:
        for _ in range(2):
            await api.client.get("/v1/health")
        assert_too_many(await api.client.get("/v1/health"))
        statuses = []
        for _ in range(4):
            response = await api.client.post("/v1/payment-notifications/sim-bank", data=b"{}", headers={"Content-Type": "application/json"})
            statuses.append(response.status)
        # Their own bucket: three get through to the handler (which refuses the missing signature), the fourth waits.
        assert all(status != 429 for status in statuses[:3]), statuses
        assert statuses[3] == 429


async def test_with_rate_limits_off_the_same_burst_goes_through(settings: Settings) -> None:
    async with api_with(settings, rate_limits=False, rate_subject_per_second=0.5, rate_subject_burst=2,
                        rate_ip_per_second=0.5, rate_ip_burst=2) as api:
        statuses = [(await api.client.get("/v1/services", headers=CITIZEN)).status for _ in range(20)]
        assert statuses == [200] * 20


async def test_a_subject_may_hold_only_so_many_live_streams_and_closing_one_frees_a_place(settings: Settings) -> None:
    async with api_with(settings, sse_max_streams_per_subject=2) as api:
        first = await api.client.get("/v1/streams/events/live", headers=INTEGRATOR)
        second = await api.client.get("/v1/streams/events/live", headers=INTEGRATOR)
        assert first.status == second.status == 200
        refused = await api.client.get("/v1/streams/events/live", headers=INTEGRATOR)
        assert_too_many(refused)
        # Another subject has its own places.
        other = await api.client.get("/v1/streams/events/live", headers=token("integrator", "another-integrator"))
        assert other.status == 200
        other.close()
        first.close()
        # The server sees the stream end at its next look at the connection (within a poll).
        deadline = time.monotonic() + 10
        while True:
            third = await api.client.get("/v1/streams/events/live", headers=INTEGRATOR)
            if third.status == 200:
                third.close()
                break
            assert_too_many(third)
            assert time.monotonic() < deadline, "closing a stream did not free its place"
            await asyncio.sleep(0.2)
        second.close()


async def _raw(api: Harness) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(api.client.host, api.client.port)


async def test_a_client_that_sends_its_headers_too_slowly_is_dropped(settings: Settings) -> None:
    async with api_with(settings, header_timeout_seconds=1.0) as api:
        reader, writer = await _raw(api)
        started = time.monotonic()
        writer.write(b"GET /v1/health HTTP/1.1\r\nHost: onestop\r\nX-Slow: half a hea")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
        elapsed = time.monotonic() - started
        writer.close()
        assert data == b""  # closed, nothing answered
        assert 0.5 <= elapsed < 5, elapsed


async def test_a_client_that_sends_its_body_too_slowly_gets_408_and_is_dropped(settings: Settings) -> None:
    async with api_with(settings, body_timeout_seconds=1.0) as api:
        reader, writer = await _raw(api)
        started = time.monotonic()
        writer.write(b"POST /v1/service-requests HTTP/1.1\r\nHost: onestop\r\nAuthorization: " + CITIZEN["Authorization"].encode()
                     + b"\r\nContent-Type: application/json\r\nIdempotency-Key: slow-body\r\nContent-Length: 200\r\n\r\n{\"service\":")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
        elapsed = time.monotonic() - started
        writer.close()
        assert data.startswith(b"HTTP/1.1 408"), data[:80]
        assert PROBLEM.encode() in data
        assert elapsed < 5, elapsed
        assert api.event_count() == 0


async def test_an_oversize_header_gets_a_problem_json_400(settings: Settings) -> None:
    async with api_with(settings) as api:
        response = await api.client.get("/v1/health", headers={"X-Big": "a" * 9000})
        assert response.status == 400
        assert response.content_type == PROBLEM
        body = await response.json(content_type=PROBLEM)
        assert body["status"] == 400 and body["title"] == "Bad Request"
        assert "long" in body["detail"] or "bytes" in body["detail"]


async def test_a_malformed_request_line_gets_a_problem_json_400(settings: Settings) -> None:
    async with api_with(settings) as api:
        reader, writer = await _raw(api)
        writer.write(b"GET /v1/health NOT-HTTP\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        assert data.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), data[:80]
        assert b"Content-Type: " + PROBLEM.encode() in data


async def test_a_known_path_with_another_method_gets_405_problem_json_with_allow(settings: Settings) -> None:
    async with api_with(settings) as api:
        response = await api.client.delete("/v1/services", headers=CITIZEN)
        assert response.status == 405
        assert response.content_type == PROBLEM
        assert "GET" in response.headers["Allow"]
        assert (await response.json(content_type=PROBLEM))["status"] == 405


def test_openapi_lists_429_with_retry_after_on_every_operation() -> None:
    from api.openapi import openapi_document

    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            assert "Retry-After" in operation["responses"]["429"]["headers"], (method, path)
