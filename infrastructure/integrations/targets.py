"""Where webhook deliveries may go: only public addresses, judged when a subscription is made
(``check_target``), on each delivery's URL (``delivery_refusal``) and on each name's resolution
(``PublicOnlyResolver``), so that a webhook cannot be aimed at the internal network."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yarl

from infrastructure.errors import InfrastructureError

# IPv6 ranges that carry an IPv4 address in their last 32 bits, or translate to one: NAT64
# (64:ff9b::/96, RFC 6052), IPv4-compatible (::/96, deprecated), SIIT (::ffff:0:0:0/96) and
# IPv4-mapped (::ffff:0:0/96). An address in one of them is as public as the IPv4 it names;
# Python calls most of them global whatever they embed.
_EMBEDS_IPV4_LOW32 = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96", "::ffff:0:0/96"))
# Ranges refused whatever follows: local-use NAT64 (RFC 8215, where the IPv4 sits at a
# prefix-dependent place) and the deprecated site-local fec0::/10.
_REFUSED_IPV6 = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b:1::/48", "fec0::/10"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.sixtofour is not None:  # 2002::/16, 6to4
        return ip.sixtofour
    if any(ip in network for network in _EMBEDS_IPV4_LOW32):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address. An IPv6 address that embeds or translates
    to an IPv4 one (NAT64, 6to4, IPv4-compatible, SIIT, IPv4-mapped) is judged by that IPv4;
    site-local and local-use NAT64 addresses are never public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _REFUSED_IPV6):
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


class NotAnAddress(InfrastructureError, ValueError):
    """A host written as a number, but not as a dotted-decimal IPv4 or an IPv6 address."""


_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}$", re.IGNORECASE)


def literal_address(host: str) -> str | None:
    """The address that ``host`` (as the HTTP client sees it: ``yarl.URL(url).host``) writes
    literally, or None when it is a name to resolve. IPv4 written in decimal, octal or hex
    (``2130706433``, ``0x7f.1``, ``0177.0.0.1``), which resolvers accept as addresses, raises
    NotAnAddress: such a URL is refused whatever address it names."""
    bare = host.split("%", 1)[0].rstrip(".")
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if _NUMERIC_HOST.match(bare):
        raise NotAnAddress(host)
    return None


def _url_host(url: str) -> str | None:
    """The host the HTTP client will connect to (after IDNA mapping: ``①②⑦.0.0.1`` is 127.0.0.1)."""
    return yarl.URL(url).host


async def check_target(url: str, allow_private: bool) -> str | None:
    """Why ``url`` may not receive webhooks, or None. Loopback, private, link-local and other
    non-global addresses are refused unless ``allow_private`` (tests, closed networks)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = _url_host(url)
    except (ValueError, UnicodeError):
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http:// or https:// URL with a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    if allow_private:
        return None
    try:
        literal = literal_address(host)
    except NotAnAddress:
        return "writes an IP address in a form other than dotted decimal or IPv6"
    try:
        addresses = [literal] if literal is not None else await _resolve(host, port)
    except (OSError, asyncio.TimeoutError, UnicodeError):
        return f"its host {host} cannot be resolved"
    if not addresses or not all(is_public_address(a) for a in addresses):
        return "points to a loopback, private or otherwise non-public address"
    return None


def delivery_refusal(url: str) -> str | None:
    """Why a delivery to ``url`` must not be attempted, judged on the URL alone (names are
    judged when resolved, by ``PublicOnlyResolver``)."""
    try:
        host = _url_host(url)
        literal = literal_address(host or "")
    except (ValueError, UnicodeError):
        return "refused: the URL's host is not a valid name or address"
    if literal is not None and not is_public_address(literal):
        return "refused: the URL points to a non-public address"
    return None


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), 5)
    return [str(info[4][0]) for info in infos]


class PublicOnlyResolver(aiohttp.ThreadedResolver):
    """Resolves names as usual but refuses non-public answers, so a name that was public when
    the subscription was made cannot be pointed at the internal network later."""

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[Any]:  # type: ignore[override]
        answers = await super().resolve(host, port, family)
        if not all(is_public_address(answer["host"]) for answer in answers):
            raise OSError(f"{host} resolves to a non-public address")
        return answers
