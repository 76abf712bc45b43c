"""An in-process API on the real PostgreSQL, with the projector following the log."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable
from uuid import UUID

import psycopg
from aiohttp.test_utils import TestClient, TestServer

from api.auth import make_token
from api.server import OneStopAppRunner
from onestop.bootstrap import build_api, build_back_office, build_views
from infrastructure.views.projector import Projector
from onestop.settings import Settings
from tests.conftest import JWT_SECRET

CITIZEN_ID = "3100600445635"
OTHER_CITIZEN_ID = "1101700230705"


def token(role: str, sub: str = "someone", org: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(JWT_SECRET, sub=sub, role=role, org=org)}"}


CITIZEN = token("citizen", CITIZEN_ID)
OTHER_CITIZEN = token("citizen", OTHER_CITIZEN_ID)
OFFICER = token("officer", "officer.saensuk", "MUN-SAENSUK")
OTHER_OFFICER = token("officer", "officer.phrae", "MUN-PHRAE")
PAO_OFFICER = token("officer", "officer.cbi", "PAO-CBI")
AUDITOR = token("auditor", "auditor.oag")
INTEGRATOR = token("integrator", "pdc")


def complaint(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service": "complaint", "organization": "MUN-SAENSUK", "channel": "web",
        "applicant": {"national_id": CITIZEN_ID, "name": "สมชาย ใจดี"},
        "details": {"subject": "ไฟถนนดับ", "description": "ไฟถนนหน้าบ้านดับสามคืน", "location": "ซอย 5"},
    }
    body.update(changes)
    return body


@dataclass
class Harness:
    client: TestClient
    settings: Settings
    projector: "ProjectorThread | None" = None

    def event_count(self) -> int:
        with psycopg.connect(self.settings.database.conninfo()) as conn:
            return conn.execute("SELECT count(*) FROM onestop_events").fetchone()[0]

    async def submit(self, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, key: str | None = None) -> dict[str, Any]:
        import uuid

        response = await self.client.post(
            "/v1/service-requests", json=body or complaint(),
            headers={**(headers or CITIZEN), "Idempotency-Key": key or str(uuid.uuid4())},
        )
        assert response.status == 201, await response.text()
        return await response.json()

    async def act(self, request_id: str, action: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, version: int | None = None) -> Any:
        extra = {"If-Match": f'"{version}"'} if version is not None else {}
        return await self.client.post(f"/v1/service-requests/{request_id}/{action}", json=body or {}, headers={**(headers or OFFICER), **extra})

    def stop_projector(self) -> None:
        """Stop the harness's projector (a test that runs one of its own over the same views)."""
        assert self.projector is not None
        self.projector.stop.set()
        self.projector.thread.join(10)


class ProjectorThread:
    def __init__(self, settings: Settings) -> None:
        self.app = build_back_office(settings)
        self.projector = Projector(self.app, build_views(self.app))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.projector.run, args=(self.stop, settings.database.conninfo()), kwargs={"poll_seconds": 0.2}, daemon=True)

    def __enter__(self) -> ProjectorThread:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.app.close()


class OneStopTestServer(TestServer):
    """The in-process server, served as `onestop api` serves it (protocol errors in problem+json)."""

    async def _make_runner(self, **kwargs: Any) -> OneStopAppRunner:
        return OneStopAppRunner(self.app, **kwargs)


async def start_harness(settings: Settings) -> Harness:
    client = TestClient(OneStopTestServer(await build_api(settings)))
    await client.start_server()
    return Harness(client, settings)


# -- auditors and integrators ------------------------------------------------------------------


class FollowingProjectorThread(ProjectorThread):
    """A projector that also runs the log's followers (the published feed, the audit chain),
    as `onestop projector` does."""

    def __init__(self, settings: Settings) -> None:
        from onestop.bootstrap import build_followers

        super().__init__(settings)
        self.projector.followers = build_followers(self.app)


def published_position(settings: Settings) -> tuple[int, int, int, int]:
    """(log head, views position, published feed head, audit chain head)."""
    from infrastructure.views.recorder import TRACKING_TABLE, VIEWS_NAME

    with psycopg.connect(settings.database.conninfo()) as conn:
        return conn.execute(
            "SELECT (SELECT coalesce(max(notification_id), 0) FROM onestop_events),"
            f" (SELECT coalesce(max(notification_id), 0) FROM {TRACKING_TABLE} WHERE application_name = %s),"
            " (SELECT coalesce(max(position), 0) FROM event_feed), (SELECT coalesce(max(position), 0) FROM audit_chain_head)",
            (VIEWS_NAME,),
        ).fetchone()


async def wait_until_followed(settings: Settings, timeout: float = 10.0) -> int:
    """Wait until the views, the feed and the chain have every event of the log; return the log
    head. The projector's step applies the views and then runs the feed and the chain, which
    read on to the head themselves: for a moment they may be ahead of the views."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        log_head, views, feed, chain = published_position(settings)
        if views == feed == chain == log_head:
            return log_head
        if time.monotonic() > deadline:
            raise AssertionError(f"followers behind: log {log_head}, views {views}, feed {feed}, chain {chain}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def serving(settings: Settings, projector_class: type[ProjectorThread] = ProjectorThread) -> AsyncIterator[Harness]:
    """The API in-process on ``settings``, with a projector following the log."""
    with projector_class(settings) as projector:
        harness = await start_harness(settings)
        harness.projector = projector
        try:
            yield harness
        finally:
            await harness.client.close()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float, what: str = "condition", *, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def write_an_old_style_assignment(harness: Harness, template_request: str, target_request: str) -> int:
    """Copy the stored Assigned event of ``template_request`` onto ``target_request`` as the
    older release wrote it, straight into the log with the recorder; return its position."""
    with psycopg.connect(harness.settings.database.conninfo()) as conn:
        state, topic = conn.execute(
            "SELECT state, topic FROM onestop_events WHERE originator_id = %s AND topic LIKE %s",
            (template_request, "%Assigned"),
        ).fetchone()
        version = conn.execute("SELECT max(originator_version) FROM onestop_events WHERE originator_id = %s", (target_request,)).fetchone()[0]
    import orjson
    from eventsourcing.persistence import StoredEvent

    document = orjson.loads(bytes(state))
    document["assignee"] = "officer.old-release"
    del document["officer"]
    app = build_back_office(harness.settings)
    try:
        app.recorder.insert_events([StoredEvent(UUID(target_request), version + 1, topic, orjson.dumps(document))])
        return app.recorder.max_notification_id()
    finally:
        app.close()
