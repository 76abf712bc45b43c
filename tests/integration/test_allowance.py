"""The elderly allowance on the real stack (PostgreSQL, RabbitMQ, the simulators over HTTP): an
approved registration puts the person on the register; a monthly run over a few hundred
recipients with deaths, moves and closed accounts survives a kill -9 of its dispatcher and worker, pays
nobody twice (a second run included) and reports as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import random
import signal
from datetime import date, datetime, timezone
from typing import Any

import psycopg
import pytest

from application.allowance import recipient_id
from domain.actors import Actor
from domain.allowance import AllowanceRules, Recipient, month_text, next_month
from domain.calendar import bangkok_day
from infrastructure.allowance.register import RegisterFollower
from onestop.bootstrap import build_back_office, datastore
from tests.conftest import SUBJECT_INDEX, national_id
from tests.integration.api_harness import token
from tests.integration.jobs_harness import ADMIN, JobsStack, eventually, kill

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

ORG = "MUN-PHRAE"
OFFICER = token("officer", "officer.phrae", ORG)
OTHER_OFFICER = token("officer", "officer.saensuk", "MUN-SAENSUK")
SEEDER = Actor(sub="test-seed", role="system")


def _next_month() -> date:
    return next_month(bangkok_day(datetime.now(timezone.utc)).replace(day=1))


def _seed(stack: JobsStack, count: int, rng: random.Random) -> dict[str, Any]:
    """``count`` recipients of ORG on the register and in the registry: most alive and at home,
    some dead last month, some moved away two years ago (their old organisation's payments
    ended), some moved this month (still paid), some with a closed bank account."""
    month = _next_month()
    rules = AllowanceRules()
    today = bangkok_day(datetime.now(timezone.utc))
    people, recipients, expected = [], [], {"paid": 0, "refused": 0, "ended": 0, "satang": 0, "by_band": {}}
    app = build_back_office(stack.settings)
    try:
        for i in range(count):
            nid = national_id(10_000 + i)
            birth = date(1930 + rng.randrange(0, 35), rng.randrange(1, 13), rng.randrange(1, 29))
            kind = "dead" if i % 23 == 0 else "moved-long-ago" if i % 29 == 0 else "moved-now" if i % 31 == 0 else "closed" if i % 17 == 0 else "ok"
            account = ("999" if kind == "closed" else "123") + f"{i:07d}"
            person = {"national_id": nid, "birth_date": birth.isoformat(), "organization": ORG, "alive": True}
            if kind == "dead":
                # Died this month: paid through this month, not for the run's (next) month.
                person.update(alive=False, died_on=today.replace(day=1).isoformat())
            elif kind == "moved-long-ago":
                person.update(organization="SAO-MAEYOM", moved_on=date(today.year - 2, 1, 15).isoformat())
            elif kind == "moved-now":
                person.update(organization="SAO-MAEYOM", moved_on=today.isoformat())
            people.append(person)
            payout = {"kind": "promptpay", "account": nid} if i % 5 == 0 and kind != "closed" else {"kind": "bank", "account": account}
            recipients.append(Recipient.register(
                id=recipient_id(ORG, SUBJECT_INDEX.reference(nid)), at=datetime.now(timezone.utc), actor=SEEDER, national_id=nid, organization=ORG,
                birth_date=birth.isoformat(), payout=payout, start_month=month_text(today.replace(day=1)),
                band_amount_satang=rules.band_for(birth, month), request_id=None))
            if kind in ("dead", "moved-long-ago"):
                expected["ended"] += 1
                continue
            amount = rules.band_for(birth, month)
            if kind == "closed":
                expected["refused"] += 1
                continue
            expected["paid"] += 1
            expected["satang"] += amount
            band = expected["by_band"].setdefault(str(amount), {"count": 0, "satang": 0})
            band["count"] += 1
            band["satang"] += amount
        app.save(*recipients)
    finally:
        app.close()
    expected["people"] = people
    expected["month"] = month_text(month)
    return expected


async def _seed_registry(stack: JobsStack, people: list[dict[str, Any]]) -> None:
    async with stack.http.post(f"{stack.registry_url}/admin/people", json={"people": people}) as response:
        assert response.status == 200, await response.text()


async def _run(stack: JobsStack, month: str, headers: dict[str, str] = OFFICER, key: str = "run-1") -> tuple[int, dict[str, Any]]:
    response = await stack.harness.client.post("/v1/allowances/runs", json={"organization": ORG, "month": month},
                                               headers={**headers, "Idempotency-Key": key})
    return response.status, await response.json()


async def _summary(stack: JobsStack, run_id: str) -> dict[str, Any]:
    response = await stack.harness.client.get(f"/v1/allowances/runs/{run_id}", headers=OFFICER)
    assert response.status == 200, await response.text()
    return await response.json()


async def _completed(stack: JobsStack, run_id: str, timeout: float = 120) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        summary = await _summary(stack, run_id)
        assert summary["status"] != "failed", summary
        return summary if summary["status"] == "completed" else None
    return await eventually(done, timeout, interval=0.3, what=f"run {run_id} to complete")


def _count(stack: JobsStack, sql: str) -> int:
    with psycopg.connect(stack.settings.database.conninfo()) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def test_an_approved_registration_puts_the_applicant_on_the_register_and_officers_can_suspend_and_resume(
        jobs_stack: JobsStack, rabbitmq_broker: Any) -> None:
    stack = jobs_stack
    stack.start_in_process_jobs(rabbitmq_broker, threads=4)
    elderly = next(p for p in await stack.people(alive="true", min_age=61, organization=ORG))
    state = await stack.submit_as(elderly, "welfare.elderly-allowance", {"bank_account": "1234567890"})
    await stack.wait_status(state["id"], {"in_review"}, 60)
    response = await stack.harness.act(state["id"], "approve", {}, headers=OFFICER)
    assert response.status == 200, await response.text()
    rid = str(recipient_id(ORG, SUBJECT_INDEX.reference(elderly["national_id"])))
    response = await stack.harness.client.get(f"/v1/allowances/recipients/{rid}", headers=OFFICER)
    recipient = await response.json()
    assert response.status == 200, recipient
    assert recipient["status"] == "active" and recipient["birth_date"] == elderly["birth_date"]
    assert recipient["payout"] == {"kind": "bank", "account": "XXXXXX7890"}
    assert recipient["start_month"] == month_text(_next_month())
    assert recipient["band_amount_satang"] in (60_000, 70_000, 80_000, 100_000)
    assert (await stack.harness.client.get(f"/v1/allowances/recipients/{rid}", headers=OTHER_OFFICER)).status == 403

    response = await stack.harness.client.post(f"/v1/allowances/recipients/{rid}/suspend", json={}, headers=OFFICER)
    assert response.status == 422 and (await response.json())["errors"][0]["field"] == "reason"
    response = await stack.harness.client.post(f"/v1/allowances/recipients/{rid}/suspend", json={"reason": "bank book lost"}, headers=OFFICER)
    assert response.status == 200 and (await response.json())["status"] == "suspended"
    suspended_at = int(response.headers["OneStop-Position"])
    response = await stack.harness.client.post(f"/v1/allowances/recipients/{rid}/suspend", json={"reason": "again"}, headers=OFFICER)
    assert response.status == 409

    async def register_catches_up_later() -> None:
        await asyncio.sleep(0.5)
        app = build_back_office(stack.settings)
        try:
            await asyncio.to_thread(RegisterFollower(datastore(app), reveal=app.personal_data.reveal_states).catch_up)
        finally:
            app.close()

    # A read with the suspend's position waits for the register (which follows the log after
    # the views) and sees the suspension.
    response, _ = await asyncio.gather(
        stack.harness.client.get(f"/v1/allowances/recipients?status=suspended&min_position={suspended_at}", headers=OFFICER),
        register_catches_up_later())
    assert response.status == 200, await response.text()
    listed = await response.json()
    assert [r["id"] for r in listed["items"]] == [rid]
    assert (await stack.harness.client.get("/v1/allowances/recipients?status=active", headers=OFFICER)).status == 200
    assert (await stack.harness.client.get("/v1/allowances/recipients?organization=MUN-SAENSUK", headers=OFFICER)).status == 403
    response = await stack.harness.client.post(f"/v1/allowances/recipients/{rid}/resume", json={"reason": "found it"}, headers=OFFICER)
    assert response.status == 200 and (await response.json())["status"] == "active"


async def test_a_run_over_hundreds_of_recipients_survives_its_dispatcher_and_worker_killed_and_pays_nobody_twice(jobs_stack: JobsStack) -> None:
    stack = jobs_stack
    expected = _seed(stack, 360, random.Random(12))
    await _seed_registry(stack, expected["people"])
    stack.env.update(ONESTOP_ALLOWANCE_BATCH_LINES="30", ONESTOP_WORKER_THREADS="1")
    # The bank answers slowly, so that the run's transfers are at the bank and unanswered when
    # the processes die (the worker runs a message's jobs together: once the first answers come
    # back, the whole run may be done a moment later).
    await stack.set_faults(stack.bank_url, latency_ms=3000)
    stack.start("dispatcher")
    stack.start("worker")

    status, first = await _run(stack, expected["month"])
    assert status == 202 and first["status"] == "running"

    async def transfers_sent() -> bool:
        return (await stack.stats(stack.bank_url))["calls_by_route"].get("POST /transfers/bulk", 0) >= 1
    await eventually(transfers_sent, 60, what="the first bulk transfers at the bank")
    # Every process doing the run's work dies at once (the dispatcher and the worker), with
    # transfers in flight (the bank makes them, unanswered); then both come back: the run
    # resumes from what the log and the bank hold, and the bank's idempotency keys keep anyone
    # from being paid twice.
    for process in stack.processes[-2:]:
        kill(process, signal.SIGKILL)
    partial = await _summary(stack, first["id"])
    assert partial["status"] == "running" and partial["progress"]["done"] < partial["progress"]["total"]
    await stack.set_faults(stack.bank_url, latency_ms=300)
    stack.start("dispatcher")
    stack.start("worker")
    summary = await _completed(stack, first["id"])

    assert summary["paid"] == expected["paid"]
    assert summary["refused"] == expected["refused"]
    assert summary["ended"] == expected["ended"]
    assert summary["total_satang"] == expected["satang"]
    assert summary["by_band"] == dict(sorted(expected["by_band"].items(), key=lambda kv: int(kv[0])))
    assert summary["progress"] == {"done": expected["paid"] + expected["refused"], "total": expected["paid"] + expected["refused"]}
    bank = await stack.stats(stack.bank_url)
    assert bank["effects"]["allowance_transfer"] == expected["paid"]
    assert bank["keys_with_more_than_one_effect"] == 0
    ended = _count(stack, "SELECT count(*) FROM onestop_events WHERE topic = 'onestop:Recipient.Ended'")
    assert ended == expected["ended"]

    # A second run for the same organisation and month is the first one; it sends again only
    # what the bank refused (the accounts are still closed), and pays nobody twice.
    status, again = await _run(stack, expected["month"], headers=ADMIN, key="run-2")
    assert status == 200 and again["id"] == first["id"]
    retried = await _completed(stack, first["id"])
    assert retried["attempt"] == 1 and retried["paid"] == expected["paid"] and retried["refused"] == expected["refused"]
    bank = await stack.stats(stack.bank_url)
    assert bank["effects"]["allowance_transfer"] == expected["paid"] and bank["keys_with_more_than_one_effect"] == 0

    response = await stack.harness.client.get(f"/v1/allowances/runs/{first['id']}", headers={**OFFICER, "Accept": "text/csv"})
    assert response.status == 200 and response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert len(rows) == expected["paid"] + expected["refused"]
    assert sum(1 for r in rows if r["status"] == "paid") == expected["paid"]
    assert {r["reason"] for r in rows if r["status"] == "refused"} == {"account closed"}
    assert sum(round(float(r["amount_baht"]) * 100) for r in rows if r["status"] == "paid") == expected["satang"]


async def test_a_run_is_for_an_officer_of_the_organisation_and_the_current_or_a_later_month(jobs_stack: JobsStack) -> None:
    stack = jobs_stack
    status, body = await _run(stack, "2020-01")
    assert status == 422 and body["errors"][0]["field"] == "month"
    status, body = await _run(stack, _next_month().isoformat()[:7], headers=OTHER_OFFICER)
    assert status == 403
    response = await stack.harness.client.post("/v1/allowances/runs", json={"organization": ORG, "month": "2027-1"}, headers={**OFFICER, "Idempotency-Key": "k"})
    assert response.status == 422 and (await response.json())["errors"][0]["field"] == "month"
    response = await stack.harness.client.post("/v1/allowances/runs", json={"organization": ORG, "month": "2099-01"}, headers=OFFICER)
    assert response.status == 400
