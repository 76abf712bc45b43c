"""Erasure of a person (PDPA s.33) by deleting their data keys, on the real PostgreSQL: their
fields read "[erased]" everywhere, no table holds them in the clear, the log and its hash chain
stay whole, a rebuild agrees, and nobody else is touched."""

from __future__ import annotations

import uuid
from typing import Any, AsyncIterator

import orjson
import psycopg
import pytest

from infrastructure.views.projector import Projector
from onestop.bootstrap import build_back_office, build_views
from onestop.settings import Settings
from tests.integration.api_harness import (
    AUDITOR, CITIZEN, CITIZEN_ID, INTEGRATOR, OFFICER, FollowingProjectorThread, Harness, complaint, serving, token,
    wait_until_followed,
)

pytestmark = pytest.mark.postgres

DPO = token("dpo", "dpo.moi")
ADMIN = token("admin", "admin.moi")
NAME = "สมชาย ใจดี"
OTHER_ID = "1101700230708"
OTHER_NAME = "สมหญิง รักดี"
OTHER = token("citizen", OTHER_ID)
OTHER_DETAILS = {"subject": "ถนนชำรุด", "description": "หลุมใหญ่บนถนนหมู่ 3", "location": "หมู่ 3"}
FLYER = {"description": "ประกาศงานวัดบ้านสมชาย", "area": "ตลาดเช้า", "start_date": "2026-12-01", "end_date": "2026-12-03", "quantity": 20}
BASIS = "PDPA s.33(1): the data subject asked; no retention duty applies"
# Text only person A typed or was told: none of it may remain in the clear anywhere.
A_TEXTS = (CITIZEN_ID, "สมชาย", "ไฟถนนหน้าบ้านดับสามคืน", "ประกาศงานวัดบ้านสมชาย", "แนบสำเนาแล้วค่ะ", "ขอสำเนาทะเบียนบ้าน")


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Harness]:
    async with serving(settings, FollowingProjectorThread) as harness:
        yield harness


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def get(api: Harness, path: str, headers: dict[str, str] = OFFICER) -> Any:
    return await ok(await api.client.get(path, headers=headers))


async def erase(api: Harness, national_id: str = CITIZEN_ID, headers: dict[str, str] = DPO, body: Any = None) -> Any:
    return await api.client.post(f"/v1/data-subjects/{national_id}/erasure", json={"basis": BASIS} if body is None else body, headers=headers)


def every_text_in_the_database(settings: Settings) -> str:
    """Every text, jsonb and bytea value of every table, as one string."""
    with psycopg.connect(settings.database.conninfo()) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'"
            " AND data_type IN ('text', 'jsonb', 'bytea', 'character varying', 'ARRAY')"
        ).fetchall()
        parts = []
        for table, column, kind in columns:
            value = f'"{column}"' if kind == "bytea" else f'"{column}"::text'
            for (found,) in conn.execute(f'SELECT {value} FROM "{table}" WHERE "{column}" IS NOT NULL'):
                # Binary columns (the log, the feed, wrapped keys) as UTF-8 wherever they are.
                parts.append(bytes(found).decode("utf-8", "replace") if kind == "bytea" else found)
    return "\n".join(parts)


async def a_person_with_three_requests_one_paid(api: Harness) -> dict[str, Any]:
    first = await api.submit()
    await ok(await api.act(first["id"], "request-info", {"message": "ขอสำเนาทะเบียนบ้าน"}))
    await ok(await api.act(first["id"], "provide-info", {"message": "แนบสำเนาแล้วค่ะ"}, headers=CITIZEN))
    second = await api.submit()
    paying = await api.submit(complaint(service="local.flyer-permit", details=FLYER))
    payment = await ok(await api.client.post(f"/v1/payments/{paying['payment']['id']}/record-cash", json={"amount_satang": 20000}, headers=OFFICER))
    return {"first": first, "second": second, "paying": paying, "payment": payment}


