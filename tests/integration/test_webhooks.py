"""Webhooks: subscriptions over HTTP, and signed deliveries through Dramatiq on the real
RabbitMQ to a receiver on 127.0.0.1 that may be down for a while."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Iterator

import asyncpg
import dramatiq
import orjson
import pytest
from aiohttp import web
from cloudevents.v1.http import from_json
from standardwebhooks import Webhook

from infrastructure.integrations.event_feed import EventFeed, FeedNotifier
from onestop.webhooks_process import webhook_agents
from onestop.settings import Settings
from infrastructure.integrations.webhook_dispatcher import WebhookDispatcher
from infrastructure.integrations.delivery import WebhookSettings
from tests.conftest import free_port
from tests.integration.api_harness import INTEGRATOR, FollowingProjectorThread, Harness, eventually, start_harness, token, wait_until_followed

pytestmark = pytest.mark.postgres

ADMIN = token("admin", "admin.moi")
OTHER_INTEGRATOR = token("integrator", "someone-else")
SCHEDULE = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0)


# -- a receiver on 127.0.0.1 ------------------------------------------------------------------


@dataclass
class Receiver:
    """Answers ``answer`` (200, 503, 410) or is not listening at all (``down()``)."""

    port: int = field(default_factory=free_port)
    answer: int = 200
    calls: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)  # (answer, headers, body)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/onestop"

    async def up(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            self.calls.append((self.answer, dict(request.headers), body))
            return web.Response(status=self.answer)

        app = web.Application()
        app.router.add_post("/hooks/onestop", handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def accepted(self) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for answer, headers, body in self.calls if 200 <= answer < 300]


# -- the stack: API, projector with followers, dispatcher, a Dramatiq worker on RabbitMQ ---------


@dataclass
class WebhookStack:
    api: Harness
    settings: Settings

    async def subscribe(self, url: str, **body: Any) -> dict[str, Any]:
        response = await self.api.client.post("/v1/subscriptions", json={"url": url, **body},
                                              headers={**INTEGRATOR, "Idempotency-Key": str(uuid.uuid4())})
        assert response.status == 201, await response.text()
        return await response.json()  # type: ignore[no-any-return]

    async def published(self) -> list[dict[str, Any]]:
        """Every event of the feed, after everything was published."""
        await wait_until_followed(self.settings)
        response = await self.api.client.get("/v1/streams/events?limit=5000", headers=INTEGRATOR)
        return (await response.json())["items"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def webhook_actor(rabbitmq_broker: dramatiq.Broker) -> Iterator[dramatiq.Actor]:
    """The delivery actor on a queue of this test run's own, so no other worker on the same
    RabbitMQ takes its messages; the queue is deleted at the end."""
    import workers.webhooks as webhook_actors  # after the broker is set up (the fixture did)

    queue = f"onestop-webhooks-test-{uuid.uuid4().hex[:10]}"
    actor = webhook_actors.declare(rabbitmq_broker, queue)
    yield actor
    for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
        rabbitmq_broker.channel.queue_delete(name)


@pytest.fixture
async def webhook_stack(settings: Settings, rabbitmq_broker: dramatiq.Broker, webhook_actor: dramatiq.Actor) -> AsyncIterator[WebhookStack]:
    import workers.webhooks as webhook_actors

    settings = replace(settings, webhooks_allow_private=True)
    hooks = WebhookSettings(schedule=SCHEDULE, timeout_seconds=2.0, allow_private=True, stranded_after_seconds=3.0, sweep_seconds=0.5,
                            secrets_key=settings.secrets_key)
    webhook_actors.configure(webhook_agents(settings.database.url(), hooks))
    rabbitmq_broker.flush(webhook_actor.queue_name)
    worker = dramatiq.Worker(rabbitmq_broker, queues={webhook_actor.queue_name}, worker_threads=4)
    worker.start()
    pool = await asyncpg.create_pool(settings.database.url(), min_size=1, max_size=4)
    notifier = FeedNotifier(settings.database.url())
    await notifier.start()
    dispatcher = WebhookDispatcher(pool, EventFeed(pool, notifier), webhook_actors.sender(webhook_actor), hooks)
    stop = asyncio.Event()
    following = asyncio.create_task(dispatcher.run(stop, poll_seconds=0.2))
    try:
        with FollowingProjectorThread(settings) as projector:
            harness = await start_harness(settings)
            harness.projector = projector
            try:
                yield WebhookStack(harness, settings)
            finally:
                await harness.client.close()
    finally:
        stop.set()
        await following
        dispatcher.close()
        await notifier.close()
        await pool.close()
        webhook_actors.close()
        worker.stop(timeout=10_000)


async def failed_attempts(stack: WebhookStack, error: str) -> int:
    conn = await asyncpg.connect(stack.settings.database.url())
    try:
        return int(await conn.fetchval("SELECT count(*) FROM webhook_attempts WHERE error LIKE '%' || $1 || '%'", error))
    finally:
        await conn.close()


def verified(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The Standard Webhooks check, as a receiver would run it."""
    wanted = {k.lower(): v for k, v in headers.items() if k.lower().startswith("webhook-")}
    Webhook(secret).verify(body, wanted)
    return wanted


