"""The civil-registry and bank simulators, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from domain.national_id import is_valid_national_id
from domain.promptpay import bill_payment_payload, parse_payload
from simulators.bank import BANK, build_bank_app
from simulators.faults import Faults
from simulators.registry import build_registry_app
from simulators.registry_data import PAO_CODES, age_on, generate

KNOWN_ID = "3100600445635"
BILLER = "010552300935002"
SECRET = "test-secret"
ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest_asyncio.fixture
async def registry() -> AsyncIterator[TestClient]:
    async with serve(build_registry_app(seed=42)) as client:
        yield client


async def body(resp: aiohttp.ClientResponse) -> Any:
    return orjson.loads(await resp.read())


async def stats(client: TestClient) -> dict[str, Any]:
    return await body(await client.get("/admin/stats"))


def key(name: str) -> dict[str, str]:
    return {"Idempotency-Key": name}


async def two_people_in_different_houses(client: TestClient) -> tuple[dict[str, Any], dict[str, Any]]:
    people = (await body(await client.get("/people", params={"alive": "true", "limit": "50"})))["items"]
    return people[0], next(p for p in people if p["house_id"] != people[0]["house_id"])


# registry data


def test_the_generated_registry_is_valid_and_deterministic() -> None:
    today = date(2026, 6, 1)
    data = generate(42, reference_date=today)
    assert len(data.people) == 300 and len(data.houses) == 200
    assert all(is_valid_national_id(nid) and nid[0] in "12345678" for nid in data.people)
    assert all(len(h) == 11 and h.isdigit() for h in data.houses)
    assert all(p["house_id"] in data.houses for p in data.people.values())
    assert all(h["owner_national_id"] in data.people for h in data.houses.values())
    orgs = {h["organization"] for h in data.houses.values()}
    assert len(orgs) == 11 and not orgs & set(PAO_CODES)
    ages = [age_on(date.fromisoformat(p["birth_date"]), today) for p in data.people.values()]
    assert min(ages) == 20 and max(ages) == 95 and sum(a >= 60 for a in ages) >= 100
    dead = [p for p in data.people.values() if not p["alive"]]
    assert 10 <= len(dead) <= 20 and all(p["died_on"] for p in dead)
    known = data.people[KNOWN_ID]
    assert known["alive"] and age_on(date.fromisoformat(known["birth_date"]), today) == 72
    assert generate(42, reference_date=today).people == data.people
    assert generate(7, reference_date=today).people != data.people


# registry over HTTP


@pytest.mark.asyncio
async def test_the_known_person_is_alive_and_72(registry: TestClient) -> None:
    resp = await registry.get(f"/people/{KNOWN_ID}")
    person = await body(resp)
    assert resp.status == 200 and person["alive"] is True and person["died_on"] is None
    assert age_on(date.fromisoformat(person["birth_date"]), datetime.now(UTC).date()) == 72
    house = await body(await registry.get(f"/houses/{person['house_id']}"))
    assert house["organization"] == person["organization"] and "ตำบล" in house["address_th"]


@pytest.mark.asyncio
async def test_an_unknown_national_id_is_a_404_problem(registry: TestClient) -> None:
    resp = await registry.get("/people/1234567890121")
    problem = await body(resp)
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    assert problem["detail"] == "national ID not found in the civil registry" and problem["status"] == 404
    assert (await registry.get("/people/1234567890123")).status == 400  # bad checksum
    assert (await registry.get("/houses/99999999999")).status == 404


@pytest.mark.asyncio
async def test_people_can_be_filtered_by_age_life_and_organization(registry: TestClient) -> None:
    params = {"min_age": "60", "alive": "true", "organization": "SAO-NONGRI", "limit": "1000"}
    items = (await body(await registry.get("/people", params=params)))["items"]
    today = datetime.now(UTC).date()
    assert items and all(p["alive"] and p["organization"] == "SAO-NONGRI" for p in items)
    assert all(age_on(date.fromisoformat(p["birth_date"]), today) >= 60 for p in items)
    assert len((await body(await registry.get("/people", params={"limit": "5"})))["items"]) == 5
    dead = (await body(await registry.get("/people", params={"alive": "false", "limit": "1000"})))["items"]
    assert dead and not any(p["alive"] for p in dead)
    houses = (await body(await registry.get("/houses", params={"organization": "MUN-PHRAE"})))["items"]
    assert houses and {h["organization"] for h in houses} == {"MUN-PHRAE"}
    assert (await body(await registry.get("/houses", params={"organization": "PAO-CBI"})))["items"] == []


@pytest.mark.asyncio
async def test_a_post_without_an_idempotency_key_is_refused(registry: TestClient) -> None:
    resp = await registry.post("/verifications", json={"national_id": KNOWN_ID})
    assert resp.status == 400 and (await body(resp))["title"] == "Idempotency key required"
    assert (await stats(registry))["effects"] == {}


@pytest.mark.asyncio
async def test_a_repeated_move_with_the_same_key_has_one_effect(registry: TestClient) -> None:
    person, other = await two_people_in_different_houses(registry)
    move = {"national_id": person["national_id"], "to_house_id": other["house_id"], "move_date": "2026-01-15"}
    answers = [await registry.post("/moves", json=move, headers=key("move-1")) for _ in range(3)]
    moves = [await body(a) for a in answers]
    assert [a.status for a in answers] == [201, 201, 201]
    assert moves[0] == moves[1] == moves[2] and moves[0]["from_house_id"] == person["house_id"]
    assert answers[2].headers.get("Idempotent-Replayed") == "true"
    moved = await body(await registry.get(f"/people/{person['national_id']}"))
    assert moved["house_id"] == other["house_id"] and moved["organization"] == other["organization"]
    s = await stats(registry)
    assert s["effects"] == {"move": 1} and s["duplicate_keys"] == 2
    assert s["keys_with_more_than_one_effect"] == 0
    again = await registry.post("/moves", json=move, headers=key("move-2"))
    assert again.status == 422  # already registered there: a new key is a new request


@pytest.mark.asyncio
async def test_concurrent_calls_with_one_key_have_one_effect() -> None:
    async with serve(build_registry_app(faults=Faults(latency_ms=20))) as client:
        request = {"owner_national_id": KNOWN_ID, "building_permit_no": "BP-1/2569", "address": "99 หมู่ 1",
                   "organization": "SAO-NONGRI"}
        answers = await asyncio.gather(
            *(client.post("/house-numbers", json=request, headers=key("house-1")) for _ in range(8))
        )
        houses = {(await body(a))["house_id"] for a in answers}
        assert len(houses) == 1 and {a.status for a in answers} == {201}
        s = await stats(client)
        assert s["effects"] == {"house_number": 1} and s["duplicate_keys"] == 7


@pytest.mark.asyncio
async def test_a_new_house_number_is_a_new_house_record(registry: TestClient) -> None:
    request = {"owner_national_id": KNOWN_ID, "building_permit_no": "BP-7/2569",
               "address": {"moo": 4}, "organization": "SAO-MAEYOM"}
    resp = await registry.post("/house-numbers", json=request, headers=key("hn"))
    house = await body(resp)
    assert resp.status == 201 and len(house["house_id"]) == 11 and house["house_id"].isdigit()
    stored = await body(await registry.get(f"/houses/{house['house_id']}"))
    assert stored["owner_national_id"] == KNOWN_ID and stored["address"]["province"] == "แพร่"
    refused = await registry.post("/house-numbers", json={**request, "organization": "PAO-PRE"}, headers=key("hn2"))
    assert refused.status == 422


@pytest.mark.asyncio
async def test_a_certified_copy_gets_a_document_reference(registry: TestClient) -> None:
    request = {"national_id": KNOWN_ID, "document": "house_registration", "copies": 2}
    resp = await registry.post("/certified-copies", json=request, headers=key("cc"))
    copy = await body(resp)
    assert resp.status == 201 and copy["document_ref"] == "DOPA-CC-000001" and copy["copies"] == 2
    bad = await registry.post("/certified-copies", json={**request, "copies": 0}, headers=key("cc2"))
    assert bad.status == 400
    assert (await stats(registry))["effects"] == {"certified_copy": 1}


@pytest.mark.asyncio
async def test_a_dead_person_is_reported_deceased(registry: TestClient) -> None:
    dead = (await body(await registry.get("/people", params={"alive": "false", "limit": "1"})))["items"][0]
    resp = await registry.post("/verifications", json={"national_id": dead["national_id"]}, headers=key("v1"))
    answer = await body(resp)
    assert resp.status == 200 and answer["found"] is True and answer["alive"] is False
    assert answer["reason"] == "deceased"
    _, other = await two_people_in_different_houses(registry)
    move = {"national_id": dead["national_id"], "to_house_id": other["house_id"]}
    assert (await registry.post("/moves", json=move, headers=key("m-dead"))).status == 422
    assert (await stats(registry))["effects"] == {"verification": 1}


@pytest.mark.asyncio
async def test_an_unknown_person_is_verified_as_not_found(registry: TestClient) -> None:
    resp = await registry.post("/verifications", json={"national_id": "1234567890121"}, headers=key("v2"))
    answer = await body(resp)
    assert answer["found"] is False and answer["reason"] == "not_found" and answer["alive"] is None
    living = await body(await registry.post("/verifications", json={"national_id": KNOWN_ID}, headers=key("v3")))
    assert living["reason"] is None and living["name_th"] == "สมชาย ใจดี"


@pytest.mark.asyncio
async def test_an_outage_answers_503_and_records_nothing() -> None:
    async with serve(build_registry_app(faults=Faults(outage=True))) as client:
        resp = await client.post("/verifications", json={"national_id": KNOWN_ID}, headers=key("o1"))
        assert resp.status == 503 and resp.content_type == "application/problem+json"
        assert (await client.get(f"/people/{KNOWN_ID}")).status == 503
        s = await stats(client)
        assert s["effects"] == {} and s["calls"] == 2 and s["injected"]["outage"] == 2
        health = await client.get("/health")
        assert health.status == 200 and await body(health) == {"status": "ok"}


@pytest.mark.asyncio
async def test_an_injected_error_comes_before_any_effect(registry: TestClient) -> None:
    person, other = await two_people_in_different_houses(registry)
    move = {"national_id": person["national_id"], "to_house_id": other["house_id"]}
    await registry.put("/admin/faults", json={"error_rate": 1.0})
    assert (await registry.post("/moves", json=move, headers=key("e1"))).status == 503
    s = await stats(registry)
    assert s["effects"] == {} and s["injected"]["error"] == 1 and s["calls"] > 0
    assert (await registry.get(f"/people/{person['national_id']}")).status == 503
    await registry.put("/admin/faults", json={"error_rate": 0.0})
    unmoved = await body(await registry.get(f"/people/{person['national_id']}"))
    assert unmoved["house_id"] == person["house_id"]
    retry = await registry.post("/moves", json=move, headers=key("e1"))
    assert retry.status == 201 and (await stats(registry))["effects"] == {"move": 1}


@pytest.mark.asyncio
async def test_a_timed_out_call_still_has_its_effect_once() -> None:
    async with serve(build_registry_app(faults=Faults(timeout_rate=1.0, timeout_seconds=0.5))) as client:
        request = {"national_id": KNOWN_ID, "document": "birth_certificate", "copies": 1}
        with pytest.raises(TimeoutError):
            await client.post("/certified-copies", json=request, headers=key("t1"),
                              timeout=aiohttp.ClientTimeout(total=0.1))
        await client.put("/admin/faults", json={"timeout_rate": 0.0})
        retry = await client.post("/certified-copies", json=request, headers=key("t1"))
        assert retry.status == 201 and retry.headers.get("Idempotent-Replayed") == "true"
        s = await stats(client)
        assert s["effects"] == {"certified_copy": 1} and s["duplicate_keys"] == 1
        assert s["injected"]["timeout"] == 1 and s["keys_with_more_than_one_effect"] == 0


@pytest.mark.asyncio
async def test_faults_can_be_changed_at_run_time(registry: TestClient) -> None:
    assert (await body(await registry.get("/admin/faults")))["outage"] is False
    changed = await registry.put("/admin/faults", json={"outage": True, "latency_ms": 5})
    assert changed.status == 200 and (await body(changed))["latency_ms"] == 5
    assert (await registry.get(f"/people/{KNOWN_ID}")).status == 503
    for bad in ({"error_rate": 1.5}, {"latency_ms": -1}, {"outage": "yes"}, {"nonsense": 1}, {"timeout_seconds": 0}):
        assert (await registry.put("/admin/faults", json=bad)).status == 400
    await registry.put("/admin/faults", json={"outage": False})
    assert (await registry.get(f"/people/{KNOWN_ID}")).status == 200
    assert (await body(await registry.get("/admin/faults")))["latency_ms"] == 5


@pytest.mark.asyncio
async def test_reset_stats_zeroes_the_counters_but_keeps_replays(registry: TestClient) -> None:
    await registry.post("/verifications", json={"national_id": KNOWN_ID}, headers=key("r1"))
    assert (await stats(registry))["effects"] == {"verification": 1}
    reset = await body(await registry.post("/admin/reset-stats"))
    assert reset["calls"] == 0 and reset["effects"] == {}
    await registry.post("/verifications", json={"national_id": KNOWN_ID}, headers=key("r1"))
    s = await stats(registry)
    assert s["effects"] == {} and s["duplicate_keys"] == 1


# bank


class Receiver:
    """A small callback endpoint that records notices and answers with scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = statuses or []
        self.notices: list[tuple[float, dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.notices.append((time.monotonic(), dict(request.headers), await request.read()))
        self.arrived.set()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.notices) < count:
                self.arrived.clear()
                await self.arrived.wait()


@asynccontextmanager
async def bank_with_receiver(receiver: Receiver, **options: Any) -> AsyncIterator[TestClient]:
    callback = web.Application()
    callback.router.add_post("/v1/payment-notifications/sim-bank", receiver.handle)
    async with serve(callback) as cb:
        url = str(cb.make_url("/v1/payment-notifications/sim-bank"))
        settings = {"duplicate_rate": 0.0, "late_rate": 0.0, "biller_ids": (BILLER,), **options}
        async with serve(build_bank_app(callback_url=url, callback_secret=SECRET, **settings)) as client:
            yield client


def expiry(minutes: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


async def create_charge(client: TestClient, reference: str, amount: int = 12_345) -> dict[str, Any]:
    request = {"reference": reference, "amount_satang": amount, "biller_id": BILLER, "expires_at": expiry()}
    resp = await client.post("/charges", json=request, headers=key(f"charge-{reference}"))
    assert resp.status == 201
    return await body(resp)


@pytest.mark.asyncio
async def test_a_charge_carries_a_promptpay_payload_for_its_reference() -> None:
    async with bank_with_receiver(Receiver()) as bank:
        charge = await create_charge(bank, "OSS2026000001")
        parsed = parse_payload(charge["promptpay_payload"])
        assert (parsed.biller_id, parsed.ref1, parsed.amount_satang) == (BILLER, "OSS2026000001", 12_345)
        assert charge["status"] == "pending"
        assert (await body(await bank.get(f"/charges/{charge['charge_id']}")))["status"] == "pending"
        no_key = await bank.post("/charges", json={"reference": "X", "amount_satang": 1, "biller_id": BILLER,
                                                   "expires_at": expiry()})
        assert no_key.status == 400


@pytest.mark.asyncio
async def test_pay_sends_a_signed_notice_to_the_callback() -> None:
    receiver = Receiver()
    async with bank_with_receiver(receiver) as bank:
        charge = await create_charge(bank, "OSS2026000002")
        resp = await bank.post("/pay", json={"payload": charge["promptpay_payload"]})
        payment = await body(resp)
        assert resp.status == 201 and payment["payment_id"].startswith("PAY")
        assert payment["charge_id"] == charge["charge_id"] and payment["amount_satang"] == 12_345
        await receiver.wait_for(1)
        _, headers, raw = receiver.notices[0]
        timestamp = headers["X-Bank-Timestamp"]
        assert timestamp.isascii() and timestamp.isdigit() and abs(int(timestamp) - time.time()) < 60
        expected = hmac.new(SECRET.encode(), timestamp.encode() + b".sim-bank." + raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Bank-Signature"], expected)
        notice = orjson.loads(raw)
        assert headers["X-Bank-Notice-Id"] == notice["notice_id"]
        assert notice["payment_id"] == payment["payment_id"] and notice["reference"] == "OSS2026000002"
        assert notice["charge_id"] == charge["charge_id"]
        assert (await body(await bank.get(f"/charges/{charge['charge_id']}")))["status"] == "paid"
        await asyncio.sleep(0.05)
        s = await stats(bank)
        assert s["effects"] == {"charge": 1, "payment": 1} and s["notices_acknowledged"] == 1


@pytest.mark.asyncio
async def test_a_payload_with_a_bad_crc_is_refused() -> None:
    async with bank_with_receiver(Receiver()) as bank:
        payload = bill_payment_payload(biller_id=BILLER, ref1="OSS1", amount_satang=100)
        tampered = payload[:-4] + ("0000" if payload[-4:] != "0000" else "1111")
        resp = await bank.post("/pay", json={"payload": tampered})
        assert resp.status == 400 and "CRC" in (await body(resp))["detail"]
        no_amount = bill_payment_payload(biller_id=BILLER, ref1="OSS1", amount_satang=None)
        assert (await bank.post("/pay", json={"payload": no_amount})).status == 422
        stranger = bill_payment_payload(biller_id="999999999999999", ref1="OSS1", amount_satang=100)
        assert (await bank.post("/pay", json={"payload": stranger})).status == 422
        assert (await stats(bank))["effects"] == {} and (await body(await bank.get("/payments")))["items"] == []


@pytest.mark.asyncio
async def test_a_failed_notice_is_retried_until_acknowledged() -> None:
    receiver = Receiver(statuses=[500, 429])
    async with bank_with_receiver(receiver) as bank:
        payload = bill_payment_payload(biller_id=BILLER, ref1="OSS3", amount_satang=100)
        await bank.post("/pay", json={"payload": payload})
        await receiver.wait_for(3)
        bodies = {raw for _, _, raw in receiver.notices}
        assert len(bodies) == 1  # every attempt carries the same signed body
        await asyncio.sleep(0.05)
        s = await stats(bank)
        assert s["notices_sent"] == 3 and s["notices_acknowledged"] == 1


@pytest.mark.asyncio
async def test_a_notice_refused_with_a_4xx_is_not_retried() -> None:
    receiver = Receiver(statuses=[401])
    async with bank_with_receiver(receiver) as bank:
        payload = bill_payment_payload(biller_id=BILLER, ref1="OSS4", amount_satang=100)
        await bank.post("/pay", json={"payload": payload})
        await receiver.wait_for(1)
        await asyncio.sleep(0.5)
        s = await stats(bank)
        assert len(receiver.notices) == 1 and s["notices_rejected"] == 1 and s["notices_acknowledged"] == 0


@pytest.mark.asyncio
async def test_a_duplicated_notice_repeats_the_same_notice_id() -> None:
    receiver = Receiver()
    async with bank_with_receiver(receiver, duplicate_rate=1.0) as bank:
        payload = bill_payment_payload(biller_id=BILLER, ref1="OSS5", amount_satang=100)
        await bank.post("/pay", json={"payload": payload})
        await receiver.wait_for(2)
        ids = [headers["X-Bank-Notice-Id"] for _, headers, _ in receiver.notices]
        assert len(ids) == 2 and ids[0] == ids[1]


@pytest.mark.asyncio
async def test_a_late_notice_arrives_after_the_delay() -> None:
    receiver = Receiver()
    async with bank_with_receiver(receiver, late_rate=1.0, late_seconds=0.3) as bank:
        payload = bill_payment_payload(biller_id=BILLER, ref1="OSS6", amount_satang=100)
        paid_at = time.monotonic()
        await bank.post("/pay", json={"payload": payload})
        await receiver.wait_for(1)
        assert receiver.notices[0][0] - paid_at >= 0.3


@pytest.mark.asyncio
async def test_a_payment_without_a_charge_is_accepted_once_per_key() -> None:
    receiver = Receiver()
    async with bank_with_receiver(receiver) as bank:
        payload = bill_payment_payload(biller_id=BILLER, ref1="OWN0001", amount_satang=50_000, ref2="INST1")
        first = await body(await bank.post("/pay", json={"payload": payload}, headers=key("p1")))
        second = await body(await bank.post("/pay", json={"payload": payload}, headers=key("p1")))
        assert first == second and first["charge_id"] is None and first["ref2"] == "INST1"
        listed = await body(await bank.get("/payments", params={"reference": "OWN0001"}))
        assert [p["payment_id"] for p in listed["items"]] == [first["payment_id"]]
        await receiver.wait_for(1)
        await asyncio.sleep(0.2)
        assert len(receiver.notices) == 1


@pytest.mark.asyncio
async def test_refunds_are_limited_to_what_was_paid() -> None:
    async with bank_with_receiver(Receiver()) as bank:
        charge = await create_charge(bank, "OSS8", amount=10_000)
        request = {"charge_id": charge["charge_id"], "reference": "OSS8", "amount_satang": 4_000, "reason": "overpaid"}
        assert (await bank.post("/refunds", json=request, headers=key("rf0"))).status == 422  # not paid yet
        await bank.post("/pay", json={"payload": charge["promptpay_payload"]})
        resp = await bank.post("/refunds", json=request, headers=key("rf1"))
        refund = await body(resp)
        assert resp.status == 201 and refund["status"] == "refunded" and refund["amount_satang"] == 4_000
        too_much = await bank.post("/refunds", json={**request, "amount_satang": 6_001}, headers=key("rf2"))
        assert too_much.status == 422
        assert (await stats(bank))["effects"]["refund"] == 1


@pytest.mark.asyncio
async def test_the_settlement_file_lists_the_days_payments() -> None:
    async with bank_with_receiver(Receiver()) as bank:
        payload = bill_payment_payload(biller_id=BILLER, ref1="OSS9", amount_satang=25_050, ref2="R2")
        payment = await body(await bank.post("/pay", json={"payload": payload}))
        today = datetime.now(timezone(timedelta(hours=7))).date()  # the business day in Bangkok
        resp = await bank.get(f"/settlements/{today.isoformat()}")
        lines = (await resp.text()).splitlines()
        assert resp.content_type == "text/csv"
        assert lines[0] == "payment_id,reference,ref2,amount_satang,paid_at,biller_id"
        assert lines[1:] == [f"{payment['payment_id']},OSS9,R2,25050,{payment['paid_at']},{BILLER}"]
        other_day = await bank.get(f"/settlements/{(today - timedelta(days=1)).isoformat()}")
        assert (await other_day.text()).splitlines()[1:] == []
        assert (await bank.get("/settlements/yesterday")).status == 400


@pytest.mark.asyncio
async def test_closing_the_bank_cancels_deliveries_still_retrying() -> None:
    receiver = Receiver(statuses=[503] * 100)
    async with asyncio.timeout(5):  # a delivery left running would hang the shutdown
        async with bank_with_receiver(receiver) as bank:
            state = bank.app[BANK]
            payload = bill_payment_payload(biller_id=BILLER, ref1="OSS10", amount_satang=100)
            await bank.post("/pay", json={"payload": payload})
            await receiver.wait_for(1)
            tasks = list(state.tasks)
            assert len(tasks) == 1 and not tasks[0].done()
    assert tasks[0].cancelled() and not state.tasks and state.session is None


def test_the_registry_cli_prints_where_it_listens() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "from simulators.cli import run_registry; run_registry(['--port', '0', '--seed', '7'])"
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.startswith("registry simulator listening on http://127.0.0.1:")
            assert not line.endswith(":0")
            url = line.rsplit(" ", 1)[1]
            with urllib.request.urlopen(f"{url}/people/{KNOWN_ID}", timeout=5) as resp:
                assert orjson.loads(resp.read())["national_id"] == KNOWN_ID
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# -- the elderly allowance's bulk calls ---------------------------------------------------------


async def test_the_registry_answers_deaths_and_moves_for_a_list_of_national_ids(registry: TestClient) -> None:
    people = [{"national_id": "1000000000017", "birth_date": "1950-01-01", "organization": "MUN-PHRAE", "alive": False, "died_on": "2026-11-02"},
              {"national_id": "1000000000025", "birth_date": "1951-01-01", "organization": "SAO-MAEYOM", "moved_on": "2026-10-05"}]
    assert (await registry.post("/admin/people", json={"people": people})).status == 200
    resp = await registry.post("/people/status", json={"national_ids": ["1000000000017", "1000000000025", "1000000000033"]})
    answers = (await body(resp))["people"]
    assert [a["found"] for a in answers] == [True, True, False]
    assert answers[0]["alive"] is False and answers[0]["died_on"] == "2026-11-02"
    assert answers[1]["organization"] == "SAO-MAEYOM" and answers[1]["moved_on"] == "2026-10-05"
    assert (await registry.post("/people/status", json={"national_ids": ["123"]})).status == 400


async def test_the_bank_pays_each_bulk_line_once_and_refuses_closed_accounts() -> None:
    async with serve(build_bank_app(seed=1)) as bank:
        lines = [{"key": "allowance:a:2027-01", "amount_satang": 60000, "kind": "bank", "account": "1234567890"},
                 {"key": "allowance:b:2027-01", "amount_satang": 70000, "kind": "bank", "account": "9990000001"},
                 {"key": "allowance:c:2027-01", "amount_satang": 80000, "kind": "promptpay", "account": "3100600445635"}]
        first = (await body(await bank.post("/transfers/bulk", json={"value_date": "2027-01-10", "lines": lines})))["lines"]
        assert [line["status"] for line in first] == ["paid", "refused", "paid"]
        assert first[1]["reason"] == "account closed"
        again = (await body(await bank.post("/transfers/bulk", json={"value_date": "2027-01-10", "lines": lines})))["lines"]
        assert again[0]["transfer_id"] == first[0]["transfer_id"] and again[0]["duplicate"] is True
        figures = await stats(bank)
        assert figures["effects"]["allowance_transfer"] == 2 and figures["keys_with_more_than_one_effect"] == 0
        bad = [*lines, {"key": "allowance:d:2027-01", "amount_satang": -1, "kind": "bank", "account": "1"}]
        assert (await bank.post("/transfers/bulk", json={"value_date": "2027-01-10", "lines": bad})).status == 400
        assert (await stats(bank))["effects"]["allowance_transfer"] == 2