async def close_them(api: Harness, a: dict[str, Any]) -> None:
    await ok(await api.act(a["first"]["id"], "reject", {"reason": "ไม่ใช่เขตของเทศบาล"}))
    await ok(await api.act(a["second"]["id"], "withdraw", {"reason": "ซ่อมแล้ว"}, headers=CITIZEN))
    await ok(await api.act(a["paying"]["id"], "approve", {"note": "อนุญาต"}))
    await ok(await api.act(a["paying"]["id"], "complete", {"note": "รับใบอนุญาตที่เคาน์เตอร์"}))


async def copy_feed_into_webhook_deliveries(api: Harness) -> None:
    """A delivery log as the webhook dispatcher keeps it: the feed's bodies, per subscription
    (written here: the test machine resolves no public host for a subscription URL)."""
    subscription = str(uuid.uuid4())
    with psycopg.connect(api.settings.database.conninfo(), autocommit=True) as conn:
        conn.execute("INSERT INTO webhook_subscriptions (id, owner, url, secret, start_position, idempotency_key, request_hash)"
                     " VALUES (%s, 'pdc', 'https://hooks.example.org/onestop', 'enc:v1:x', 0, 'k', 'h')", (subscription,))
        conn.execute("INSERT INTO webhook_deliveries (subscription_id, position, event_id, type, subject, payload, status)"
                      " SELECT %s, position, id, type, subject::text, body, 'delivered' FROM event_feed", (subscription,))


@pytest.mark.xfail(strict=True, reason="known gap (README 'Personal data'): the official receipt issued for a payment keeps the payer's "
                   "name in the clear (Receipt.Issued and receipts_view are not yet encrypted per person), so the name outlives erasure")
async def test_an_erased_person_reads_erased_everywhere_and_the_log_and_everyone_else_stay_whole(api: Harness) -> None:
    a = await a_person_with_three_requests_one_paid(api)
    other = await api.submit(complaint(applicant={"national_id": OTHER_ID, "name": OTHER_NAME}, details=OTHER_DETAILS), headers=OTHER)

    refused = await erase(api)
    problem = await refused.json()
    assert refused.status == 409 and refused.content_type == "application/problem+json"
    assert a["first"]["reference"] in problem["detail"] and "open" in problem["detail"]

    await close_them(api, a)
    await wait_until_followed(api.settings)
    await copy_feed_into_webhook_deliveries(api)
    other_before = await get(api, f"/v1/service-requests/{other['id']}?min_position={other['position']}")
    assert "สมชาย" in every_text_in_the_database(api.settings)  # the views and feed held it before

    erasing = await erase(api)
    erased = await ok(erasing)
    assert int(erasing.headers["OneStop-Position"]) == erased["position"]
    assert erased["status"] == "erased" and erased["basis"] == BASIS and erased["subject"] and CITIZEN_ID not in str(erased)
    assert erased["purged"]["keys"] == 1 and erased["purged"]["view_rows"] == 4 and erased["purged"]["deliveries"] > 0
    head = await wait_until_followed(api.settings)

    # Every endpoint: request, list, history, payment, as_of, feed, audit log and export.
    for key in ("first", "second", "paying"):
        request = await get(api, f"/v1/service-requests/{a[key]['id']}?min_position={head}")
        assert request["applicant"] == {"national_id": "[erased]", "name": "[erased]"}
        assert set(request["details"].values()) == {"[erased]"}
        history = await get(api, f"/v1/service-requests/{a[key]['id']}/events")
        assert not any(text in orjson.dumps(history).decode() for text in A_TEXTS)
        assert history["items"][0]["data"]["applicant"]["name"] == "[erased]"
        as_of = await get(api, f"/v1/service-requests/{a[key]['id']}?as_of=2999-01-01T00:00:00Z", AUDITOR)
        assert as_of["applicant"]["name"] == "[erased]"
    assert (await get(api, f"/v1/service-requests/{a['first']['id']}"))["outcome"] == "[erased]"
    assert await get(api, f"/v1/service-requests?applicant={CITIZEN_ID}") == {"items": [], "next_cursor": None}
    assert (await get(api, "/v1/service-requests", CITIZEN))["items"] == []
    payment = await get(api, f"/v1/payments/{a['paying']['payment']['id']}")
    assert payment["amount_satang"] == 20000 and payment["reference"] == a["paying"]["reference"] and payment["status"] == "paid"
    feed = orjson.dumps(await get(api, "/v1/streams/events?limit=1000", INTEGRATOR)).decode()
    export = await api.client.get("/v1/audit/export?plain=1", headers={**AUDITOR, "X-Purpose": "erasure check"})
    plain_export = (await export.read()).decode()
    for text in A_TEXTS:
        assert text not in feed and text not in plain_export
    assert "[erased]" in plain_export and a["paying"]["reference"] in plain_export and OTHER_NAME in plain_export

    # No table holds the person in the clear: not the log, views, feed, deliveries or keys.
    everything = every_text_in_the_database(api.settings)
    for text in A_TEXTS:
        assert text not in everything, text
    assert a["paying"]["reference"] in everything

    # The log is whole: every event kept, the chain intact, the erasure recorded in it.
    verdict = await get(api, "/v1/audit/verify", AUDITOR)
    assert verdict["status"] == "intact" and verdict["checked"] == head
    types = [e["type"] for e in (await get(api, "/v1/audit/events?type=DataSubject.Erased", AUDITOR))["items"]]
    assert types == ["DataSubject.Erased"]

    # Others are untouched, and still found by their national ID.
    assert await get(api, f"/v1/service-requests/{other['id']}") == other_before
    assert [r["id"] for r in (await get(api, f"/v1/service-requests?applicant={OTHER_ID}"))["items"]] == [other["id"]]

    # Erasing again changes nothing; someone never seen is not found.
    again = await ok(await erase(api))
    assert again["erasures"] == 1 and again["erased_at"] == erased["erased_at"]
    assert (await erase(api, "3500100456782")).status == 404

    # Filing again after the erasure starts a new key set: the new request reads, the old stay erased.
    again_filed = await api.submit()
    assert (await get(api, f"/v1/service-requests/{again_filed['id']}?min_position={again_filed['position']}", CITIZEN))["applicant"]["name"] == NAME
    assert (await get(api, f"/v1/service-requests/{a['first']['id']}"))["applicant"]["name"] == "[erased]"