async def test_every_delivery_is_signed_as_standard_webhooks_says_and_carries_a_cloudevent(webhook_stack: WebhookStack) -> None:
    stack = webhook_stack
    receiver = Receiver()
    await receiver.up()
    try:
        subscription = await stack.subscribe(receiver.url)
        secret = subscription["secret"]
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
        for _ in range(3):
            state = await stack.api.submit()
            await stack.api.act(state["id"], "approve", {"note": "ok"})
        expected = await stack.published()
        await eventually(lambda: asyncio.sleep(0, len(receiver.accepted()) >= len(expected)), 15, "every delivery")
        assert len(expected) == 9
        deliveries = receiver.accepted()
        for headers, body in deliveries:
            wanted = verified(secret, headers, body)
            event = from_json(body)
            assert wanted["webhook-id"] == event["id"]
            # The signature is the one the library makes (given UTC: its sign() does not convert).
            at = datetime.fromtimestamp(int(wanted["webhook-timestamp"]), tz=timezone.utc)
            assert Webhook(secret).sign(wanted["webhook-id"], at, body.decode()) == wanted["webhook-signature"]
        assert sorted(orjson.loads(body)["id"] for _, body in deliveries) == sorted(e["id"] for e in expected)
        with pytest.raises(Exception):
            verified("whsec_" + base64.b64encode(b"x" * 32).decode(), deliveries[0][0], deliveries[0][1])
    finally:
        await receiver.down()


async def test_a_receiver_down_for_a_while_gets_everything_in_order_for_each_subject_once_it_is_back(webhook_stack: WebhookStack) -> None:
    stack = webhook_stack
    receiver = Receiver()  # not listening yet: connections are refused
    subscription = await stack.subscribe(receiver.url)
    for _ in range(4):
        state = await stack.api.submit()
        await stack.api.act(state["id"], "assign", {"officer": "officer.b"})
        await stack.api.act(state["id"], "approve", {"note": "ok"})
    expected = await stack.published()
    assert len(expected) == 16
    await eventually(lambda: failed_attempts(stack, "Connect"), 10, "attempts refused while the receiver is down")
    receiver.answer = 503  # listening, but not ready
    await receiver.up()
    await eventually(lambda: asyncio.sleep(0, sum(answer == 503 for answer, _, _ in receiver.calls) >= 2), 10, "503 answers")
    receiver.answer = 200
    try:
        await eventually(lambda: asyncio.sleep(0, len(receiver.accepted()) >= len(expected)), 20, "every delivery after the outage")
        await asyncio.sleep(0.3)  # nothing more may come
        accepted = [from_json(body) for _, body in receiver.accepted()]
        assert sorted(e["id"] for e in accepted) == sorted(e["id"] for e in expected)  # all of them, each once
        per_subject: dict[str, list[int]] = defaultdict(list)
        for event in accepted:
            per_subject[event["subject"]].append(int(event["id"].rsplit(".", 1)[1]))
        assert len(per_subject) == 4 and all(versions == [1, 2, 3, 4] for versions in per_subject.values())
        for headers, body in receiver.accepted():
            verified(subscription["secret"], headers, body)
        response = await stack.api.client.get(f"/v1/subscriptions/{subscription['id']}/deliveries?limit=500", headers=INTEGRATOR)
        deliveries = (await response.json())["items"]
        assert len(deliveries) == 16 and {d["status"] for d in deliveries} == {"succeeded"}
        first = deliveries[0]["attempts"]
        assert first[0]["status"] is None and "Connect" in first[0]["error"]  # refused while down
        assert 503 in [a["status"] for a in first] and first[-1]["status"] == 200
    finally:
        await receiver.down()


