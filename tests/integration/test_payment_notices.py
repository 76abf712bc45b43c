"""The bank's payment notices: signed over timestamp, provider and body; stale ones refused."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import replace
from typing import AsyncIterator

import orjson
import pytest

from onestop.settings import Settings
from tests.integration.api_harness import Harness, serving

SECRET = "a-callback-secret-for-this-test-0123456789"
URL = "/v1/payment-notifications/sim-bank"
NOTICE = orjson.dumps({"notice_id": "N1", "payment_id": "PAY-1", "reference": "OS69-0000001", "amount_satang": 500})


def signed(timestamp: str, provider: str = "sim-bank", body: bytes = NOTICE) -> dict[str, str]:
    signature = hmac.new(SECRET.encode(), timestamp.encode() + b"." + provider.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Bank-Timestamp": timestamp, "X-Bank-Signature": signature, "Content-Type": "application/json"}


@pytest.fixture
async def bank_api(settings: Settings) -> AsyncIterator[Harness]:
    async with serving(replace(settings, bank_callback_secret=SECRET)) as harness:
        yield harness


async def _refused(api: Harness, headers: dict[str, str], field: str) -> None:
    count = api.event_count()
    response = await api.client.post(URL, data=NOTICE, headers=headers)
    assert response.status == 401 and response.content_type == "application/problem+json"
    assert [e["field"] for e in (await response.json())["errors"]] == [field]
    assert api.event_count() == count


async def test_a_fresh_notice_signed_over_timestamp_provider_and_body_is_taken(bank_api: Harness) -> None:
    response = await bank_api.client.post(URL, data=NOTICE, headers=signed(str(int(time.time()))))
    assert response.status == 202 and (await response.json())["status"] == "unmatched"


async def test_a_notice_older_than_five_minutes_is_refused_and_changes_nothing(bank_api: Harness) -> None:
    await _refused(bank_api, signed(str(int(time.time()) - 301)), "X-Bank-Timestamp")


async def test_a_notice_more_than_five_minutes_in_the_future_is_refused(bank_api: Harness) -> None:
    await _refused(bank_api, signed(str(int(time.time()) + 301)), "X-Bank-Timestamp")


@pytest.mark.parametrize("timestamp", [None, "", "soon", "12.5", "-5", "１７００００００００", "17²", "1e9", "0x65f0"])
async def test_a_notice_without_a_timestamp_in_ascii_digits_is_refused(bank_api: Harness, timestamp: str | None) -> None:
    headers = signed(str(int(time.time())))
    if timestamp is None:
        del headers["X-Bank-Timestamp"]
    else:
        headers["X-Bank-Timestamp"] = timestamp
    await _refused(bank_api, headers, "X-Bank-Timestamp")


async def test_a_notice_signed_for_another_provider_or_over_the_body_alone_is_refused(bank_api: Harness) -> None:
    now = str(int(time.time()))
    await _refused(bank_api, signed(now, provider="other-bank"), "X-Bank-Signature")
    body_only = {**signed(now), "X-Bank-Signature": hmac.new(SECRET.encode(), NOTICE, hashlib.sha256).hexdigest()}
    await _refused(bank_api, body_only, "X-Bank-Signature")
    await _refused(bank_api, {**signed(now), "X-Bank-Signature": "ไม่ใช่ลายเซ็น"}, "X-Bank-Signature")
