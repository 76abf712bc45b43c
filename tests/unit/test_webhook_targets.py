"""Where webhooks may be delivered: never to loopback, private or otherwise internal addresses,
however the URL writes them (issue 7, defect 6)."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest

from infrastructure.integrations.targets import PublicOnlyResolver, check_target, delivery_refusal, is_public_address

# IPv6 forms of internal IPv4 addresses that Python calls global, and site-local.
INTERNAL_IPV6 = [
    "::127.0.0.1",          # IPv4-compatible
    "::7f00:1",             # the same, written in hex
    "::ffff:0:7f00:1",      # SIIT (IPv4-translated)
    "::ffff:127.0.0.1",     # IPv4-mapped
    "64:ff9b::a9fe:a9fe",   # NAT64 of 169.254.169.254 (cloud metadata)
    "64:ff9b::7f00:1",      # NAT64 of 127.0.0.1
    "64:ff9b::a00:1",       # NAT64 of 10.0.0.1
    "64:ff9b:1::a00:1",     # local-use NAT64
    "2002:7f00:1::",        # 6to4 of 127.0.0.1
    "2002:c0a8:101::1",     # 6to4 of 192.168.1.1
    "fec0::1",              # site-local
    "::",
    "::1",
]
# Decimal, octal and hex spellings of IPv4 that resolvers turn into 127.0.0.1 or 10.0.0.1.
NUMERIC_IPV4 = ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1", "017700000001", "10.1", "0xa.0.0.1"]


@pytest.mark.parametrize("address", INTERNAL_IPV6)
def test_ipv6_addresses_that_embed_an_internal_ipv4_or_are_site_local_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["1.1.1.1", "2606:4700::1111", "64:ff9b::101:101", "2002:101:101::1", "::ffff:1.1.1.1"])
def test_public_addresses_stay_public_including_ipv6_forms_of_a_public_ipv4(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize("host", [f"[{a}]" for a in INTERNAL_IPV6] + NUMERIC_IPV4 + ["①②⑦.0.0.1", "127。0。0。1"])
async def test_registration_refuses_urls_whose_host_is_an_internal_address_however_written(host: str) -> None:
    url = f"http://{host}:8080/hook"
    assert await check_target(url, allow_private=False) is not None, url
    assert delivery_refusal(url) is not None, url


async def test_public_address_literals_are_accepted_at_registration_and_at_delivery() -> None:
    for url in ("https://1.1.1.1/hook", "https://[2606:4700::1111]/hook", "https://[64:ff9b::101:101]/hook"):
        assert await check_target(url, allow_private=False) is None, url
        assert delivery_refusal(url) is None, url


async def test_the_delivery_resolver_refuses_a_name_that_now_resolves_to_an_embedded_internal_address(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"rebound.example": "64:ff9b::7f00:1", "sixtofour.example": "2002:a9fe:a9fe::", "public.example": "2606:4700::1111"}

    async def resolve(self: Any, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[dict[str, Any]]:
        return [{"hostname": host, "host": answers[host], "port": port, "family": socket.AF_INET6, "proto": 0, "flags": 0}]

    monkeypatch.setattr(aiohttp.ThreadedResolver, "resolve", resolve)
    resolver = PublicOnlyResolver()
    try:
        for name in ("rebound.example", "sixtofour.example"):
            with pytest.raises(OSError):
                await resolver.resolve(name, 443)
        assert (await resolver.resolve("public.example", 443))[0]["host"] == "2606:4700::1111"
    finally:
        await resolver.close()