async def test_a_410_answer_disables_the_subscription_and_a_replay_sends_again_from_a_cursor(webhook_stack: WebhookStack) -> None:
    stack = webhook_stack
    receiver = Receiver(answer=410)
    await receiver.up()
    try:
        subscription = await stack.subscribe(receiver.url, types=["th.onestop.service-request.submitted.v1"])
        for _ in range(3):
            await stack.api.submit()
        path = f"/v1/subscriptions/{subscription['id']}"

        async def disabled() -> bool:
            return (await (await stack.api.client.get(path, headers=INTEGRATOR)).json())["status"] == "disabled"

        await eventually(disabled, 10, "the subscription to be disabled")
        calls = len(receiver.calls)
        await asyncio.sleep(0.8)
        assert len(receiver.calls) == calls  # nothing more is sent to a gone receiver
        submitted = [e for e in await stack.published() if e["type"] == "th.onestop.service-request.submitted.v1"]
        receiver.answer = 200
        replay = await stack.api.client.post(f"{path}/replay?from={submitted[0]['sequence']}", headers=INTEGRATOR)
        assert replay.status == 202
        await eventually(lambda: asyncio.sleep(0, len(receiver.accepted()) >= 2), 10, "the replayed deliveries")
        await asyncio.sleep(0.3)
        # Each subject's events come in order; different subjects may interleave.
        assert sorted(orjson.loads(body)["id"] for _, body in receiver.accepted()) == sorted(e["id"] for e in submitted[1:])
        assert (await (await stack.api.client.get(path, headers=INTEGRATOR)).json())["status"] == "active"
    finally:
        await receiver.down()


async def test_subscriptions_show_the_secret_once_replay_their_creation_and_belong_to_their_integrator(api: Harness) -> None:
    body = {"url": "https://1.1.1.1/onestop/hooks", "types": ["th.onestop.payment.received.v1"], "organization": "MUN-SAENSUK"}
    created = await api.client.post("/v1/subscriptions", json=body, headers={**INTEGRATOR, "Idempotency-Key": "sub-1"})
    if created.status == 422:  # no DNS here: the check cannot resolve example.org
        assert (await created.json())["errors"][0]["field"] == "url"
        pytest.skip("this machine cannot resolve public names, so a public URL cannot be checked")
    assert created.status == 201, await created.text()
    subscription = await created.json()
    again = await api.client.post("/v1/subscriptions", json=body, headers={**INTEGRATOR, "Idempotency-Key": "sub-1"})
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true" and (await again.json())["id"] == subscription["id"]
    path = f"/v1/subscriptions/{subscription['id']}"
    shown = await (await api.client.get(path, headers=INTEGRATOR)).json()
    assert "secret" not in shown and shown["types"] == body["types"] and shown["status"] == "active"
    assert (await api.client.get(path, headers=OTHER_INTEGRATOR)).status == 404
    assert (await api.client.get(path, headers=ADMIN)).status == 200
    listed = await (await api.client.get("/v1/subscriptions", headers=INTEGRATOR)).json()
    assert [s["id"] for s in listed["items"]] == [subscription["id"]] and "secret" not in listed["items"][0]
    assert (await api.client.delete(path, headers=INTEGRATOR)).status == 204
    assert (await api.client.get(path, headers=INTEGRATOR)).status == 404


