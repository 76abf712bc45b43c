"""Browsers as clients, on the real PostgreSQL: CORS for listed origins (preflights on every
route, credentials, exposed headers, problem answers readable), single-use tickets for the live
stream (EventSource cannot send Authorization), Link rel="next" on every paged list, and the
interactive documentation served from the package."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import psycopg
import pytest
from aiohttp import web
from yarl import URL

from api.cors import ALLOWED_HEADERS, EXPOSED_HEADERS
from api.docs import ASSETS
from onestop.settings import Settings
from tests.integration.api_harness import (
    AUDITOR, CITIZEN, INTEGRATOR, OFFICER, FollowingProjectorThread, Harness, complaint, serving, start_harness, token,
)

pytestmark = pytest.mark.postgres

FRONT_END = "https://oss.example.go.th"
ELSEWHERE = "https://evil.example.com"
PROBLEM = "application/problem+json"
CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers",
                "Access-Control-Allow-Methods", "Access-Control-Allow-Headers")


@asynccontextmanager
async def api_with(settings: Settings, **changes: Any) -> AsyncIterator[Harness]:
    """The API alone (no projector), with ``changes`` to the settings."""
    harness = await start_harness(replace(settings, **changes))
    try:
        yield harness
    finally:
        await harness.client.close()


@pytest.fixture
async def browser_api(settings: Settings) -> AsyncIterator[Harness]:
    async with api_with(settings, cors_origins=(FRONT_END, "http://127.0.0.1:5173")) as harness:
        yield harness


def preflight(origin: str, method: str, headers: str = "") -> dict[str, str]:
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return asked


def no_cors_headers(response: Any) -> bool:
    return not any(name in response.headers for name in CORS_HEADERS)


def allows(response: Any, origin: str) -> None:
    """The answer lets a page of ``origin`` read it, with credentials, and the headers it needs."""
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"etag", "location", "link", "onestop-position", "retry-after"} <= exposed
    assert "origin" in response.headers.get("Vary", "").lower()


# -- CORS ------------------------------------------------------------------------------------------


async def test_a_preflight_from_a_listed_origin_allows_the_method_the_headers_and_credentials(browser_api: Harness) -> None:
    asked = "authorization, content-type, idempotency-key, if-match, x-csrf-token, last-event-id, x-purpose"
    response = await browser_api.client.options("/v1/service-requests", headers=preflight(FRONT_END, "POST", asked))
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == FRONT_END
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {h.lower() for h in ALLOWED_HEADERS}
    assert int(response.headers["Access-Control-Max-Age"]) > 0


async def test_every_route_answers_a_preflight_for_its_own_methods_from_a_listed_origin(settings: Settings) -> None:
    # Two preflights for each of the API's routes, from one address: more than the per-address
    # burst, which preflights count against like any call; this test is about CORS, not limits.
    async with api_with(settings, cors_origins=(FRONT_END, "http://127.0.0.1:5173"), rate_limits=False) as browser_api:
        await _preflight_every_route(browser_api)


async def _preflight_every_route(browser_api: Harness) -> None:
    values = {"id": str(uuid.uuid4()), "code": "MUN-SAENSUK", "action": "approve", "provider": "sim-bank", "asset": "swagger-ui.css",
              "national_id": "3100600445635", "tax_year": "2569", "issuer": "thaid"}
    checked = 0
    for resource in browser_api.client.app.router.resources():
        methods = {route.method for route in resource if route.method not in ("HEAD", "OPTIONS")}
        # An action of the resource's own kind (a recipient is suspended, a request approved).
        names = {**values, "action": "suspend"} if resource.canonical.startswith("/v1/allowances/") else values
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: names[m.group(1)], resource.canonical)
        for method in methods:
            response = await browser_api.client.options(path, headers=preflight("http://127.0.0.1:5173", method, "authorization"))
            assert response.status == 200, f"{method} {path}: {response.status}"
            assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:5173"
            checked += 1
        # A method the resource does not have is not allowed by the preflight either.
        if "DELETE" not in methods:
            refused = await browser_api.client.options(path, headers=preflight(FRONT_END, "DELETE"))
            assert refused.status == 403 and no_cors_headers(refused), path
    assert checked >= 30


async def test_a_preflight_from_an_unlisted_origin_is_refused_without_cors_headers(browser_api: Harness) -> None:
    response = await browser_api.client.options("/v1/service-requests", headers=preflight(ELSEWHERE, "POST", "authorization"))
    assert response.status == 403
    assert response.content_type == PROBLEM
    assert no_cors_headers(response)


async def test_a_preflight_asking_for_a_header_not_allowed_is_refused(browser_api: Harness) -> None:
    response = await browser_api.client.options("/v1/service-requests", headers=preflight(FRONT_END, "POST", "authorization, x-evil"))
    assert response.status == 403
    assert no_cors_headers(response)


async def test_a_listed_origin_may_read_answers_with_credentials_and_the_exposed_headers(browser_api: Harness) -> None:
    filed = await browser_api.client.post("/v1/service-requests", json=complaint(),
                                          headers={**CITIZEN, "Idempotency-Key": str(uuid.uuid4()), "Origin": FRONT_END})
    assert filed.status == 201, await filed.text()
    allows(filed, FRONT_END)
    assert set(EXPOSED_HEADERS) >= {"ETag", "Location", "Link", "OneStop-Position", "Retry-After"}
    services = await browser_api.client.get("/v1/services", headers={"Origin": "http://127.0.0.1:5173"})
    assert services.status == 200
    allows(services, "http://127.0.0.1:5173")
    # Without an Origin there are no CORS headers, but caches are still told answers vary by it.
    plain = await browser_api.client.get("/v1/services")
    assert no_cors_headers(plain) and plain.headers["Vary"] == "Origin"


async def test_an_unlisted_origin_gets_no_cors_headers_and_so_no_credentials(browser_api: Harness) -> None:
    for origin in (ELSEWHERE, "http://oss.example.go.th", FRONT_END + ":8443", "null"):
        response = await browser_api.client.get("/v1/service-requests", headers={**CITIZEN, "Origin": origin})
        assert response.status == 200
        assert no_cors_headers(response), origin


async def test_problem_answers_carry_the_cors_headers_so_the_page_can_read_why(browser_api: Harness) -> None:
    origin = {"Origin": FRONT_END}
    unauthorized = await browser_api.client.get("/v1/service-requests", headers=origin)
    bad_json = await browser_api.client.post("/v1/service-requests", data=b"{", headers={**CITIZEN, **origin, "Idempotency-Key": "k1",
                                                                                          "Content-Type": "application/json"})
    forbidden = await browser_api.client.get("/v1/audit/events", headers={**CITIZEN, **origin})
    not_found = await browser_api.client.get("/v1/no-such-thing", headers=origin)
    wrong_method = await browser_api.client.delete("/v1/services", headers=origin)
    for response, status in ((unauthorized, 401), (bad_json, 400), (forbidden, 403), (not_found, 404), (wrong_method, 405)):
        assert response.status == status
        assert response.content_type == PROBLEM
        allows(response, FRONT_END)
    assert "WWW-Authenticate" in unauthorized.headers
    # And from an origin not listed, the same problems stay unreadable.
    assert no_cors_headers(await browser_api.client.get("/v1/no-such-thing", headers={"Origin": ELSEWHERE}))


async def test_a_rate_limited_answer_carries_retry_after_readable_by_a_listed_origin(settings: Settings) -> None:
    async with api_with(settings, cors_origins=(FRONT_END,), rate_subject_burst=1, rate_subject_per_second=0.1) as api:
        headers = {**token("citizen", "3100600445635"), "Origin": FRONT_END}
        assert (await api.client.get("/v1/service-requests", headers=headers)).status == 200
        refused = await api.client.get("/v1/service-requests", headers=headers)
        assert refused.status == 429
        allows(refused, FRONT_END)
        assert refused.headers["Retry-After"].isdigit()


async def test_with_no_origins_listed_there_is_no_cross_origin_access_at_all(settings: Settings) -> None:
    async with api_with(settings) as api:
        response = await api.client.options("/v1/service-requests", headers=preflight(FRONT_END, "POST"))
        assert response.status == 405
        assert no_cors_headers(response)
        plain = await api.client.get("/v1/services", headers={"Origin": FRONT_END})
        assert plain.status == 200 and no_cors_headers(plain)


# -- live-stream tickets ----------------------------------------------------------------------------


@pytest.fixture
async def integrated(settings: Settings) -> AsyncIterator[Harness]:
    async with serving(replace(settings, sse_heartbeat_seconds=0.3, cors_origins=(FRONT_END,)), FollowingProjectorThread) as harness:
        yield harness


async def get_ticket(api: Harness, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await api.client.post("/v1/streams/tickets", headers=headers or INTEGRATOR)
    assert response.status == 201, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    return await response.json()


async def first_event(response: Any, timeout: float = 10.0) -> str:
    """The data line of the first event the stream sends."""
    deadline = time.monotonic() + timeout
    while True:
        line = await asyncio.wait_for(response.content.readline(), max(0.1, deadline - time.monotonic()))
        if line.startswith(b"data: "):
            return line[6:].decode()


async def test_a_ticket_opens_the_live_stream_once_without_an_authorization_header(integrated: Harness) -> None:
    ticket = await get_ticket(integrated)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", ticket["ticket"])
    lifetime = datetime.fromisoformat(ticket["expires_at"]) - datetime.now(timezone.utc)
    assert 50 <= lifetime.total_seconds() <= 61
    stream = await integrated.client.get(f"/v1/streams/events/live?ticket={ticket['ticket']}", headers={"Origin": FRONT_END})
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert stream.headers["Access-Control-Allow-Origin"] == FRONT_END
    await integrated.submit()
    assert "th.onestop.service-request.submitted.v1" in await first_event(stream)
    stream.close()
    again = await integrated.client.get(f"/v1/streams/events/live?ticket={ticket['ticket']}", headers={"Origin": FRONT_END})
    assert again.status == 401
    assert again.content_type == PROBLEM
    assert 'error="invalid_token"' in again.headers["WWW-Authenticate"]
    assert (await again.json())["errors"][0]["field"] == "ticket"
    allows(again, FRONT_END)


async def test_an_expired_ticket_is_refused(settings: Settings) -> None:
    async with api_with(settings, stream_ticket_ttl_seconds=1) as api:
        ticket = await get_ticket(api)
        await asyncio.sleep(1.5)
        response = await api.client.get(f"/v1/streams/events/live?ticket={ticket['ticket']}")
        assert response.status == 401 and response.content_type == PROBLEM


async def test_an_unknown_ticket_is_refused_and_a_ticket_is_no_bearer_token(browser_api: Harness) -> None:
    made_up = (await browser_api.client.get("/v1/streams/events/live?ticket=" + "A" * 43))
    assert made_up.status == 401 and made_up.content_type == PROBLEM
    ticket = await get_ticket(browser_api)
    as_bearer = await browser_api.client.get("/v1/streams/events", headers={"Authorization": f"Bearer {ticket['ticket']}"})
    assert as_bearer.status == 401


async def test_only_callers_who_may_read_the_stream_get_a_ticket_and_nothing_is_kept_for_the_others(browser_api: Harness) -> None:
    assert (await browser_api.client.post("/v1/streams/tickets")).status == 401
    for headers in (CITIZEN, OFFICER, AUDITOR):
        response = await browser_api.client.post("/v1/streams/tickets", headers=headers)
        assert response.status == 403 and response.content_type == PROBLEM
    assert tickets_kept(browser_api.settings) == []
    await get_ticket(browser_api, token("admin", "admin.one"))
    assert len(tickets_kept(browser_api.settings)) == 1


def tickets_kept(settings: Settings) -> list[tuple[bytes, str]]:
    with psycopg.connect(settings.database.conninfo()) as conn:
        return [(bytes(row[0]), row[1]) for row in conn.execute("SELECT ticket_hash, actor FROM stream_tickets")]


async def test_only_the_tickets_hash_is_stored_and_any_api_copy_redeems_it(settings: Settings) -> None:
    async with api_with(settings) as issuer, api_with(settings) as other:
        ticket = (await get_ticket(issuer))["ticket"]
        kept = tickets_kept(settings)
        assert kept[0][0] == hashlib.sha256(ticket.encode()).digest()
        assert ticket not in kept[0][1]
        stream = await other.client.get(f"/v1/streams/events/live?ticket={ticket}")
        assert stream.status == 200, await stream.text()
        stream.close()
        assert tickets_kept(settings) == []
        assert (await issuer.client.get(f"/v1/streams/events/live?ticket={ticket}")).status == 401


async def test_a_stream_opened_with_a_ticket_counts_against_its_subjects_open_streams(settings: Settings) -> None:
    async with api_with(settings, sse_max_streams_per_subject=1) as api:
        held = await api.client.get("/v1/streams/events/live", headers=INTEGRATOR)
        assert held.status == 200
        ticket = await get_ticket(api)
        refused = await api.client.get(f"/v1/streams/events/live?ticket={ticket['ticket']}")
        assert refused.status == 429 and refused.content_type == PROBLEM
        held.close()


async def test_a_ticket_keeps_the_organisation_of_the_integrator_it_was_issued_to(integrated: Harness) -> None:
    phrae = token("integrator", "phrae-it", "MUN-PHRAE")
    ticket = await get_ticket(integrated, phrae)
    refused = await integrated.client.get(f"/v1/streams/events/live?ticket={ticket['ticket']}&organization=MUN-SAENSUK")
    assert refused.status == 403
    ticket = await get_ticket(integrated, phrae)
    stream = await integrated.client.get(f"/v1/streams/events/live?ticket={ticket['ticket']}")
    assert stream.status == 200
    await integrated.submit()  # MUN-SAENSUK: not for this integrator
    await integrated.submit(complaint(organization="MUN-PHRAE"))
    assert '"source":"/onestop/MUN-PHRAE"' in await first_event(stream)
    stream.close()


# -- Link rel="next" --------------------------------------------------------------------------------


async def follow_links(api: Harness, url: str, headers: dict[str, str], parameter: str) -> tuple[list[Any], int]:
    """Every item of a list, page after page, following Link rel="next"; checks that each Link
    is this request's address with the cursor replaced by the page's next_cursor."""
    items: list[Any] = []
    pages = 0
    while True:
        response = await api.client.get(url, headers=headers)
        assert response.status == 200, await response.text()
        page = await response.json()
        items += page["items"]
        pages += 1
        link = response.headers.get("Link")
        if page["next_cursor"] is None or not page["items"]:
            assert link is None or not page["items"], f"{url}: a Link on the last page"
            return items, pages
        match = re.fullmatch(r'<([^>]+)>; rel="next"', link or "")
        assert match, f"{url}: no Link rel=next while next_cursor is {page['next_cursor']!r}"
        following = URL(match.group(1))
        asked = URL(url)
        assert following.path == asked.path
        assert following.query[parameter] == page["next_cursor"]
        assert {k: v for k, v in following.query.items() if k != parameter} == {k: v for k, v in asked.query.items() if k != parameter}
        url = str(following)
        assert pages < 20


async def test_every_paged_list_links_its_next_page(integrated: Harness) -> None:
    api = integrated
    for _ in range(3):
        await api.submit()
    with psycopg.connect(api.settings.database.conninfo(), autocommit=True) as conn:
        for i in range(3):
            conn.execute("INSERT INTO jobs (id, kind, organization, created_at) VALUES (%s, 'verify_person', 'MUN-SAENSUK', now() + %s * interval '1 s')",
                         (uuid.uuid4(), i))
        subscriptions = [uuid.uuid4() for _ in range(3)]
        for sub in subscriptions:
            conn.execute("INSERT INTO webhook_subscriptions (id, owner, url, secret, start_position, idempotency_key, request_hash)"
                         " VALUES (%s, 'pdc', 'https://93.184.216.34/hook', 'x', 0, %s, 'h')", (sub, str(sub)))
        for position in (1, 2, 3):
            conn.execute("INSERT INTO webhook_deliveries (subscription_id, position, event_id, type, subject, payload)"
                         " VALUES (%s, %s, 'e', 't', 's', '\\x00')", (subscriptions[0], position))
    await _wait_for_feed(api, 3)
    cases = [
        ("/v1/service-requests?limit=1&service=complaint&min_position=0", CITIZEN, "cursor", 3),
        ("/v1/organizations/MUN-SAENSUK/work-queue?limit=1", OFFICER, "cursor", 3),
        ("/v1/jobs?limit=1&status=pending", OFFICER, "cursor", 3),
        ("/v1/audit/events?limit=1&type=ServiceRequest.Submitted", AUDITOR, "after", 3),
        ("/v1/subscriptions?limit=1", INTEGRATOR, "cursor", 3),
        (f"/v1/subscriptions/{subscriptions[0]}/deliveries?limit=1", INTEGRATOR, "after", 3),
    ]
    for url, headers, parameter, expected in cases:
        items, pages = await follow_links(api, url, headers, parameter)
        assert len(items) == expected and pages >= expected, url
        assert len({str(item) for item in items}) == expected, url


async def test_the_feed_links_where_to_continue_even_when_nothing_is_new(integrated: Harness) -> None:
    await integrated.submit()
    await _wait_for_feed(integrated, 1)
    first = await integrated.client.get("/v1/streams/events?limit=1&types=th.onestop.service-request.submitted.v1", headers=INTEGRATOR)
    page = await first.json()
    assert first.headers["Link"] == f'</v1/streams/events?limit=1&types=th.onestop.service-request.submitted.v1&after={page["next_cursor"]}>; rel="next"'


async def _wait_for_feed(api: Harness, at_least: int) -> None:
    from tests.integration.api_harness import wait_until_followed

    await wait_until_followed(api.settings)
    deadline = time.monotonic() + 10
    while (await (await api.client.get("/v1/organizations/MUN-SAENSUK/work-queue", headers=OFFICER)).json())["items"].__len__() < at_least:
        assert time.monotonic() < deadline, "the views did not catch up"
        await asyncio.sleep(0.1)


# -- interactive documentation ----------------------------------------------------------------------


async def test_the_docs_page_is_html_that_loads_everything_from_this_server(browser_api: Harness) -> None:
    page = await browser_api.client.get("/v1/docs")
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    addresses = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert addresses and all(a.startswith("/v1/docs/") for a in addresses), addresses
    assert "<script>" not in html  # no inline script
    for address in addresses:
        asset = await browser_api.client.get(address)
        assert asset.status == 200, address
        assert asset.content_type == ASSETS[address.rsplit("/", 1)[1]]
        assert len(await asset.read()) > 0
    start = await (await browser_api.client.get("/v1/docs/onestop-docs.js")).text()
    assert '"/v1/openapi.json"' in start and "SwaggerUIBundle(" in start
    bundle = await browser_api.client.get("/v1/docs/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
    assert bundle.headers.get("Content-Encoding") == "gzip"
    body = await bundle.text()
    assert "SwaggerUIBundle" in body and "https://cdn" not in body[:2000]
    # Swagger UI 5: the first major version that renders OpenAPI 3.1.
    assert re.search(r'PACKAGE_VERSION:"5\.', body)
    document = await (await browser_api.client.get("/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.1")


async def test_a_file_the_docs_do_not_have_is_a_problem_404(browser_api: Harness) -> None:
    for name in ("swagger-editor.js", "..%2F..%2Fsettings.py", "LICENSE"):
        response = await browser_api.client.get(f"/v1/docs/{name}")
        assert response.status == 404 and response.content_type == PROBLEM, name


def test_cors_is_set_up_on_an_application_with_routes() -> None:
    """Guards the order in create_app: CORS must come after the routes it covers."""
    from api.cors import enable_cors

    app = web.Application()

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi")

    app.router.add_get("/v1/hello", hello)
    enable_cors(app, [FRONT_END])
    methods = {route.method for route in app.router.routes() if route.resource is not None and route.resource.canonical == "/v1/hello"}
    assert "OPTIONS" in methods
