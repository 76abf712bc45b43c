"""Personal data: encrypted per person in the event log, found by a keyed blind index, under a
master key that can be rotated; over HTTP, a citizen's own data, the DPO's export, and the
access log of who read a person's data (real PostgreSQL)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from application.disclosures import AUDIT_EVENTS, AUDIT_EXPORT, REQUEST, REQUEST_AS_OF, REQUEST_EVENTS, REQUEST_LIST, SUBJECT_EXPORT
from infrastructure.privacy.keys import BlindIndex, KeyUnreadable
from infrastructure.secret_box import parse_key
from onestop.bootstrap import build_back_office
from onestop.privacy_commands import rotate_master_key
from onestop.settings import Settings
from tests.conftest import BLIND_INDEX_KEY, JWT_SECRET, ROOT, national_id
from tests.integration.api_harness import (
    AUDITOR, CITIZEN, CITIZEN_ID, OFFICER, OTHER_OFFICER, Harness, complaint, start_harness, token,
)

pytestmark = pytest.mark.postgres

NAME = "สมชาย ใจดี"
OTHER_NAME = "สมหญิง รักดี"
# A second person (a valid check digit: the harness's other citizen's has none).
OTHER_CITIZEN_ID = "1101700230708"
OTHER_CITIZEN = token("citizen", OTHER_CITIZEN_ID)

DPO = token("dpo", "dpo.saensuk")
ADMIN = token("admin", "dev-admin")
# The subject reference of the access log: the event store's keyed blind index.
REF = BlindIndex(parse_key(BLIND_INDEX_KEY)).reference


async def _certified_copy(api: Harness, headers: dict[str, str], national_id: str) -> dict[str, Any]:
    """A request with a fee, so a payment is opened for it."""
    return await api.submit({
        "service": "civil.certified-copy", "organization": "MUN-SAENSUK", "channel": "counter" if headers is OFFICER else "web",
        "applicant": {"national_id": national_id, "name": "ทดสอบ"}, "details": {"document": "house-registration", "copies": 2},
    }, headers=headers)


async def _json(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


def _access_rows(api: Harness) -> list[dict[str, Any]]:
    with psycopg.connect(api.settings.database.conninfo()) as conn:
        cursor = conn.execute("SELECT subject_ref, actor_sub, actor_role, actor_org, what, resource, purpose FROM access_log ORDER BY id")
        names = [c.name for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


async def _flushed(api: Harness) -> list[dict[str, Any]]:
    from api.app_key import CTX

    await api.client.app[CTX].access_log.flush()
    return _access_rows(api)


async def test_each_kind_of_staff_read_is_recorded_with_actor_subject_and_purpose(api: Harness) -> None:
    state = await api.submit()
    rid, position = state["id"], state["position"]
    purpose = {"X-Purpose": "ตรวจสอบคำร้อง #12"}
    assert (await api.client.get(f"/v1/service-requests/{rid}", headers={**OFFICER, **purpose})).status == 200
    assert (await api.client.get(f"/v1/service-requests/{rid}/events", headers=OFFICER)).status == 200
    assert (await api.client.get(f"/v1/service-requests?min_position={position}", headers=OFFICER)).status == 200
    assert (await api.client.get(f"/v1/service-requests/{rid}?as_of=2100-01-01T00:00:00Z", headers=AUDITOR)).status == 200
    assert (await api.client.get("/v1/audit/events", headers=AUDITOR)).status == 200
    export = await api.client.get("/v1/audit/export", headers={**AUDITOR, "X-Purpose": "annual audit"})
    assert export.status == 200 and rid in await export.text()
    assert (await api.client.get(f"/v1/data-subjects/{CITIZEN_ID}/export", headers=DPO)).status == 200

    rows = await _flushed(api)
    assert {r["subject_ref"] for r in rows} == {REF(CITIZEN_ID)}
    kinds = {(r["what"], r["actor_sub"], r["actor_role"]) for r in rows}
    assert kinds == {
        (REQUEST, "officer.saensuk", "officer"), (REQUEST_EVENTS, "officer.saensuk", "officer"),
        (REQUEST_LIST, "officer.saensuk", "officer"), (REQUEST_AS_OF, "auditor.oag", "auditor"),
        (AUDIT_EVENTS, "auditor.oag", "auditor"), (AUDIT_EXPORT, "auditor.oag", "auditor"),
        (SUBJECT_EXPORT, "dpo.saensuk", "dpo"),
    }
    detail = next(r for r in rows if r["what"] == REQUEST)
    assert (detail["resource"], detail["actor_org"], detail["purpose"]) == (rid, "MUN-SAENSUK", "ตรวจสอบคำร้อง #12")
    assert next(r for r in rows if r["what"] == AUDIT_EXPORT)["purpose"] == "annual audit"
    # The plain national ID is nowhere in the log.
    assert CITIZEN_ID not in repr(rows)


async def test_a_citizens_own_reads_leave_no_rows(api: Harness) -> None:
    state = await api.submit()
    for path in (f"/v1/service-requests/{state['id']}", f"/v1/service-requests/{state['id']}/events",
                 f"/v1/service-requests?min_position={state['position']}", f"/v1/me/data?min_position={state['position']}"):
        assert (await api.client.get(path, headers=CITIZEN)).status == 200, path
    assert await _flushed(api) == []


async def test_my_data_holds_exactly_the_callers_requests_payments_and_events(api: Harness) -> None:
    mine = [await api.submit(), await _certified_copy(api, CITIZEN, CITIZEN_ID)]
    others = [await api.submit(complaint(applicant={"national_id": OTHER_CITIZEN_ID, "name": "คนอื่น"}), headers=OTHER_CITIZEN),
              await _certified_copy(api, OTHER_CITIZEN, OTHER_CITIZEN_ID)]
    fee = await api.act(mine[1]["id"], "assess-fee", {"amount_satang": 2000}, headers=OFFICER)
    assert fee.status == 200, await fee.text()
    other_fee = await api.act(others[1]["id"], "assess-fee", {"amount_satang": 2000}, headers=OFFICER)
    assert other_fee.status == 200, await other_fee.text()
    position = (await other_fee.json())["position"]

    data = await _json(await api.client.get(f"/v1/me/data?min_position={position}", headers=CITIZEN))
    assert data["national_id"] == CITIZEN_ID and data["sections"] == ["requests", "payments", "allowances", "tax_notices", "receipts", "appointments", "events"]
    assert sorted(r["id"] for r in data["requests"]) == sorted(r["id"] for r in mine)
    assert {r["applicant"]["national_id"] for r in data["requests"]} == {CITIZEN_ID}
    assert [p["request_id"] for p in data["payments"]] == [mine[1]["id"]]
    mine_ids = {r["id"] for r in mine} | {p["id"] for p in data["payments"]}
    assert {e["aggregate_id"] for e in data["events"]} == mine_ids
    assert "Payment.Opened" in {e["type"] for e in data["events"]}
    assert OTHER_CITIZEN_ID not in repr(data)

    theirs = await _json(await api.client.get(f"/v1/me/data?min_position={position}", headers=OTHER_CITIZEN))
    assert sorted(r["id"] for r in theirs["requests"]) == sorted(r["id"] for r in others)


async def test_the_dpo_export_streams_a_persons_data_in_chunks(api: Harness) -> None:
    last = None
    for _ in range(35):  # under the per-subject burst
        last = await api.submit()
    assert last is not None
    response = await api.client.get(f"/v1/data-subjects/{CITIZEN_ID}/export?min_position={last['position']}", headers={**DPO, "X-Purpose": "คำขอใช้สิทธิ์ ม.30"})
    assert response.status == 200 and response.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.headers
    data = await response.json()
    assert len(data["requests"]) == 35 and len(data["events"]) == api.event_count()  # every event is theirs
    rows = await _flushed(api)
    assert [(r["what"], r["purpose"]) for r in rows] == [(SUBJECT_EXPORT, "คำขอใช้สิทธิ์ ม.30")]


async def test_officers_and_citizens_cannot_call_the_dpo_endpoints(api: Harness) -> None:
    for headers in (OFFICER, OTHER_OFFICER, CITIZEN, AUDITOR):
        for path in (f"/v1/data-subjects/{CITIZEN_ID}/export", f"/v1/data-subjects/{CITIZEN_ID}/access-log"):
            response = await api.client.get(path, headers=headers)
            assert response.status == 403 and response.content_type == "application/problem+json", path
    assert (await api.client.get("/v1/me/data", headers=OFFICER)).status == 403
    assert (await api.client.get("/v1/me/data", headers=DPO)).status == 403


async def test_a_bad_national_id_or_purpose_gets_400_naming_it(api: Harness) -> None:
    for bad in ("3100600445636", "310060044563", "abcdefghijklm"):
        problem = await _json(await api.client.get(f"/v1/data-subjects/{bad}/export", headers=DPO), 400)
        assert [e["field"] for e in problem["errors"]] == ["national_id"]
    state = await api.submit()
    for purpose in ("x" * 201, "tab\there"):
        problem = await _json(await api.client.get(f"/v1/service-requests/{state['id']}", headers={**OFFICER, "X-Purpose": purpose}), 400)
        assert [e["field"] for e in problem["errors"]] == ["X-Purpose"]
    assert await _flushed(api) == []


async def test_the_dpo_pages_through_a_persons_access_log(api: Harness) -> None:
    state = await api.submit()
    other = await api.submit(complaint(applicant={"national_id": OTHER_CITIZEN_ID, "name": "คนอื่น"}), headers=OTHER_CITIZEN)
    for i in range(5):
        assert (await api.client.get(f"/v1/service-requests/{state['id']}", headers={**OFFICER, "X-Purpose": f"read {i}"})).status == 200
    assert (await api.client.get(f"/v1/service-requests/{other['id']}", headers=OFFICER)).status == 200
    first = await _json(await api.client.get(f"/v1/data-subjects/{CITIZEN_ID}/access-log?limit=3", headers=DPO))
    assert [i["purpose"] for i in first["items"]] == ["read 0", "read 1", "read 2"]
    assert first["items"][0]["actor"] == {"sub": "officer.saensuk", "role": "officer", "org": "MUN-SAENSUK"}
    second = await _json(await api.client.get(f"/v1/data-subjects/{CITIZEN_ID}/access-log?limit=3&after={first['next_cursor']}", headers=ADMIN))
    assert [i["purpose"] for i in second["items"]] == ["read 3", "read 4"] and second["next_cursor"] is None
    theirs = await _json(await api.client.get(f"/v1/data-subjects/{OTHER_CITIZEN_ID}/access-log", headers=DPO))
    assert [(i["what"], i["resource"]) for i in theirs["items"]] == [(REQUEST, other["id"])]


async def test_rows_waiting_in_the_buffer_are_written_when_the_api_shuts_down(api: Harness) -> None:
    state = await api.submit()
    assert (await api.client.get(f"/v1/service-requests/{state['id']}", headers=OFFICER)).status == 200
    await api.client.close()  # runs the cleanup hooks, as a graceful stop does
    assert [r["what"] for r in _access_rows(api)] == [REQUEST]


def stored_states(settings: Settings) -> list[str]:
    with psycopg.connect(settings.database.conninfo()) as conn:
        return [row[0] for row in conn.execute("SELECT convert_from(state, 'UTF8') FROM onestop_events ORDER BY notification_id")]


async def listed(api: Harness, query: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/service-requests?{query}", headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["items"]


async def test_the_log_holds_no_plain_national_id_name_or_complaint_text(api: Harness) -> None:
    filed = await api.submit()
    await api.act(filed["id"], "request-info", {"message": "ขอสำเนาทะเบียนบ้านของนายสมชาย"})
    states = stored_states(api.settings)
    assert len(states) >= 2
    for state in states:
        for plain in (CITIZEN_ID, "สมชาย", "ไฟถนน", "ซอย 5"):
            assert plain not in state
        assert state.startswith('{"_subject_":"')
    # What is not personal stays plain, so the log can still be filtered and audited.
    assert '"organization":"MUN-SAENSUK"' in states[0] and filed["reference"] in states[0]
    # The application reads its own events in the clear.
    app = build_back_office(api.settings)
    try:
        request = app.get_request(__import__("uuid").UUID(filed["id"]))
        assert request.applicant == {"national_id": CITIZEN_ID, "name": NAME}
        assert request.details["description"] == "ไฟถนนหน้าบ้านดับสามคืน"
    finally:
        app.close()


async def test_the_blind_index_finds_a_persons_requests_and_a_wrong_key_finds_nothing(api: Harness) -> None:
    mine = [await api.submit() for _ in range(2)]
    other = await api.submit(complaint(applicant={"national_id": OTHER_CITIZEN_ID, "name": OTHER_NAME}), headers=OTHER_CITIZEN)
    position = other["position"]
    found = await listed(api, f"applicant={CITIZEN_ID}&min_position={position}", OFFICER)
    assert {r["id"] for r in found} == {r["id"] for r in mine}
    assert [r["id"] for r in await listed(api, f"min_position={position}", OTHER_CITIZEN)] == [other["id"]]
    assert {r["id"] for r in await listed(api, f"min_position={position}", CITIZEN)} == {r["id"] for r in mine}
    # The views keep the index, never a way back to the ID from it.
    with psycopg.connect(api.settings.database.conninfo()) as conn:
        indexes = {row[0] for row in conn.execute("SELECT applicant_index FROM request_summaries")}
        keyed = {row[0] for row in conn.execute("SELECT blind_index FROM subject_keys")}
    assert len(indexes) == 2 and indexes == keyed and not any(CITIZEN_ID in i for i in indexes)
    # An API with another blind-index key computes other indexes: it finds nobody.
    wrong = replace(api.settings, blind_index_key=b"w" * 32)
    other_api = await start_harness(wrong)
    try:
        assert await listed(other_api, f"applicant={CITIZEN_ID}", OFFICER) == []
        assert await listed(other_api, "", CITIZEN) == []
    finally:
        await other_api.client.close()


async def test_rotating_the_master_key_keeps_old_events_readable_and_touches_no_event(api: Harness, tmp_path: Path) -> None:
    filed = await api.submit()
    before = stored_states(api.settings)
    old_key = base64.b64decode("b25lc3RvcC10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=")
    key_file = tmp_path / "master_key"
    key_file.write_text(base64.b64encode(old_key).decode())
    with_file = replace(api.settings, master_key_file=key_file)
    result = rotate_master_key(with_file, None)
    assert result["rewrapped"] == 1
    assert (tmp_path / "master_key.previous").read_text().strip() == base64.b64encode(old_key).decode()
    new_key = base64.b64decode(key_file.read_text().strip())
    assert new_key != old_key
    assert stored_states(api.settings) == before  # not one stored byte changed
    rotated = replace(api.settings, master_key=new_key)
    app = build_back_office(rotated)
    try:
        assert app.get_request(__import__("uuid").UUID(filed["id"])).applicant["name"] == NAME
    finally:
        app.close()
    stale = build_back_office(replace(api.settings, master_key=old_key))
    try:
        with pytest.raises(KeyUnreadable, match="not configured"):
            stale.get_request(__import__("uuid").UUID(filed["id"]))
    finally:
        stale.close()
    # Run again to the same key (after an interruption, say), it re-wraps nothing more.
    assert rotate_master_key(rotated, key_file)["rewrapped"] == 0


def test_the_api_refuses_to_start_without_a_master_key_and_says_why(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONESTOP_")}
    env.update({"ONESTOP_DATABASE_URL": settings.database_url or "", "ONESTOP_JWT_SECRET": JWT_SECRET,
                "ONESTOP_SECRETS_KEY": "b25lc3RvcC10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE=",
                "ONESTOP_BLIND_INDEX_KEY": "b25lc3RvcC10ZXN0LWJsaW5kLWluZGV4LWtleS0zMiE=", "ONESTOP_PORT": "0"})
    refused = subprocess.run([sys.executable, "-m", "onestop.cli", "api"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "ONESTOP_MASTER_KEY or ONESTOP_MASTER_KEY_FILE is required" in refused.stderr
    assert "Traceback" not in refused.stderr


async def test_a_key_set_erased_by_another_process_is_not_reused_for_a_new_request(settings: Settings) -> None:
    from application.commands import SubmitCommand
    from domain.actors import Actor

    def filing(key: str) -> SubmitCommand:
        body = complaint()
        return SubmitCommand(body=body, actor=Actor(sub=CITIZEN_ID, role="citizen", pid=CITIZEN_ID), request_hash=key, idempotency_key=key)

    app = build_back_office(settings)
    fresh = build_back_office(settings)
    try:
        first = app.submit(filing("one")).state
        # Another process erases the person: this one still has their key set cached.
        with psycopg.connect(settings.database.conninfo(), autocommit=True) as conn:
            conn.execute("UPDATE subject_keys SET wrapped_key = NULL, erased_at = now()")
        second = app.submit(filing("two")).state
        uuid = __import__("uuid")
        assert fresh.get_request(uuid.UUID(second["id"])).applicant["name"] == NAME  # readable: under a new key set
        assert fresh.get_request(uuid.UUID(first["id"])).applicant["name"] == "[erased]"
        with psycopg.connect(settings.database.conninfo()) as conn:
            rows = conn.execute("SELECT count(*), count(wrapped_key), count(DISTINCT blind_index) FROM subject_keys").fetchone()
        assert rows == (2, 1, 1)
    finally:
        app.close()
        fresh.close()


def test_a_new_persons_first_request_is_tied_to_its_key_set_on_the_keys_own_row(settings: Settings) -> None:
    # A new person's save writes one row (the key set, naming the request it was made for), not
    # a second one in subject_aggregates; their next request reuses the key set and is tied in
    # subject_aggregates. A process that has cached nothing finds both ways, both directions.
    import uuid

    from application.commands import SubmitCommand
    from domain.actors import Actor

    def filing(body: dict[str, Any]) -> SubmitCommand:
        key = str(uuid.uuid4())
        return SubmitCommand(body=body, actor=Actor(sub=CITIZEN_ID, role="citizen", pid=CITIZEN_ID), request_hash=key, idempotency_key=key)

    app = build_back_office(settings)
    fresh = build_back_office(settings)
    try:
        first = uuid.UUID(app.submit(filing(complaint())).state["id"])
        second = uuid.UUID(app.submit(filing(complaint(details={"subject": "ท่อตัน", "description": "ท่อระบายน้ำอุดตัน", "location": "ซอย 7"}))).state["id"])
        with psycopg.connect(settings.database.conninfo()) as conn:
            key_rows = conn.execute("SELECT subject_id, aggregate_id FROM subject_keys").fetchall()
            links = dict(conn.execute("SELECT aggregate_id, subject_id FROM subject_aggregates").fetchall())
        assert len(key_rows) == 1
        subject, made_for = key_rows[0]
        assert made_for == first and first not in links
        assert links == {second: subject}
        keys = fresh.personal_data.keys
        with keys.reading() as curs:
            assert keys.subjects_of(curs, [first, second]) == {first: subject, second: subject}
            assert set(keys.aggregates_of(curs, [subject])) == {first, second}
        assert fresh.get_request(second).applicant["name"] == NAME
    finally:
        app.close()
        fresh.close()


def test_a_save_never_uses_a_key_set_another_save_made_before_that_one_commits(settings: Settings) -> None:
    # Save A makes a key set for a person this process has never seen and is held just before
    # its transaction; save B, for the same person, runs meanwhile. B must not take A's key set
    # (its check that the key set is live would find no row, and B would be refused as if the
    # person were erased); after A commits, later saves use A's.
    import threading
    import uuid

    from application.commands import SubmitCommand
    from domain.actors import Actor
    from infrastructure.privacy.keys import ERASED_MARKER

    app = build_back_office(settings)
    recorder = app.recorder
    original = recorder.insert_events
    a_waiting, b_done = threading.Event(), threading.Event()
    refused: list[str] = []

    def insert_events(stored_events: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "save-a":
            a_waiting.set()
            assert b_done.wait(10)
        try:
            return original(stored_events, **kwargs)
        except Exception as error:
            if ERASED_MARKER in str(error):
                refused.append(threading.current_thread().name)
            raise

    def filing() -> SubmitCommand:
        return SubmitCommand(body=complaint(applicant={"national_id": OTHER_CITIZEN_ID, "name": OTHER_NAME}),
                             actor=Actor(sub=OTHER_CITIZEN_ID, role="citizen", pid=OTHER_CITIZEN_ID),
                             request_hash=str(uuid.uuid4()), idempotency_key=str(uuid.uuid4()))

    recorder.insert_events = insert_events
    try:
        outcomes: list[Any] = []
        save_a = threading.Thread(target=lambda: outcomes.append(app.submit(filing())), name="save-a")
        save_a.start()
        assert a_waiting.wait(10)
        outcomes.append(app.submit(filing()))  # save B, while A is uncommitted
        b_done.set()
        save_a.join(10)
        outcomes.append(app.submit(filing()))  # after both: reuses a committed key set
        assert len(outcomes) == 3 and refused == []
        with psycopg.connect(settings.database.conninfo()) as conn:
            key_sets = conn.execute("SELECT count(*) FROM subject_keys WHERE wrapped_key IS NOT NULL").fetchone()
        assert key_sets == (2,)  # A's and B's own; the third save reused one
    finally:
        recorder.insert_events = original
        app.close()


def test_saves_stay_encrypted_while_other_threads_empty_the_caches(settings: Settings) -> None:
    """With a key cache of 2 (the aggregate-to-subject cache then holds 8), four threads filing
    for new people keep emptying the caches under each other's saves: every save still finds
    its subjects (each save keeps its own copy of what it found), nothing is refused, and no
    national ID or citizen's sub is stored plain (a payment whose request's subject went
    missing midway would have been stored without one)."""
    import threading
    import uuid

    from application.commands import SubmitCommand
    from domain.actors import Actor

    app = build_back_office(replace(settings, key_cache_size=2))
    people: list[str] = []
    lock = threading.Lock()

    def filing(n: int) -> SubmitCommand:
        pid = national_id(n)
        with lock:
            people.append(pid)
        body = complaint(applicant={"national_id": pid, "name": f"ผู้ยื่น {n}"})
        if n % 3 == 0:
            body = complaint(service="local.flyer-permit", applicant={"national_id": pid, "name": f"ผู้ยื่น {n}"},
                             details={"description": "d", "area": "ตลาด", "start_date": "2026-12-01", "end_date": "2026-12-03", "quantity": 20})
        return SubmitCommand(body=body, actor=Actor(sub=pid, role="citizen", pid=pid), request_hash=str(uuid.uuid4()),
                             idempotency_key=str(uuid.uuid4()))

    failures: list[BaseException] = []

    def work(start: int) -> None:
        try:
            for batch in range(12):
                for result in app.submit_many([filing(start + batch * 10 + i) for i in range(10)]):
                    if isinstance(result, BaseException):
                        failures.append(result)
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    try:
        threads = [threading.Thread(target=work, args=(900_000 + 1000 * t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        states = stored_states(settings)
        assert len(states) >= 4 * 12 * 10 * 2
        plain = [pid for pid in people if any(pid in state for state in states)]
        assert plain == []
        payments = [s for s in states if '"amount_satang"' in s and '"_subject_"' in s]
        assert payments  # the flyer permits' payments, each under its applicant's key
    finally:
        app.close()


def test_reading_a_batchs_keys_looks_each_up_by_its_key_never_scanning_the_table(settings: Settings) -> None:
    # The projector reads each batch's new keys: a scan of subject_keys per batch would grow with
    # every person ever filed. The planner is asked on a table of 20,000 key sets.
    import json
    import uuid

    from infrastructure.privacy.keys import LOAD_KEYS, uuid_array

    app = build_back_office(settings)
    try:
        with psycopg.connect(settings.database.conninfo(), autocommit=True) as conn:
            conn.execute("INSERT INTO subject_keys (subject_id, blind_index, wrapped_key, master_key_id)"
                         " SELECT gen_random_uuid(), md5(g::text), 'k', 'm' FROM generate_series(1, 20000) AS g")
            conn.execute("ANALYZE subject_keys")
            ids = [row[0] for row in conn.execute("SELECT subject_id FROM subject_keys LIMIT 100")] + [uuid.uuid4()]
            plan = json.dumps(conn.execute("EXPLAIN (FORMAT JSON) " + LOAD_KEYS, (uuid_array(ids),)).fetchone()[0])
            found = conn.execute(LOAD_KEYS, (uuid_array(ids),)).fetchall()
        assert '"Seq Scan"' not in plan and "subject_keys_pkey" in plan, plan
        assert sorted(n for n, _, _ in found) == list(range(1, 101))  # each found key names its place; the unknown id none
    finally:
        app.close()
