"""Whole flows through the outbox, Dramatiq on the real RabbitMQ, and the simulators over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

import orjson
import pytest

from domain.national_id import national_id_check_digit
from tests.integration.api_harness import OFFICER, token
from tests.integration.jobs_harness import CALLBACK_SECRET, JobsStack, eventually

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]


async def _resident(stack: JobsStack, **query: object) -> tuple[dict, list[dict]]:
    person = next(p for p in await stack.people(alive="true", **query) if p["organization"].startswith(("MUN-", "SAO-")))
    houses = [h for h in await stack.houses(person["organization"]) if h["house_id"] != person["house_id"]]
    return person, houses


def officer_of(org: str) -> dict[str, str]:
    return token("officer", f"officer@{org}", org)


async def test_an_address_change_is_verified_approved_and_recorded_at_the_registry(jobs_stack: JobsStack, rabbitmq_broker) -> None:
    stack = jobs_stack
    stack.start_in_process_jobs(rabbitmq_broker)
    person, houses = await _resident(stack)
    state = await stack.submit_as(person, "civil.address-change", {"to_house_id": houses[0]["house_id"], "move_date": "2026-12-01"})
    assert state["status"] == "verifying"
    state = await stack.wait_status(state["id"], {"in_review"})
    approved = await stack.harness.act(state["id"], "approve", {"note": "ok"}, headers=officer_of(person["organization"]), version=state["version"])
    assert approved.status == 200, await approved.text()
    done = await stack.wait_status(state["id"], {"completed"})
    assert done["result"]["move_id"].startswith("DOPA-MV-") and done["result"]["to_house_id"] == houses[0]["house_id"]
    moved = await stack.get(f"{stack.registry_url}/people/{person['national_id']}")
    assert moved["house_id"] == houses[0]["house_id"]
    stats = await stack.stats(stack.registry_url)
    assert stats["effects"].get("move") == 1 and stats["keys_with_more_than_one_effect"] == 0


async def test_a_certified_copy_is_paid_by_promptpay_and_issued_with_a_document_reference(jobs_stack: JobsStack, rabbitmq_broker) -> None:
    stack = jobs_stack
    stack.start_in_process_jobs(rabbitmq_broker)
    person, _ = await _resident(stack)
    state = await stack.submit_as(person, "civil.certified-copy", {"document": "house-registration", "copies": 2})
    state = await stack.wait_status(state["id"], {"awaiting_payment"})
    payment_url = f"/v1/payments/{state['payment']['id']}"
    payment = await (await stack.harness.client.get(payment_url, headers=token("citizen", person["national_id"]))).json()
    assert payment["amount_satang"] == 1000  # 2 copies of a house-registration entry at 5 baht (rules.toml)
    paid = await stack.pay(payment["promptpay_payload"])
    assert paid["reference"] == state["reference"] and paid["amount_satang"] == 1000
    state = await stack.wait_status(state["id"], {"in_review"})
    assert state["payment"]["status"] == "paid"
    officer = officer_of(person["organization"])
    assert (await stack.harness.act(state["id"], "approve", {}, headers=officer)).status == 200
    done = await stack.wait_status(state["id"], {"completed"})
    assert done["result"]["document_ref"].startswith("DOPA-CC-")
    events = await (await stack.harness.client.get(f"/v1/service-requests/{state['id']}/events", headers=officer)).json()
    types = [e["type"] for e in events["items"]]
    assert types.count("Payment.Received") == 1 and "Payment.ChargeCreated" in types


async def test_an_applicant_the_registry_does_not_know_is_rejected_with_its_reason(jobs_stack: JobsStack, rabbitmq_broker) -> None:
    stack = jobs_stack
    stack.start_in_process_jobs(rabbitmq_broker)
    known = {p["national_id"] for p in await stack.people(limit=1000)}
    stem = next(s for s in (f"19{n:010d}" for n in range(1, 10_000)) if s + str(national_id_check_digit(s)) not in known)
    stranger = {"national_id": stem + str(national_id_check_digit(stem)), "first_name_th": "ไม่", "last_name_th": "มีตัวตน", "organization": "MUN-PHRAE"}
    house = (await stack.houses("MUN-PHRAE"))[0]["house_id"]
    state = await stack.submit_as(stranger, "civil.address-change", {"to_house_id": house})
    rejected = await stack.wait_status(state["id"], {"rejected"})
    assert "not_found" in rejected["outcome"]


async def test_a_dead_person_is_rejected_with_the_registry_reason(jobs_stack: JobsStack, rabbitmq_broker) -> None:
    stack = jobs_stack
    stack.start_in_process_jobs(rabbitmq_broker)
    dead = next(p for p in await stack.people(alive="false") if p["organization"].startswith(("MUN-", "SAO-")))
    state = await stack.submit_as(dead, "welfare.elderly-allowance", {})
    rejected = await stack.wait_status(state["id"], {"rejected"})
    assert "deceased" in rejected["outcome"]


def _signed(body: dict) -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps(body)
    timestamp = str(int(time.time()))
    signature = hmac.new(CALLBACK_SECRET.encode(), f"{timestamp}.sim-bank.".encode() + raw, hashlib.sha256).hexdigest()
    return raw, {"X-Bank-Timestamp": timestamp, "X-Bank-Signature": signature, "Content-Type": "application/json"}


async def _awaiting_copy(stack: JobsStack) -> tuple[dict, dict]:
    person, _ = await _resident(stack)
    state = await stack.submit_as(person, "civil.certified-copy", {"document": "birth-certificate", "copies": 1})
    state = await stack.wait_status(state["id"], {"awaiting_payment"})
    return person, state


async def test_payment_notices_are_checked_deduplicated_and_mismatches_recorded(jobs_stack: JobsStack, rabbitmq_broker) -> None:
    stack = jobs_stack
    stack.start_in_process_jobs(rabbitmq_broker)
    person, state = await _awaiting_copy(stack)
    url = "/v1/payment-notifications/sim-bank"
    count = stack.harness.event_count()
    notice = {"notice_id": "N1", "payment_id": "PAY-T-1", "reference": state["reference"], "amount_satang": 1000, "paid_at": "2026-11-29T10:00:00Z"}
    raw, headers = _signed(notice)
    forged = await stack.harness.client.post(url, data=raw, headers={**headers, "X-Bank-Signature": "00" * 32})
    assert forged.status == 401 and stack.harness.event_count() == count
    short = {**notice, "payment_id": "PAY-T-0", "amount_satang": 999}
    raw_short, headers_short = _signed(short)
    answer = await (await stack.harness.client.post(url, data=raw_short, headers=headers_short)).json()
    assert answer["status"] == "discrepancy"
    still = await stack.request(state["id"])
    assert still["status"] == "awaiting_payment"
    first = await (await stack.harness.client.post(url, data=raw, headers=headers)).json()
    second = await (await stack.harness.client.post(url, data=raw, headers=headers)).json()
    assert (first["status"], second["status"]) == ("recorded", "duplicate")
    payment = await (await stack.harness.client.get(f"/v1/payments/{state['payment']['id']}?min_position=0", headers=OFFICER)).json()
    events = await (await stack.harness.client.get(f"/v1/service-requests/{state['id']}/events", headers=token("admin", "a"))).json()
    assert [e["type"] for e in events["items"]].count("Payment.Received") == 1
    assert [e["type"] for e in events["items"]].count("Payment.Discrepancy") == 1
    assert payment["id"] == state["payment"]["id"]


async def test_a_payment_after_expiry_is_refunded_by_a_job(jobs_stack: JobsStack, rabbitmq_broker) -> None:
    stack = jobs_stack
    stack.start_in_process_jobs(rabbitmq_broker)
    person, state = await _awaiting_copy(stack)
    payment = await (await stack.harness.client.get(f"/v1/payments/{state['payment']['id']}", headers=token("admin", "a"))).json()
    # Time passes: the payment is expired through the application, as the expiry job would at its time.
    from datetime import timedelta

    from domain.actors import Actor
    from onestop.bootstrap import build_back_office
    from infrastructure.clock import SystemClock

    class Later(SystemClock):
        def now(self):  # type: ignore[no-untyped-def]
            return super().now() + timedelta(days=4)

    later = build_back_office(stack.settings, clock=Later())
    try:
        assert later.expire_payment(uuid.UUID(payment["id"]), Actor("test", "system"))
    finally:
        later.close()
    await stack.pay(payment["promptpay_payload"])

    async def refunded() -> bool:
        current = await (await stack.harness.client.get(f"/v1/payments/{payment['id']}", headers=token("admin", "a"))).json()
        return current["status"] == "refunded"

    await eventually(refunded, 30, what="the refund")
    refunds = await stack.get(f"{stack.bank_url}/refunds?reference={state['reference']}")
    assert len(refunds["items"]) == 1 and refunds["items"][0]["amount_satang"] == 1000
    assert (await stack.request(state["id"]))["status"] == "awaiting_payment"


async def test_jobs_that_run_out_of_retries_show_action_required_and_can_be_retried(jobs_stack: JobsStack, rabbitmq_broker) -> None:
    from dataclasses import replace

    stack = jobs_stack
    stack.settings = replace(stack.settings, job_max_retries=2)
    person, houses = await _resident(stack)
    await stack.set_faults(stack.registry_url, outage=True)
    stack.start_in_process_jobs(rabbitmq_broker)
    state = await stack.submit_as(person, "civil.address-change", {"to_house_id": houses[0]["house_id"]})

    async def flagged() -> dict | None:
        current = await stack.request(state["id"])
        return current if current.get("action_required") else None

    current = await eventually(flagged, 30, what="action_required")
    assert current["status"] == "verifying" and current["action_required"]["job"] == "verify_applicant"
    officer = officer_of(person["organization"])
    failed = await (await stack.harness.client.get("/v1/jobs?status=failed", headers=officer)).json()
    assert [j["request_id"] for j in failed["items"]] == [state["id"]] and failed["items"][0]["attempts"] >= 3
    assert failed["items"][0]["last_error"]
    await stack.set_faults(stack.registry_url, outage=False)
    retried = await stack.harness.act(state["id"], "retry", {}, headers=officer)
    assert retried.status == 200, await retried.text()
    done = await stack.wait_status(state["id"], {"in_review"})
    assert done["action_required"] is None