async def test_subscriptions_to_private_addresses_or_with_bad_fields_are_refused_naming_the_field(api: Harness) -> None:
    cases = [
        ({"url": "http://127.0.0.1:8080/hook"}, "url"),
        ({"url": "http://10.1.2.3/hook"}, "url"),
        ({"url": "http://[::1]/hook"}, "url"),
        ({"url": "http://localhost/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({"url": "ftp://files.example.org/"}, "url"),
        ({"url": "https://hooks.example.org/", "types": ["th.onestop.nothing.v1"]}, "types[0]"),
        ({"url": "https://hooks.example.org/", "organization": "MUN-NOWHERE"}, "organization"),
        ({"url": "https://hooks.example.org/", "colour": "red"}, "colour"),
    ]
    for body, field_name in cases:
        response = await api.client.post("/v1/subscriptions", json=body, headers={**INTEGRATOR, "Idempotency-Key": str(uuid.uuid4())})
        assert response.status == 422, body
        assert response.content_type == "application/problem+json"
        assert field_name in [e["field"] for e in (await response.json())["errors"]], body
    missing_key = await api.client.post("/v1/subscriptions", json={"url": "https://hooks.example.org/"}, headers=INTEGRATOR)
    assert missing_key.status == 400
    citizen = await api.client.post("/v1/subscriptions", json={"url": "https://hooks.example.org/"},
                                    headers={**token("citizen", "3100600445635"), "Idempotency-Key": "x"})
    assert citizen.status == 403
    assert (await (await api.client.get("/v1/subscriptions", headers=INTEGRATOR)).json())["items"] == []


async def test_subscriptions_to_ipv6_or_numeric_forms_of_internal_addresses_are_refused_naming_the_url(api: Harness) -> None:
    before = await (await api.client.get("/v1/subscriptions", headers=INTEGRATOR)).json()
    for host in ("[::127.0.0.1]", "[::7f00:1]", "[::ffff:0:7f00:1]", "[64:ff9b::a9fe:a9fe]", "[64:ff9b::7f00:1]",
                 "[2002:7f00:1::]", "[fec0::1]", "[64:ff9b:1::a00:1]", "2130706433", "0x7f.1", "0177.0.0.1"):
        response = await api.client.post("/v1/subscriptions", json={"url": f"http://{host}/hook"},
                                         headers={**INTEGRATOR, "Idempotency-Key": str(uuid.uuid4())})
        assert response.status == 422, host
        assert response.content_type == "application/problem+json"
        assert [e["field"] for e in (await response.json())["errors"]] == ["url"], host
    after = await (await api.client.get("/v1/subscriptions", headers=INTEGRATOR)).json()
    assert after["items"] == before["items"] == []


async def test_signing_secrets_are_stored_encrypted_and_deliveries_verify_with_the_secret_shown_at_creation(webhook_stack: WebhookStack) -> None:
    from onestop.bootstrap import migrate

    stack = webhook_stack
    receiver = Receiver()
    await receiver.up()
    conn = await asyncpg.connect(stack.settings.database.url())
    try:
        first = await stack.subscribe(receiver.url)
        stored = await conn.fetchval("SELECT secret FROM webhook_subscriptions WHERE id = $1::uuid", first["id"])
        assert stored.startswith("enc:v1:")
        assert first["secret"] not in stored and first["secret"].removeprefix("whsec_") not in stored
        # A subscription made before secrets were encrypted: its plain secret is still used, and
        # `onestop migrate` with the key encrypts it.
        legacy = await stack.subscribe(receiver.url)
        await conn.execute("UPDATE webhook_subscriptions SET secret = $2 WHERE id = $1::uuid", legacy["id"], legacy["secret"])
        await asyncio.to_thread(migrate, stack.settings)
        rows = await conn.fetch("SELECT id::text AS id, secret FROM webhook_subscriptions")
        assert len(rows) == 2 and all(r["secret"].startswith("enc:v1:") for r in rows)
        assert not any(s["secret"] in r["secret"] for s in (first, legacy) for r in rows)
        state = await stack.api.submit()
        await stack.api.act(state["id"], "approve", {"note": "ok"})
        expected = await stack.published()
        await eventually(lambda: asyncio.sleep(0, len(receiver.accepted()) >= 2 * len(expected)), 15, "every delivery to both")
        by_secret = {first["secret"]: 0, legacy["secret"]: 0}
        for headers, body in receiver.accepted():
            for secret in by_secret:
                try:
                    verified(secret, headers, body)
                except Exception:
                    continue
                by_secret[secret] += 1
        assert by_secret == {first["secret"]: len(expected), legacy["secret"]: len(expected)}
    finally:
        await conn.close()
        await receiver.down()


# -- personal data never leaves through the feed, SSE or webhooks --------------------------------

# A citizen's national ID as people write it, and their phone numbers, names and birth date.
ID_FORMS = ["3100600445635", "3 1006 00445 63 5", "3-1006-00445-63-5", "3.1006.00445.63.5", "๓๑๐๐๖๐๐๔๔๕๖๓๕"]
PHONES = ["081-234-5678", "0812345678", "+66 81 234 5678", "02-123-4567"]
CITIZEN_NAMES = ["สมชาย", "ใจดี", "Somchai", "Jaidee"]
BIRTH_DATE = "1950-03-04"
BANK_ACCOUNT = "4560123789"


def _said(i: int) -> str:
    """Free text with an ID glued to Thai letters and the other forms and phones around it."""
    return f"เลขบัตร{ID_FORMS[i % 5]}ครับ บัตร {ID_FORMS[(i + 1) % 5]} โทร{PHONES[i % 4]} หรือ {PHONES[(i + 1) % 4]} นะคะ"


def _leaked(text: str) -> list[str]:
    return [s for s in ID_FORMS + PHONES + CITIZEN_NAMES + [BIRTH_DATE, BANK_ACCOUNT] if s in text]


async def _file_requests_full_of_personal_data(stack: WebhookStack) -> None:
    from tests.integration.api_harness import CITIZEN, CITIZEN_ID, complaint
    from workers.jobs import WORKER

    applicant = {"national_id": CITIZEN_ID, "name": "สมชาย ใจดี"}
    details = {"subject": _said(0)[:200], "description": _said(1), "location": _said(2)[:200]}
    first = await stack.api.submit(complaint(applicant=applicant, details=details))
    for action, body, who in (("assign", {"officer": "officer.b"}, None), ("request-info", {"message": _said(3)}, None),
                              ("provide-info", {"message": _said(4)}, CITIZEN), ("reject", {"reason": _said(5)}, None)):
        response = await stack.api.act(first["id"], action, body, headers=who)
        assert response.status == 200, (action, await response.text())
    second = await stack.api.submit(complaint(applicant=applicant, details={**details, "subject": "ถนนชำรุด"}))
    assert (await stack.api.act(second["id"], "withdraw", {"reason": _said(6)}, headers=CITIZEN)).status == 200
    third = await stack.api.submit(complaint(applicant=applicant, details={**details, "subject": "น้ำท่วม"}))
    assert (await stack.api.act(third["id"], "approve", {"note": _said(7)})).status == 200
    # The registry's answer about the applicant (as a worker records it): names, birth date, house.
    allowance = await stack.api.submit(complaint(service="welfare.elderly-allowance", applicant=applicant,
                                                 details={"bank_account": BANK_ACCOUNT}))
    answer = {"national_id": CITIZEN_ID, "found": True, "alive": True, "name_th": "สมชาย ใจดี", "first_name_th": "สมชาย",
              "last_name_th": "ใจดี", "first_name_en": "Somchai", "last_name_en": "Jaidee", "birth_date": BIRTH_DATE,
              "house_id": "20010012345", "organization": "MUN-SAENSUK", "reason": None}
    assert stack.api.projector is not None
    outcome = await asyncio.to_thread(stack.api.projector.app.record_verification, uuid.UUID(allowance["id"]), answer, WORKER)
    assert outcome.state["status"] != "rejected", outcome.state


async def test_no_national_id_phone_name_or_birth_date_reaches_the_feed_the_live_stream_or_a_webhook(webhook_stack: WebhookStack) -> None:
    stack = webhook_stack
    receiver = Receiver()
    await receiver.up()
    try:
        await stack.subscribe(receiver.url)
        live = await stack.api.client.get("/v1/streams/events/live", headers=INTEGRATOR)
        assert live.status == 200
        await _file_requests_full_of_personal_data(stack)
        feed = await stack.published()
        types = {e["type"] for e in feed}
        assert {"th.onestop.service-request.info-provided.v1", "th.onestop.service-request.applicant-verified.v1",
                "th.onestop.service-request.withdrawn.v1", "th.onestop.service-request.rejected.v1"} <= types
        feed_text = orjson.dumps(feed).decode()
        sse_chunks: list[bytes] = []
        while sum(chunk.startswith(b"data: ") for chunk in sse_chunks) < len(feed):
            sse_chunks.append(await asyncio.wait_for(live.content.readline(), 10))
        live.close()
        await eventually(lambda: asyncio.sleep(0, len(receiver.accepted()) >= len(feed)), 15, "every delivery")
        webhook_text = b"\n".join(body for _, body in receiver.accepted()).decode()
        sse_text = b"".join(sse_chunks).decode()
        for path, text in (("feed", feed_text), ("live stream", sse_text), ("webhooks", webhook_text)):
            assert _leaked(text) == [], path
            assert "3XXXXXXXX5635" in text, path  # the IDs were there, and were masked
            assert "first_name" not in text and "bank_account" not in text and "birth_date" not in text, path
    finally:
        await receiver.down()


def expected_position(items: list[dict[str, Any]]) -> int:
    return len(items)  # a fresh log: positions 1..n, all published


async def test_the_webhook_dispatcher_and_the_feed_follower_go_on_after_every_connection_is_dropped(webhook_stack: WebhookStack) -> None:
    import psycopg

    from infrastructure.eventstore.following import statuses
    from tests.integration.api_harness import CITIZEN, complaint

    stack = webhook_stack
    receiver = Receiver()
    await receiver.up()
    try:
        await stack.subscribe(receiver.url)
        await stack.api.submit()
        await eventually(lambda: asyncio.sleep(0, len(receiver.accepted()) >= 1), 15, "the first delivery")
        errors_before = statuses()["projector"].errors
        with psycopg.connect(stack.settings.database.conninfo(), autocommit=True) as conn:
            dropped = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                   " WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
        assert len(dropped) >= 3
        for _ in range(3):
            for _ in range(20):  # the API's pool meets the dropped connections too; a client sends again
                response = await stack.api.client.post("/v1/service-requests", json=complaint(), headers={**CITIZEN, "Idempotency-Key": str(uuid.uuid4())})
                if response.status == 201:
                    break
                await asyncio.sleep(0.2)
        expected = await stack.published()
        assert len(expected) == 8  # two events per complaint
        await eventually(lambda: asyncio.sleep(0, {e["id"] for e in expected} <= {h.get("webhook-id") or h.get("Webhook-Id") for h, _ in receiver.accepted()}), 30,
                         "every event delivered after the drop")
        # The feed follower runs in the projector, which met the dropped connection and came back;
        # the webhook dispatcher's pool replaces closed connections by itself.
        assert statuses()["projector"].errors > errors_before
        assert statuses()["webhooks"].state == "running" and statuses()["webhooks"].position == expected_position(expected)
    finally:
        await receiver.down()
