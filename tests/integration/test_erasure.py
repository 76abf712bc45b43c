"""Erasure of a person (PDPA s.33) by deleting their data keys, on the real PostgreSQL: their
fields read "[erased]" everywhere, no table holds them in the clear, the log and its hash chain
stay whole, a rebuild agrees, and nobody else is touched."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, AsyncIterator

import orjson
import psycopg
import pytest

from api.app_key import CTX
from application.allowance import recipient_id
from domain.actors import Actor
from domain.allowance import DisbursementBatch, Recipient, month_text
from infrastructure.views.projector import Projector
from onestop.bootstrap import build_back_office, build_views
from onestop.settings import Settings
from tests.conftest import SUBJECT_INDEX
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
ORG = "MUN-SAENSUK"
SEEDER = Actor(sub="test-seed", role="system")
A_ACCOUNT, OTHER_ACCOUNT = "7391046285", "5512093377"
A_BIRTH = "1951-03-17"
A_ENDED = "ย้ายไปอยู่กับลูกสาวที่ลำปาง"
A_REFUSED = "บัญชีปิดแล้วตามคำขอของเจ้าของ"
A_CANCELLED = "ติดธุระไปต่างจังหวัด"
ROLL = (
    "parcel_id,owner_id,owner_kind,owner_name,land_use,value_satang,vacant_years\n"
    f"ER-001,{CITIZEN_ID},individual,{NAME},commercial,300000000,\n"
    f"ER-002,{OTHER_ID},individual,{OTHER_NAME},commercial,200000000,\n"
)
# Text only person A typed or was told: none of it may remain in the clear anywhere.
A_TEXTS = (CITIZEN_ID, "สมชาย", "ไฟถนนหน้าบ้านดับสามคืน", "ประกาศงานวัดบ้านสมชาย", "แนบสำเนาแล้วค่ะ", "ขอสำเนาทะเบียนบ้าน",
           A_ACCOUNT, A_BIRTH, A_ENDED, A_REFUSED, A_CANCELLED)


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


async def export_of(api: Harness, headers: dict[str, str] = DPO) -> dict[str, Any]:
    """A's data as the DPO's export (or, with A's token, /v1/me/data) streams it."""
    path = f"/v1/data-subjects/{CITIZEN_ID}/export" if headers is DPO else "/v1/me/data"
    return await ok(await api.client.get(f"{path}?min_position={api.event_count()}", headers=headers))


def sections_text(export: dict[str, Any]) -> str:
    """Every section of an export, as text (not its head, which names the person asked about)."""
    return orjson.dumps({name: export[name] for name in export["sections"]}).decode()


async def a_person_with_three_requests_one_paid(api: Harness) -> dict[str, Any]:
    first = await api.submit()
    await ok(await api.act(first["id"], "request-info", {"message": "ขอสำเนาทะเบียนบ้าน"}))
    await ok(await api.act(first["id"], "provide-info", {"message": "แนบสำเนาแล้วค่ะ"}, headers=CITIZEN))
    second = await api.submit()
    paying = await api.submit(complaint(service="local.flyer-permit", details=FLYER))
    payment = await ok(await api.client.post(f"/v1/payments/{paying['payment']['id']}/record-cash", json={"amount_satang": 20000}, headers=OFFICER))
    return {"first": first, "second": second, "paying": paying, "payment": payment}


def seed_allowance(settings: Settings) -> dict[str, Any]:
    """A and the other person on the allowance register, and a disbursement batch paying both
    (the bank refused A's line); A's allowance then ends (erasure waits for that)."""
    app = build_back_office(settings)
    try:
        at = datetime.now(timezone.utc)
        month = month_text(date(2026, 12, 1))
        ids = {"a": recipient_id(ORG, SUBJECT_INDEX.reference(CITIZEN_ID)), "other": recipient_id(ORG, SUBJECT_INDEX.reference(OTHER_ID))}
        people = [
            Recipient.register(id=ids["a"], at=at, actor=SEEDER, national_id=CITIZEN_ID, organization=ORG, birth_date=A_BIRTH,
                               payout={"kind": "bank", "account": A_ACCOUNT}, start_month=month, band_amount_satang=70_000, request_id=None),
            Recipient.register(id=ids["other"], at=at, actor=SEEDER, national_id=OTHER_ID, organization=ORG, birth_date="1948-07-02",
                               payout={"kind": "bank", "account": OTHER_ACCOUNT}, start_month=month, band_amount_satang=80_000, request_id=None),
        ]
        app.save(*people)
        batch = DisbursementBatch.prepare(
            id=uuid.uuid4(), at=at, actor=SEEDER, run_id=str(uuid.uuid4()), organization=ORG, month=month, value_date="2026-12-10",
            attempt=0, number=1, lines=[[str(ids["a"]), CITIZEN_ID, 70_000, 70_000, "bank", A_ACCOUNT],
                                        [str(ids["other"]), OTHER_ID, 80_000, 80_000, "bank", OTHER_ACCOUNT]])
        batch.settle([[str(ids["a"]), "refused", A_REFUSED, None], [str(ids["other"]), "paid", "", "TX-OTHER-1"]], SEEDER, at)
        app.save(batch)
        return {"recipients": ids, "batch": batch.id}
    finally:
        app.close()


def end_allowance(settings: Settings, recipient: uuid.UUID) -> None:
    app = build_back_office(settings)
    try:
        person = app.repository.get(recipient)
        person.end(A_ENDED, "2026-12", SEEDER, datetime.now(timezone.utc))
        app.save(person)
    finally:
        app.close()


async def a_notice_and_an_appointment(api: Harness) -> dict[str, Any]:
    """A owns a parcel on the tax roll (beside the other person) and gets a notice; A books an
    appointment at the counter."""
    imported = await api.client.post("/v1/land-tax/2569/parcels", data=ROLL.encode(), headers={**OFFICER, "Content-Type": "text/csv"})
    assert (await ok(imported))["accepted"] == 2
    assert (await ok(await api.client.post("/v1/land-tax/2569/notices", headers=OFFICER)))["issued"] == 2
    notices = (await get(api, f"/v1/land-tax/notices?owner_id={CITIZEN_ID}&tax_year=2569&min_position={api.event_count()}"))["items"]
    today = datetime.now(timezone.utc).date()
    free = (await get(api, f"/v1/appointments/slots?organization={ORG}&service=civil.certified-copy&from={today + timedelta(days=1)}"
                           f"&to={today + timedelta(days=14)}"))
    start = next(slot["start"] for slot in free if slot["available"] > 0)
    booked = await ok(await api.client.post("/v1/appointments", json={
        "organization": ORG, "service": "civil.certified-copy", "start": start, "applicant": {"national_id": CITIZEN_ID, "name": NAME}},
        headers={**CITIZEN, "Idempotency-Key": str(uuid.uuid4())}), 201)
    return {"notice": notices[0], "appointment": booked}


async def close_the_others(api: Harness, records: dict[str, Any]) -> dict[str, Any]:
    """A pays the notice in cash (a receipt names A as payer), cancels the appointment, and A's
    allowance ends."""
    opened = await ok(await api.client.post(f"/v1/land-tax/notices/{records['notice']['id']}/payments", json={"instalment": None},
                                            headers=OFFICER), 201)
    await ok(await api.client.post(f"/v1/payments/{opened['id']}/record-cash", json={"amount_satang": opened["amount_satang"]}, headers=OFFICER))
    await ok(await api.client.post(f"/v1/appointments/{records['appointment']['id']}/cancel", json={"reason": A_CANCELLED}, headers=CITIZEN))
    end_allowance(api.settings, records["allowance"]["recipients"]["a"])
    return {"tax_payment": opened}


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


async def test_an_erased_person_reads_erased_everywhere_and_the_log_and_everyone_else_stay_whole(api: Harness) -> None:
    a = await a_person_with_three_requests_one_paid(api)
    other = await api.submit(complaint(applicant={"national_id": OTHER_ID, "name": OTHER_NAME}, details=OTHER_DETAILS), headers=OTHER)
    records = {**await a_notice_and_an_appointment(api), "allowance": seed_allowance(api.settings)}

    refused = await erase(api)
    problem = await refused.json()
    assert refused.status == 409 and refused.content_type == "application/problem+json"
    assert a["first"]["reference"] in problem["detail"] and "open" in problem["detail"]
    for still_open in (records["notice"]["number"], "allowance", "appointment"):
        assert still_open in problem["detail"], still_open

    await close_them(api, a)
    records.update(await close_the_others(api, records))
    await wait_until_followed(api.settings)
    # A browser session of A's: the table holds neither A's ID nor their ThaiD subject, only the
    # blind index the erasure finds it by.
    sessions = api.client.server.app[CTX].sessions
    session_id, _ = await sessions.create(Actor(sub=CITIZEN_ID, role="citizen", pid=CITIZEN_ID), datetime.now(timezone.utc))
    assert (await sessions.get(session_id, datetime.now(timezone.utc))).actor.pid == CITIZEN_ID
    with psycopg.connect(api.settings.database.conninfo()) as conn:
        assert CITIZEN_ID not in str(conn.execute("SELECT to_jsonb(s)::text FROM auth_sessions s").fetchall())
    await copy_feed_into_webhook_deliveries(api)
    other_before = await get(api, f"/v1/service-requests/{other['id']}?min_position={other['position']}")
    # A's export holds the allowance register row with its disbursement line, the notice with its
    # payment, both receipts and the appointment; the batch's and the roll's events by reference;
    # nothing of the other person's. A's own copy has the same sections.
    exported = await export_of(api)
    assert exported["sections"] == ["requests", "payments", "allowances", "tax_notices", "receipts", "appointments", "events"]
    recipient_a = str(records["allowance"]["recipients"]["a"])
    [allowance] = exported["allowances"]
    assert (allowance["id"], allowance["national_id"], allowance["birth_date"], allowance["status"]) == (recipient_a, CITIZEN_ID, A_BIRTH, "ended")
    assert allowance["payout"] == {"kind": "bank", "account": "XXXXXX6285"} and allowance["reasons"] == [{"status": "ended", "reason": A_ENDED}]
    [line] = allowance["disbursements"]
    assert (line["batch_id"], line["month"], line["amount_satang"], line["status"], line["reason"]) == (
        str(records["allowance"]["batch"]), "2026-12", 70_000, "refused", A_REFUSED)
    [notice] = exported["tax_notices"]
    assert (notice["number"], notice["owner_id"], notice["status"]) == (records["notice"]["number"], CITIZEN_ID, "paid")
    assert [p["id"] for p in notice["payments"]] == [records["tax_payment"]["id"]] and notice["amount_due"]["total_satang"] == 0
    assert notice["parcels"] and "ER-001" in orjson.dumps(notice["parcels"]).decode()
    assert {p["id"] for p in exported["payments"]} == {a["paying"]["payment"]["id"], records["tax_payment"]["id"]}
    assert {r["payer"]["name"] for r in exported["receipts"]} == {NAME} and len(exported["receipts"]) == 2
    [appointment] = exported["appointments"]
    assert (appointment["id"], appointment["status"], appointment["applicant"]["name"]) == (records["appointment"]["id"], "cancelled", NAME)
    by_reference = {e["type"] for e in exported["events"] if e.get("by_reference")}
    assert {"DisbursementBatch.Prepared", "DisbursementBatch.Settled", "TaxRoll.ParcelsRecorded"} <= by_reference
    assert all("data" not in e for e in exported["events"] if e.get("by_reference"))
    held = {e["aggregate_id"] for e in exported["events"] if not e.get("by_reference")}
    assert {recipient_a, records["notice"]["id"], records["appointment"]["id"], *(r["id"] for r in exported["receipts"])} <= held
    assert str(records["allowance"]["recipients"]["other"]) not in held
    for text in (OTHER_ID, OTHER_NAME, OTHER_ACCOUNT, "ER-002"):
        assert text not in sections_text(exported), text
    mine = await export_of(api, CITIZEN)
    assert {k: mine[k] for k in ("allowances", "tax_notices", "receipts", "appointments")} == {
        k: exported[k] for k in ("allowances", "tax_notices", "receipts", "appointments")}
    assert "สมชาย" in every_text_in_the_database(api.settings)  # the views and feed held it before

    erasing = await erase(api)
    erased = await ok(erasing)
    assert int(erasing.headers["OneStop-Position"]) == erased["position"]
    assert erased["status"] == "erased" and erased["basis"] == BASIS and erased["subject"] and CITIZEN_ID not in str(erased)
    # Three requests, two payments (the permit's, the tax notice's), two receipts, the notice, the
    # appointment and the recipient; the batch and the roll hold elements. Two key sets: the API
    # process's, and the one the allowance was seeded with in another process.
    assert erased["purged"]["keys"] == 2 and erased["purged"]["deliveries"] > 0
    assert erased["purged"]["sessions"] == 1 and await sessions.get(session_id, datetime.now(timezone.utc)) is None
    assert erased["purged"]["view_rows"] == 10 and erased["purged"]["register_rows"] == 1 and erased["purged"]["batches"] == 2
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

    # The DPO's export still finds A's records (by the blind index), each reading "[erased]"
    # where personal, with amounts, numbers, statuses and references kept.
    after = await export_of(api)
    after_text = sections_text(after)
    for text in A_TEXTS:
        assert text not in after_text, text
    assert len(after["requests"]) == 3 and {r["applicant"]["name"] for r in after["requests"]} == {"[erased]"}
    [allowance] = after["allowances"]
    assert (allowance["id"], allowance["national_id"], allowance["birth_date"], allowance["payout"]["account"]) == (
        recipient_a, "[erased]", "[erased]", "[erased]")
    assert allowance["reasons"] == [{"status": "ended", "reason": "[erased]"}]
    assert [(d["amount_satang"], d["status"], d["reason"]) for d in allowance["disbursements"]] == [(70_000, "refused", "[erased]")]
    [notice] = after["tax_notices"]
    assert (notice["number"], notice["owner_id"], notice["status"], notice["tax_satang"]) == (
        records["notice"]["number"], "[erased]", "paid", records["notice"]["tax_satang"])
    assert [p["id"] for p in notice["payments"]] == [records["tax_payment"]["id"]]
    assert {r["payer"]["name"] for r in after["receipts"]} == {"[erased]"} and len(after["receipts"]) == 2
    assert after["appointments"][0]["applicant"] == {"national_id": "[erased]", "name": "[erased]"}
    assert "DataSubject.Erased" in {e["type"] for e in after["events"]}

    # The allowance register, the disbursement batch, the tax notice and roll, the appointment,
    # the receipts: A's fields read "[erased]"; amounts, numbers and references are kept.
    register = {r["id"]: r for r in (await get(api, f"/v1/allowances/recipients?organization={ORG}"))["items"]}
    mine, theirs = register[str(records["allowance"]["recipients"]["a"])], register[str(records["allowance"]["recipients"]["other"])]
    assert (mine["national_id"], mine["birth_date"], mine["payout"]["account"]) == ("[erased]", "[erased]", "[erased]")
    assert mine["reasons"] == [{"status": "ended", "reason": "[erased]"}] and mine["band_amount_satang"] == 70_000
    assert (theirs["national_id"], theirs["birth_date"], theirs["status"]) == (OTHER_ID, "1948-07-02", "active")
    reader = build_back_office(api.settings)
    try:
        batch = reader.repository.get(records["allowance"]["batch"])
        assert batch.lines[0] == [str(records["allowance"]["recipients"]["a"]), "[erased]", 70_000, 70_000, "bank", "[erased]"]
        assert batch.lines[1] == [str(records["allowance"]["recipients"]["other"]), OTHER_ID, 80_000, 80_000, "bank", OTHER_ACCOUNT]
        assert batch.results == [[str(records["allowance"]["recipients"]["a"]), "refused", "[erased]", None],
                                 [str(records["allowance"]["recipients"]["other"]), "paid", "", "TX-OTHER-1"]]
    finally:
        reader.close()
    notice = await get(api, f"/v1/land-tax/notices/{records['notice']['id']}")
    assert notice["owner_id"] == "[erased]" and notice["number"] == records["notice"]["number"]
    assert notice["tax_satang"] == records["notice"]["tax_satang"] and notice["status"] == "paid"
    assert (await get(api, f"/v1/land-tax/notices?owner_id={OTHER_ID}&tax_year=2569"))["items"][0]["owner_id"].endswith(OTHER_ID[-4:])  # masked for officers
    appointment = await get(api, f"/v1/appointments/{records['appointment']['id']}")
    assert appointment["applicant"] == {"national_id": "[erased]", "name": "[erased]"} and appointment["status"] == "cancelled"
    receipts = (await get(api, f"/v1/receipts?organization={ORG}&limit=100"))["items"]
    assert len(receipts) == 2 and {r["payer"]["name"] for r in receipts} == {"[erased]"}
    assert {r["amount_satang"] for r in receipts} == {20000, records["tax_payment"]["amount_satang"]}

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
        records = {**await a_notice_and_an_appointment(api), "allowance": seed_allowance(settings)}
        await close_them(api, a)
        await close_the_others(api, records)
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


def test_the_erasure_purge_takes_the_projectors_batches_and_reads_the_log_only_when_behind(settings: Settings) -> None:
    # The purge a projector runs after the views and the feed: handed each batch, it purges for
    # an erasure in it without reading the log; caught up, it reads nothing; behind (after a
    # start), it reads the log up to the batch.
    from application.commands import SubmitCommand
    from infrastructure.privacy.erasure import ErasureFollower
    from infrastructure.eventstore.event_log import read_notifications
    from onestop.bootstrap import datastore

    app = build_back_office(settings)
    try:
        personal = app.personal_data  # type: ignore[attr-defined]
        outcome = app.submit(SubmitCommand(body=complaint(), actor=Actor(sub=CITIZEN_ID, role="citizen", pid=CITIZEN_ID),
                                           request_hash="h", idempotency_key="k"))
        views = build_views(app)
        Projector(app, views).catch_up()
        subjects = personal.subjects(personal.index(CITIZEN_ID))
        assert len(subjects) == 1
        personal.erase_keys(subjects)
        # The erasure as the log holds it (DataSubject.Erased names the key sets), after the request.
        head = app.recorder.max_notification_id()
        erased = read_notifications(datastore(app), 0, 100)[-1]
        object.__setattr__(erased, "__dict__", {**erased.__dict__, "id": head + 1, "topic": "onestop:DataSubject.Erased",
                                                "state": orjson.dumps({"subjects": [str(s) for s in subjects], "basis": "test"})})
        follower = ErasureFollower(personal)
        queries: list[str] = []
        original = follower.datastore.transaction

        def counted(*args: Any, **kwargs: Any) -> Any:
            queries.append("transaction")
            return original(*args, **kwargs)

        follower.datastore = type("Counting", (), {"transaction": staticmethod(counted)})()  # type: ignore[assignment]
        assert follower.take(head, [erased]) == 1
        assert queries.count("transaction") >= 1  # it had no position yet: read it and the log up to the batch
        with psycopg.connect(settings.database.conninfo()) as conn:
            row = conn.execute("SELECT applicant_name FROM request_summaries WHERE id = %s", (uuid.UUID(outcome.state["id"]),)).fetchone()
            saved = conn.execute("SELECT position FROM erasures_followed WHERE name = 'views'").fetchone()
        assert row == ("[erased]",) and saved == (head + 1,)
        queries.clear()
        assert follower.catch_up(until=head + 1) == 0 and queries == []  # caught up: nothing read
    finally:
        app.close()


def test_the_projector_keeps_no_national_id_of_an_erased_person_for_its_blind_indexes(settings: Settings) -> None:
    # The views keep the national IDs they last computed a blind index for (to compute it once);
    # an erasure in a batch empties that, so no plain ID outlives the erasure in the projector.
    from uuid import UUID

    from application.commands import SubmitCommand
    from application.erasure import EraseCommand, erase_data_subject

    app = build_back_office(settings)
    try:
        citizen = Actor(sub=CITIZEN_ID, role="citizen", pid=CITIZEN_ID)
        outcome = app.submit(SubmitCommand(body=complaint(), actor=citizen, request_hash="h", idempotency_key="k"))
        app.act(UUID(outcome.state["id"]), "withdraw", {"reason": "ยื่นผิด"}, citizen, "web", None)
        views = build_views(app)
        projector = Projector(app, views)
        projector.catch_up()
        assert CITIZEN_ID in views._indexes
        erase_data_subject(app, EraseCommand(national_id=CITIZEN_ID, basis=BASIS, actor=Actor(sub="admin", role="admin")))
        projector.catch_up(position=projector.position)
        assert CITIZEN_ID not in views._indexes and views._indexes == {}
    finally:
        app.close()