async def test_a_rebuild_after_an_erasure_gives_the_views_the_erasure_left(settings: Settings) -> None:
    async with serving(settings, FollowingProjectorThread) as api:
        a = await a_person_with_three_requests_one_paid(api)
        await api.submit(complaint(applicant={"national_id": OTHER_ID, "name": OTHER_NAME}, details=OTHER_DETAILS), headers=OTHER)
        await close_them(api, a)
        await ok(await erase(api, headers=ADMIN))
        await wait_until_followed(settings)
        await get(api, f"/v1/service-requests?min_position={api.event_count()}")
    app = build_back_office(settings)
    try:
        views = build_views(app)
        before = views.checksum()
        Projector(app, views).rebuild(settings.database.conninfo())
        assert views.checksum() == before
        assert before["request_summaries"].startswith("4:")
    finally:
        app.close()


async def test_only_the_dpo_and_admins_erase_and_a_bad_request_names_its_field(api: Harness) -> None:
    await api.submit()
    assert (await erase(api, headers=OFFICER)).status == 403
    assert (await erase(api, headers=AUDITOR)).status == 403
    assert (await erase(api, headers=CITIZEN)).status == 403
    for national_id, body, field in (("123", {"basis": BASIS}, "national_id"), (CITIZEN_ID, {"basis": " "}, "basis"),
                                     (CITIZEN_ID, {}, "basis"), (CITIZEN_ID, {"basis": BASIS, "why": 1}, "why"),
                                     (CITIZEN_ID, {"basis": "PDPA s.33\u0000"}, "basis")):
        response = await erase(api, national_id, body=body)
        problem = await response.json()
        assert 400 <= response.status < 500 and response.content_type == "application/problem+json"
        assert [e["field"] for e in problem["errors"]] == [field]
    # Nothing was written by the refusals.
    with psycopg.connect(api.settings.database.conninfo()) as conn:
        assert conn.execute("SELECT count(*) FROM onestop_events WHERE topic LIKE 'onestop:DataSubject%'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM subject_keys WHERE wrapped_key IS NULL").fetchone()[0] == 0
