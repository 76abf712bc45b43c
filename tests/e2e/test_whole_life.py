"""A request's whole life over HTTP against `onestop run` started as a process."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import aiohttp
import pytest

from api.auth import make_token
from tests.conftest import JWT_SECRET, free_port
from tests.e2e.conftest import RunningStack, start_stack, stop_stack

pytestmark = pytest.mark.e2e

CITIZEN_ID = "3100600445635"
CITIZEN = {"Authorization": f"Bearer {make_token(JWT_SECRET, sub=CITIZEN_ID, role='citizen')}"}
OFFICER = {"Authorization": f"Bearer {make_token(JWT_SECRET, sub='officer.saensuk', role='officer', org='MUN-SAENSUK')}"}
COUNTER = {"Authorization": f"Bearer {make_token(JWT_SECRET, sub='officer.cbi', role='officer', org='PAO-CBI')}"}
# Health shows the outside systems' addresses to admins only.
ADMIN = {"Authorization": f"Bearer {make_token(JWT_SECRET, sub='dev-admin', role='admin')}"}


async def _post(session: aiohttp.ClientSession, url: str, body: dict, headers: dict, version: int | None = None, key: bool = False) -> dict:
    extra = {"If-Match": f'"{version}"'} if version is not None else {}
    if key:
        extra["Idempotency-Key"] = str(uuid.uuid4())
    async with session.post(url, json=body, headers={**headers, **extra}) as response:
        body = await response.json()
        assert response.status in (200, 201), body
        return body


async def test_a_complaint_goes_from_filing_to_completion_over_http(stack: RunningStack) -> None:
    base = stack.base + "/v1"
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/health") as health:
            assert health.status == 200
        body = {"service": "complaint", "organization": "MUN-SAENSUK", "channel": "mobile",
                "applicant": {"national_id": CITIZEN_ID, "name": "สมชาย ใจดี"},
                "details": {"subject": "ขยะไม่ถูกเก็บ", "description": "สองสัปดาห์แล้ว"}}
        state = await _post(s, f"{base}/service-requests", body, CITIZEN, key=True)
        assert state["status"] == "in_review" and state["reference"].startswith("OS")
        rid = state["id"]
        state = await _post(s, f"{base}/service-requests/{rid}/assign", {"officer": "officer.saensuk"}, OFFICER, state["version"])
        state = await _post(s, f"{base}/service-requests/{rid}/request-info", {"message": "ขอรูปถ่าย"}, OFFICER, state["version"])
        assert state["status"] == "info_requested"
        state = await _post(s, f"{base}/service-requests/{rid}/provide-info", {"message": "แนบแล้ว"}, CITIZEN, state["version"])
        state = await _post(s, f"{base}/service-requests/{rid}/approve", {"note": "ส่งรถเก็บขยะ"}, OFFICER, state["version"])
        state = await _post(s, f"{base}/service-requests/{rid}/complete", {}, OFFICER, state["version"])
        assert state["status"] == "completed"
        async with s.get(f"{base}/service-requests/{rid}?min_position={state['position']}", headers=CITIZEN) as r:
            seen = await r.json()
            assert seen["status"] == "completed" and r.headers["ETag"] == f'"{state["version"]}"'
        async with s.get(f"{base}/service-requests/{rid}/events", headers=OFFICER) as r:
            types = [e["type"] for e in (await r.json())["items"]]
        assert types == ["ServiceRequest.Submitted", "ServiceRequest.ReviewStarted", "ServiceRequest.Assigned",
                         "ServiceRequest.InfoRequested", "ServiceRequest.InfoProvided", "ServiceRequest.Approved",
                         "ServiceRequest.Completed"]


async def test_a_permit_is_filed_at_another_counter_paid_in_cash_and_decided(stack: RunningStack) -> None:
    base = stack.base + "/v1"
    async with aiohttp.ClientSession() as s:
        body = {"service": "local.flyer-permit", "organization": "MUN-SAENSUK", "channel": "counter",
                "applicant": {"national_id": CITIZEN_ID, "name": "สมชาย ใจดี"},
                "details": {"description": "ใบปลิวงานกาชาด", "area": "ตลาดหนองมน", "start_date": "2026-12-10", "end_date": "2026-12-20", "quantity": 500}}
        state = await _post(s, f"{base}/service-requests", body, COUNTER, key=True)
        assert state["status"] == "awaiting_payment" and state["filed_at"] == "PAO-CBI"
        payment_id = state["payment"]["id"]
        async with s.get(f"{base}/service-requests/{state['id']}?min_position={state['position']}", headers=CITIZEN) as r:
            assert r.status == 200
        async with s.get(f"{base}/payments/{payment_id}/qr?format=png", headers=CITIZEN) as r:
            assert r.status == 200 and r.content_type == "image/png"
        paid = await _post(s, f"{base}/payments/{payment_id}/record-cash", {"amount_satang": state["payment"]["amount_satang"]}, COUNTER)
        assert paid["status"] == "paid" and paid["request"]["status"] == "in_review"
        state = await _post(s, f"{base}/service-requests/{state['id']}/approve", {}, OFFICER, paid["request"]["version"])
        state = await _post(s, f"{base}/service-requests/{state['id']}/complete", {}, OFFICER, state["version"])
        assert state["status"] == "completed" and state["payment"]["status"] == "paid"


async def test_onestop_run_on_the_embedded_postgresql_serves_demo_data_and_prints_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ONESTOP_DATABASE_URL", "ONESTOP_JWT_SECRET")}
    env.update({"ONESTOP_PORT": str(free_port()), "ONESTOP_DATA_DIR": str(tmp_path / "data")})
    running = start_stack(env, timeout=180)
    try:
        printed = "".join(running.output)
        token = next(line.split()[-1] for line in running.output if line.strip().startswith("officer, MUN-SAENSUK:"))
        # The tokens are printed because `run` generated the secret; the secret itself is not.
        generated = (tmp_path / "data" / "jwt_secret").read_text().strip()
        assert generated not in printed and "ONESTOP_JWT_SECRET=" not in printed
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{running.base}/v1/service-requests?min_position=1", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
                items = (await r.json())["items"]
        assert {i["service"] for i in items} >= {"complaint", "local.flyer-permit"}
    finally:
        stop_stack(running.process)


async def test_under_onestop_run_a_certified_copy_is_verified_paid_by_qr_and_issued(stack: RunningStack) -> None:
    """`onestop run` also starts the simulators, the dispatcher and a worker (in-process broker)."""
    import asyncio

    base = stack.base + "/v1"
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/health", headers=ADMIN) as r:
            health = (await r.json())["dependencies"]
        assert health["registry"]["status"] == "up" and health["bank"]["status"] == "up" and health["broker"]["status"] == "up"
        body = {"service": "civil.certified-copy", "organization": "MUN-SAENSUK", "channel": "web",
                "applicant": {"national_id": CITIZEN_ID, "name": "สมชาย ใจดี"}, "details": {"document": "house-registration", "copies": 3}}
        state = await _post(s, f"{base}/service-requests", body, CITIZEN, key=True)
        assert state["status"] == "verifying"

        async def reach(status: str) -> dict:
            for _ in range(300):
                async with s.get(f"{base}/service-requests/{state['id']}", headers=CITIZEN) as r:
                    current = await r.json()
                if current.get("status") == status:
                    return current
                await asyncio.sleep(0.1)
            raise AssertionError(f"never reached {status}: {current}")

        awaiting = await reach("awaiting_payment")
        async with s.get(f"{base}/payments/{awaiting['payment']['id']}", headers=CITIZEN) as r:
            payment = await r.json()
        async with s.post(f"{health['bank']['url']}/pay", json={"payload": payment["promptpay_payload"]}) as r:
            assert r.status == 201
        in_review = await reach("in_review")
        await _post(s, f"{base}/service-requests/{state['id']}/approve", {}, OFFICER, in_review["version"])
        done = await reach("completed")
        assert done["result"]["document_ref"].startswith("DOPA-CC-") and done["payment"]["status"] == "paid"
