"""HTTP adapters for the civil registry and the bank's gateway (aiohttp; timeouts; an
idempotency key on every call that changes something).

Identifiers go into URLs only as percent-encoded path segments (`_segment`), never joined raw:
a house ID of "../people?limit=5" must name a house, not another resource."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from application.errors import OutsideCallFailed, OutsideCallRefused
from application.ports import BulkTransfers, CivilRegistry, PaymentGateway, RegistryBatch


def _segment(value: str) -> str:
    """One path segment: every character that could end or leave it (/ ? # % and dots) encoded."""
    text = quote(str(value), safe="")
    # "." and ".." are not encoded by quote(), and a server normalises them away.
    return text.replace(".", "%2E")


class HttpClient:
    """One aiohttp session per event loop, created when first used."""

    def __init__(self, base_url: str, *, timeout_seconds: float = 10.0) -> None:
        # Normalised once; paths are appended already encoded and must not be re-read (yarl
        # would decode %2E%2E and drop it as "..").
        self.base_url = str(URL(base_url.rstrip("/")))
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, json_serialize=lambda v: orjson.dumps(v).decode())
        return self._session

    async def request(self, method: str, path: str, *, body: dict[str, Any] | None = None, key: str | None = None,
                      ok_missing: bool = False) -> dict[str, Any] | None:
        headers = {"Idempotency-Key": key} if key else {}
        try:
            async with self._session_for_loop().request(method, URL(self.base_url + path, encoded=True), json=body, headers=headers) as response:
                payload = await response.read()
                if response.status == 404 and ok_missing:
                    return None
                if response.status >= 500 or response.status in (408, 429):
                    raise OutsideCallFailed(f"{method} {path}: HTTP {response.status}")
                if response.status >= 400:
                    raise OutsideCallRefused(f"{method} {path}: HTTP {response.status}: {payload[:300].decode(errors='replace')}")
                return orjson.loads(payload) if payload else {}
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise OutsideCallFailed(f"{method} {path}: {type(error).__name__}: {error}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class HttpCivilRegistry(CivilRegistry, RegistryBatch):
    def __init__(self, base_url: str, *, timeout_seconds: float = 10.0) -> None:
        self.http = HttpClient(base_url, timeout_seconds=timeout_seconds)

    async def verify_person(self, national_id: str, idempotency_key: str) -> dict[str, Any]:
        result = await self.http.request("POST", "/verifications", body={"national_id": national_id}, key=idempotency_key)
        assert result is not None
        return result

    async def people_status(self, national_ids: list[str]) -> list[dict[str, Any]]:
        result = await self.http.request("POST", "/people/status", body={"national_ids": national_ids})
        return list((result or {}).get("people", []))

    async def read_house(self, house_id: str) -> dict[str, Any] | None:
        return await self.http.request("GET", f"/houses/{_segment(house_id)}", ok_missing=True)

    async def record_move(self, national_id: str, to_house_id: str, move_date: str | None, idempotency_key: str) -> dict[str, Any]:
        body = {"national_id": national_id, "to_house_id": to_house_id, **({"move_date": move_date} if move_date else {})}
        return await self.http.request("POST", "/moves", body=body, key=idempotency_key) or {}

    async def allocate_house_number(self, owner_national_id: str, building_permit_no: str, address: str, organization: str, idempotency_key: str) -> dict[str, Any]:
        body = {"owner_national_id": owner_national_id, "building_permit_no": building_permit_no, "address": address, "organization": organization}
        return await self.http.request("POST", "/house-numbers", body=body, key=idempotency_key) or {}

    async def issue_certified_copy(self, national_id: str, document: str, copies: int, idempotency_key: str) -> dict[str, Any]:
        body = {"national_id": national_id, "document": document, "copies": copies}
        return await self.http.request("POST", "/certified-copies", body=body, key=idempotency_key) or {}


class HttpPaymentGateway(PaymentGateway, BulkTransfers):
    def __init__(self, base_url: str, biller_id: str, *, timeout_seconds: float = 10.0) -> None:
        self.http = HttpClient(base_url, timeout_seconds=timeout_seconds)
        self.biller_id = biller_id

    async def create_charge(self, reference: str, amount_satang: int, expires_at: datetime, idempotency_key: str) -> dict[str, Any]:
        body = {"reference": reference, "amount_satang": amount_satang, "biller_id": self.biller_id, "expires_at": expires_at.isoformat()}
        return await self.http.request("POST", "/charges", body=body, key=idempotency_key) or {}

    async def read_charge(self, charge_id: str) -> dict[str, Any]:
        return await self.http.request("GET", f"/charges/{_segment(charge_id)}") or {}

    async def refund(self, reference: str, amount_satang: int, reason: str, idempotency_key: str) -> dict[str, Any]:
        body = {"reference": reference, "amount_satang": amount_satang, "reason": reason}
        return await self.http.request("POST", "/refunds", body=body, key=idempotency_key) or {}

    async def bulk_transfer(self, value_date: str, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result = await self.http.request("POST", "/transfers/bulk", body={"value_date": value_date, "lines": lines})
        return list((result or {}).get("lines", []))
