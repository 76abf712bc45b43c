"""Simulator of the bank's bill-payment gateway: PromptPay charges, payments, signed notices,
refunds and daily settlement files.

Payment notices are delivered at least once: retried until acknowledged, sometimes late,
sometimes twice, so the receiver must verify the signature and deduplicate by notice or payment.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import random
import re
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp import web

from application.bank_signature import notice_signature
from domain.promptpay import InvalidPromptPayPayload, bill_payment_payload, parse_payload

from .faults import Faults, ProblemError, Simulator, bad_request, json_response, read_json_object, simulator_app
from simulators.errors import InvalidSimulatorSetting

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 10.0
NOTICE_TIMEOUT_SECONDS = 10.0
RETRYABLE_4XX = (408, 429)
SETTLEMENT_COLUMNS = ("payment_id", "reference", "ref2", "amount_satang", "paid_at", "biller_id")
# Thai banks settle by the business day in Bangkok (UTC+7).
BANGKOK = timezone(timedelta(hours=7))
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _unprocessable(title: str, detail: str) -> ProblemError:
    return ProblemError(422, title, detail)


def _positive_int(body: dict[str, Any], field: str) -> int:
    value = body.get(field)
    if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        raise bad_request(f"{field} must be a positive integer (satang)")
    return value


def _text(body: dict[str, Any], field: str, *, required: bool = True, max_len: int = 200) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise bad_request(f"{field} must be a non-empty string of at most {max_len} characters")
    return value


def _rate(value: object, name: str) -> float:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0):
        raise bad_request(f"{name} must be a number from 0 to 1")
    return float(value)


class Bank:
    """The gateway's state; effect methods are synchronous (see Simulator.once)."""

    def __init__(
        self,
        sim: Simulator,
        *,
        seed: int,
        callback_url: str | None,
        callback_secret: str,
        duplicate_rate: float,
        late_rate: float,
        late_seconds: float,
        biller_ids: tuple[str, ...] | None,
    ) -> None:
        self.sim = sim
        self.callback_url = callback_url
        self.callback_secret = callback_secret
        self.duplicate_rate = duplicate_rate
        self.late_rate = late_rate
        self.late_seconds = late_seconds
        self.biller_ids = tuple(biller_ids) if biller_ids else None
        self.rng = random.Random(f"bank-delivery-{seed}")
        # IDs carry a per-process tag so that a restarted simulator never reuses a payment ID
        # that the receiver has already stored (it would be dropped as a duplicate).
        self.tag = f"{secrets.randbelow(10**6):06d}"
        self.counters = {"CHG": 0, "PAY": 0, "RFD": 0, "NTC": 0, "TRF": 0}
        # Bulk transfers out (allowances), by idempotency key: a paid key is never paid again.
        self.transfers: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.payments: list[dict[str, Any]] = []
        self.refunds: list[dict[str, Any]] = []
        self.notices: dict[str, dict[str, Any]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.session: aiohttp.ClientSession | None = None
        self.reset_notice_stats()
        sim.add_stats_source(self.notice_stats, self.reset_notice_stats)

    def new_id(self, prefix: str) -> str:
        self.counters[prefix] += 1
        return f"{prefix}{self.tag}{self.counters[prefix]:08d}"

    def reset_notice_stats(self) -> None:
        self.notices_sent = 0
        self.notices_acknowledged = 0
        self.notices_rejected = 0

    def notice_stats(self) -> dict[str, Any]:
        return {
            "notices_sent": self.notices_sent,
            "notices_acknowledged": self.notices_acknowledged,
            "notices_rejected": self.notices_rejected,
            "notices_in_flight": len(self.tasks),
        }

    def check_biller(self, biller_id: str) -> None:
        if self.biller_ids is not None and biller_id not in self.biller_ids:
            raise _unprocessable("Unknown biller", f"biller ID {biller_id} is not registered with this bank")

    def charge_view(self, charge: dict[str, Any]) -> dict[str, Any]:
        if charge["status"] == "pending" and datetime.fromisoformat(charge["expires_at"]) <= datetime.now(UTC):
            charge["status"] = "expired"
        return charge

    # effects

    def create_charge(
        self, reference: str, amount_satang: int, biller_id: str, expires_at: datetime, ref2: str | None
    ) -> web.Response:
        self.check_biller(biller_id)
        try:
            payload = bill_payment_payload(biller_id=biller_id, ref1=reference, amount_satang=amount_satang, ref2=ref2)
        except InvalidPromptPayPayload as exc:
            raise bad_request(str(exc)) from None
        charge = {
            "charge_id": self.new_id("CHG"),
            "reference": reference,
            "ref2": ref2,
            "biller_id": biller_id,
            "amount_satang": amount_satang,
            "status": "pending",
            "promptpay_payload": payload,
            "expires_at": _iso(expires_at.astimezone(UTC)),
            "created_at": _iso(datetime.now(UTC)),
            "payment_id": None,
            "paid_at": None,
        }
        self.charges[charge["charge_id"]] = charge
        return json_response(charge, status=201)

    def pay(self, biller_id: str, ref1: str, ref2: str | None, amount_satang: int) -> web.Response:
        now = datetime.now(UTC)
        charge = next(
            (
                c
                for c in self.charges.values()
                if c["reference"] == ref1
                and c["biller_id"] == biller_id
                and c["amount_satang"] == amount_satang
                and (c["ref2"] or None) == (ref2 or None)
                and self.charge_view(c)["status"] == "pending"
            ),
            None,
        )
        payment = {
            "payment_id": self.new_id("PAY"),
            "reference": ref1,
            "ref2": ref2,
            "biller_id": biller_id,
            "amount_satang": amount_satang,
            "paid_at": _iso(now),
            "charge_id": charge["charge_id"] if charge else None,
        }
        if charge is not None:
            charge.update(status="paid", payment_id=payment["payment_id"], paid_at=payment["paid_at"])
        self.payments.append(payment)
        if self.callback_url:
            self.send_notice(payment)
        return json_response(payment, status=201)

    def refund(self, charge_id: str | None, reference: str, amount_satang: int, reason: str) -> web.Response:
        if charge_id is not None:
            charge = self.charges.get(charge_id)
            if charge is None:
                raise ProblemError(404, "Not found", f"charge {charge_id} does not exist", slug="not-found")
            if charge["reference"] != reference:
                raise _unprocessable("Reference mismatch", f"charge {charge_id} is for reference {charge['reference']}")
            if charge["status"] not in ("paid", "refunded"):
                raise _unprocessable("Charge not paid", f"charge {charge_id} is {charge['status']}; nothing to refund")
            paid = charge["amount_satang"]
            refunded = sum(r["amount_satang"] for r in self.refunds if r["charge_id"] == charge_id)
        else:
            paid = sum(p["amount_satang"] for p in self.payments if p["reference"] == reference)
            refunded = sum(r["amount_satang"] for r in self.refunds if r["reference"] == reference)
            if paid == 0:
                raise _unprocessable("Nothing paid", f"no payment was received for reference {reference}")
        if refunded + amount_satang > paid:
            raise _unprocessable(
                "Refund too large",
                f"{amount_satang} satang would bring refunds to {refunded + amount_satang} of {paid} paid",
            )
        refund = {
            "refund_id": self.new_id("RFD"),
            "charge_id": charge_id,
            "reference": reference,
            "amount_satang": amount_satang,
            "reason": reason,
            "status": "refunded",
            "refunded_at": _iso(datetime.now(UTC)),
        }
        self.refunds.append(refund)
        if charge_id is not None and refunded + amount_satang == paid:
            self.charges[charge_id]["status"] = "refunded"
        return json_response(refund, status=201)

    # payment notices

    def send_notice(self, payment: dict[str, Any]) -> None:
        """Start delivering the notice of ``payment`` in the background (at least once)."""
        notice_id = self.new_id("NTC")
        body = orjson.dumps({"notice_id": notice_id, **{k: payment[k] for k in (
            "payment_id", "reference", "ref2", "biller_id", "amount_satang", "paid_at", "charge_id")}})
        late = self.rng.random() < self.late_rate
        duplicate = self.rng.random() < self.duplicate_rate
        self.notices[notice_id] = {
            "notice_id": notice_id,
            "payment_id": payment["payment_id"],
            "late": late,
            "duplicate": duplicate,
            "attempts": 0,
            "acknowledged": 0,
            "last_status": None,
            "last_error": None,
        }
        task = asyncio.get_running_loop().create_task(
            self._deliver(notice_id, body, delay=self.late_seconds if late else 0.0, duplicate=duplicate)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, notice_id: str, body: bytes, *, delay: float, duplicate: bool) -> None:
        if delay:
            await asyncio.sleep(delay)
        await self._deliver_once(notice_id, body)
        if duplicate:
            await asyncio.sleep(self.rng.uniform(0.05, 0.3))
            await self._deliver_once(notice_id, body)

    async def _deliver_once(self, notice_id: str, body: bytes) -> None:
        record = self.notices[notice_id]
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            status, error = await self._post(notice_id, body)
            self.notices_sent += 1
            record["attempts"] += 1
            record["last_status"], record["last_error"] = status, error
            if status is not None and 200 <= status < 300:
                self.notices_acknowledged += 1
                record["acknowledged"] += 1
                return
            if status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX:
                self.notices_rejected += 1
                log.warning("payment notice %s refused with HTTP %s; not retried", notice_id, status)
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _post(self, notice_id: str, body: bytes) -> tuple[int | None, str | None]:
        # Read at each attempt so that a callback URL fixed at run time serves pending retries.
        url, secret = self.callback_url, self.callback_secret
        if not url:
            return None, "no callback URL"
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=NOTICE_TIMEOUT_SECONDS))
        # Signed afresh at each attempt, as banks do, so that a late retry is not refused as stale.
        timestamp = str(int(time.time()))
        provider = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
        headers = {
            "Content-Type": "application/json",
            "X-Bank-Timestamp": timestamp,
            "X-Bank-Signature": notice_signature(secret, timestamp, provider, body),
            "X-Bank-Notice-Id": notice_id,
        }
        try:
            async with self.session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    async def close(self) -> None:
        """Cancel notice deliveries still running and close the HTTP client."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
            self.session = None


BANK = web.AppKey("bank", Bank)


def _bank(request: web.Request) -> Bank:
    return request.app[BANK]


async def post_charge(request: web.Request) -> web.Response:
    """POST /charges {reference, amount_satang, biller_id, expires_at, ref2?} (effect "charge")."""
    bank = _bank(request)
    body = await read_json_object(request)
    reference = _text(body, "reference", max_len=20)
    amount = _positive_int(body, "amount_satang")
    biller_id = body.get("biller_id")
    if not (isinstance(biller_id, str) and len(biller_id) == 15 and biller_id.isascii() and biller_id.isdigit()):
        raise bad_request("biller_id must be 15 digits (13-digit tax ID + 2-digit suffix)")
    ref2 = _text(body, "ref2", required=False, max_len=20)
    raw_expiry = body.get("expires_at")
    try:
        expires_at = datetime.fromisoformat(raw_expiry) if isinstance(raw_expiry, str) else None
    except ValueError:
        expires_at = None
    if expires_at is None or expires_at.tzinfo is None:
        raise bad_request("expires_at must be an RFC 3339 timestamp with a time zone")
    assert reference is not None
    return bank.sim.once(request, "charge", lambda: bank.create_charge(reference, amount, biller_id, expires_at, ref2))


async def get_charge(request: web.Request) -> web.Response:
    """GET /charges/{charge_id}."""
    bank = _bank(request)
    charge = bank.charges.get(request.match_info["charge_id"])
    if charge is None:
        raise ProblemError(404, "Not found", "charge not found", slug="not-found")
    return json_response(bank.charge_view(charge))


async def post_refund(request: web.Request) -> web.Response:
    """POST /refunds {charge_id?, reference, amount_satang, reason} (effect "refund")."""
    bank = _bank(request)
    body = await read_json_object(request)
    charge_id = _text(body, "charge_id", required=False, max_len=40)
    reference = _text(body, "reference", max_len=20)
    amount = _positive_int(body, "amount_satang")
    reason = _text(body, "reason", max_len=500)
    assert reference is not None and reason is not None
    return bank.sim.once(request, "refund", lambda: bank.refund(charge_id, reference, amount, reason))


async def get_refunds(request: web.Request) -> web.Response:
    """GET /refunds?reference=."""
    reference = request.query.get("reference")
    items = [r for r in _bank(request).refunds if reference is None or r["reference"] == reference]
    return json_response({"items": items})


async def post_pay(request: web.Request) -> web.Response:
    """POST /pay {payload}: what a banking app does after scanning the QR (effect "payment")."""
    bank = _bank(request)
    body = await read_json_object(request)
    payload = body.get("payload")
    if not isinstance(payload, str):
        raise bad_request("payload must be the PromptPay payload string")
    try:
        parsed = parse_payload(payload)
    except InvalidPromptPayPayload as exc:
        raise ProblemError(400, "Invalid PromptPay payload", str(exc), slug="invalid-promptpay-payload") from None
    bank.check_biller(parsed.biller_id)
    if parsed.amount_satang is None or parsed.amount_satang <= 0:
        raise _unprocessable("Amount required", "the payload has no amount (tag 54); the simulator cannot guess one")
    amount = parsed.amount_satang
    return bank.sim.once(
        request, "payment", lambda: bank.pay(parsed.biller_id, parsed.ref1, parsed.ref2, amount), key_required=False
    )


async def get_payments(request: web.Request) -> web.Response:
    """GET /payments?reference=."""
    reference = request.query.get("reference")
    items = [p for p in _bank(request).payments if reference is None or p["reference"] == reference]
    return json_response({"items": items})


async def get_settlement(request: web.Request) -> web.Response:
    """GET /settlements/{YYYY-MM-DD}: CSV of the payments of that day in Bangkok."""
    raw = request.match_info["day"]
    try:
        day = date.fromisoformat(raw) if _DAY.match(raw) else None
    except ValueError:
        day = None
    if day is None:
        raise bad_request("the settlement day must be a date as YYYY-MM-DD")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SETTLEMENT_COLUMNS)
    for p in _bank(request).payments:
        if datetime.fromisoformat(p["paid_at"]).astimezone(BANGKOK).date() == day:
            writer.writerow([p["payment_id"], p["reference"], p["ref2"] or "", p["amount_satang"], p["paid_at"], p["biller_id"]])
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8")


async def get_notices(request: web.Request) -> web.Response:
    """GET /admin/notices: the delivery log of payment notices."""
    return json_response({"items": list(_bank(request).notices.values())})


def _delivery_view(bank: Bank) -> dict[str, Any]:
    return {
        "callback_url": bank.callback_url,
        "duplicate_rate": bank.duplicate_rate,
        "late_rate": bank.late_rate,
        "late_seconds": bank.late_seconds,
        "biller_ids": list(bank.biller_ids) if bank.biller_ids else None,
    }


async def get_delivery(request: web.Request) -> web.Response:
    """GET /admin/delivery: how notices are delivered (the secret is never shown)."""
    return json_response(_delivery_view(_bank(request)))


async def put_delivery(request: web.Request) -> web.Response:
    """PUT /admin/delivery {callback_url?, callback_secret?, duplicate_rate?, late_rate?, late_seconds?}."""
    bank = _bank(request)
    changes = await read_json_object(request)
    allowed = {"callback_url", "callback_secret", "duplicate_rate", "late_rate", "late_seconds"}
    if unknown := set(changes) - allowed:
        raise bad_request(f"unknown delivery fields: {', '.join(sorted(unknown))}")
    url = changes.get("callback_url", bank.callback_url)
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise bad_request("callback_url must be an http(s) URL or null")
    secret = changes.get("callback_secret", bank.callback_secret)
    if not isinstance(secret, str):
        raise bad_request("callback_secret must be a string")
    duplicate_rate = _rate(changes.get("duplicate_rate", bank.duplicate_rate), "duplicate_rate")
    late_rate = _rate(changes.get("late_rate", bank.late_rate), "late_rate")
    late_seconds = changes.get("late_seconds", bank.late_seconds)
    if not (isinstance(late_seconds, (int, float)) and not isinstance(late_seconds, bool) and 0 <= late_seconds <= 3600):
        raise bad_request("late_seconds must be a number from 0 to 3600")
    bank.callback_url, bank.callback_secret = url, secret
    bank.duplicate_rate, bank.late_rate, bank.late_seconds = duplicate_rate, late_rate, float(late_seconds)
    return json_response(_delivery_view(bank))


CLOSED_ACCOUNT_PREFIX = "999"
MAX_TRANSFER_LINES = 5_000


def _check_transfer_line(line: Any) -> tuple[str, int, str, str]:
    if not isinstance(line, dict):
        raise bad_request("each line is an object")
    key, amount, kind, account = line.get("key"), line.get("amount_satang"), line.get("kind"), line.get("account")
    if not isinstance(key, str) or not 1 <= len(key) <= 255:
        raise bad_request("lines[].key must be a string of 1 to 255 characters")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise bad_request("lines[].amount_satang must be a positive integer")
    if kind not in ("bank", "promptpay") or not isinstance(account, str) or not account.isdigit():
        raise bad_request("lines[].kind must be bank or promptpay, with a numeric account")
    return key, amount, kind, account


def _transfer_line(bank: Bank, value_date: str, key: str, amount: int, kind: str, account: str) -> dict[str, Any]:
    done = bank.transfers.get(key)
    if done is not None and done["status"] == "paid":
        bank.sim.duplicate_keys += 1
        return {**done, "duplicate": True}
    if kind == "bank" and account.startswith(CLOSED_ACCOUNT_PREFIX):
        answer = {"key": key, "status": "refused", "reason": "account closed", "transfer_id": None}
    else:
        answer = {"key": key, "status": "paid", "reason": None, "transfer_id": bank.new_id("TRF"), "value_date": value_date,
                  "amount_satang": amount}
        bank.sim.record_effect("allowance_transfer", key)
    bank.transfers[key] = answer
    return answer


async def post_bulk_transfer(request: web.Request) -> web.Response:
    """POST /transfers/bulk {value_date, lines: [{key, amount_satang, kind, account, reference}]}:
    value-dated transfers out, answered per line: paid, or refused with a reason (a bank account
    starting with 999 is closed). Each line's key is its idempotency key: a key already paid is
    answered as before (``duplicate``) and not paid again; a refused key may be tried again."""
    bank = _bank(request)
    body = await read_json_object(request)
    value_date = body.get("value_date")
    try:
        date.fromisoformat(value_date)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise bad_request("value_date must be a date such as 2027-01-10") from None
    lines = body.get("lines")
    if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_TRANSFER_LINES:
        raise bad_request(f"lines must be a list of 1 to {MAX_TRANSFER_LINES} transfers")
    checked = [_check_transfer_line(line) for line in lines]  # all or nothing: a bad line pays nobody
    return json_response({"lines": [_transfer_line(bank, value_date, *line) for line in checked]})


def build_bank_app(
    *,
    seed: int = 42,
    faults: Faults | None = None,
    callback_url: str | None = None,
    callback_secret: str = "",
    duplicate_rate: float = 0.2,
    late_rate: float = 0.2,
    late_seconds: float = 2.0,
    biller_ids: tuple[str, ...] | None = None,
) -> web.Application:
    """The bank bill-payment gateway simulator as an aiohttp app."""
    for name, rate in (("duplicate_rate", duplicate_rate), ("late_rate", late_rate)):
        if not 0.0 <= rate <= 1.0:
            raise InvalidSimulatorSetting(f"{name} must be from 0 to 1")
    sim = Simulator(name="bank gateway", seed=seed, faults=faults or Faults())
    app = simulator_app(sim)
    bank = Bank(
        sim,
        seed=seed,
        callback_url=callback_url,
        callback_secret=callback_secret,
        duplicate_rate=duplicate_rate,
        late_rate=late_rate,
        late_seconds=late_seconds,
        biller_ids=biller_ids,
    )
    app[BANK] = bank

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        yield
        await bank.close()

    app.cleanup_ctx.append(lifetime)
    app.router.add_post("/charges", post_charge)
    app.router.add_get("/charges/{charge_id}", get_charge)
    app.router.add_post("/refunds", post_refund)
    app.router.add_get("/refunds", get_refunds)
    app.router.add_post("/pay", post_pay)
    app.router.add_post("/transfers/bulk", post_bulk_transfer)
    app.router.add_get("/payments", get_payments)
    app.router.add_get("/settlements/{day}", get_settlement)
    app.router.add_get("/admin/notices", get_notices)
    app.router.add_get("/admin/delivery", get_delivery)
    app.router.add_put("/admin/delivery", put_delivery)
    return app
