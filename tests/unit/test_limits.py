"""The edge's token buckets, stream places and their settings (no I/O)."""

from __future__ import annotations

import asyncio

import pytest

from api.limits import StreamSlots, TokenBuckets
from api.problems import HttpProblem
from onestop.settings import Settings, SettingsError


async def test_a_bucket_admits_its_burst_then_refuses_until_a_token_drips_back() -> None:
    buckets = TokenBuckets(per_second=20, burst=3)
    assert [await buckets.take("a") for _ in range(3)] == [None, None, None]
    assert await buckets.take("a") == 1  # whole seconds, at least 1
    assert await buckets.take("b") is None  # another key has its own bucket
    await asyncio.sleep(0.08)  # 1/20 s brings one token back
    assert await buckets.take("a") is None
    assert await buckets.take("a") == 1


async def test_a_slow_bucket_asks_to_wait_as_long_as_one_token_takes() -> None:
    buckets = TokenBuckets(per_second=0.25, burst=1)
    assert await buckets.take("a") is None
    assert await buckets.take("a") == 4


async def test_too_many_keys_drops_the_full_buckets_first() -> None:
    buckets = TokenBuckets(per_second=50, burst=2, max_keys=3)
    await buckets.take("idle")
    await asyncio.sleep(0.1)  # full again: nothing worth keeping
    await buckets.take("busy")
    await buckets.take("busy")
    await buckets.take("third")
    await buckets.take("fourth")  # one key too many: the full bucket goes, the others stay
    assert set(buckets._buckets) == {"busy", "third", "fourth"}


def test_a_subject_gets_only_so_many_stream_places_and_a_released_one_is_free_again() -> None:
    slots = StreamSlots(limit=2)
    first = slots.take("pdc")
    slots.take("pdc")
    with pytest.raises(HttpProblem) as refused:
        slots.take("pdc")
    assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) >= 1
    slots.take("other")
    first()
    first()  # releasing twice frees one place only
    slots.take("pdc")
    with pytest.raises(HttpProblem):
        slots.take("pdc")


def test_limits_are_on_by_default_and_off_only_when_asked() -> None:
    base = {"ONESTOP_DATABASE_URL": "postgresql://x@127.0.0.1/db", "ONESTOP_JWT_SECRET": "s"}
    defaults = Settings.from_env(base)
    assert defaults.rate_limits is True
    assert (defaults.rate_subject_per_second, defaults.rate_subject_burst, defaults.rate_ip_per_second, defaults.rate_ip_burst) == (20, 40, 50, 100)
    assert (defaults.sse_max_streams_per_subject, defaults.header_timeout_seconds, defaults.body_timeout_seconds) == (5, 10, 30)
    assert Settings.from_env({**base, "ONESTOP_RATE_LIMITS": "off"}).rate_limits is False
    with pytest.raises(SettingsError):
        Settings.from_env({**base, "ONESTOP_RATE_LIMITS": "maybe"})
    with pytest.raises(SettingsError):
        Settings.from_env({**base, "ONESTOP_RATE_SUBJECT_BURST": "0"})
