"""The bank's daily settlement file over HTTP: ``GET {bank}/settlements/{YYYY-MM-DD}``, CSV.

The format (README, "The money trail"): a header line, then one line per payment credited on that
Bangkok business day: ``payment_id,reference,ref2,amount_satang,paid_at,biller_id``.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import aiohttp

from application.errors import OutsideCallFailed, OutsideCallRefused
from application.ports import BankSettlements

REQUIRED_COLUMNS = ("payment_id", "reference", "amount_satang")


def parse_settlement(text: str) -> list[dict[str, Any]]:
    """The lines of a settlement file; a malformed file is refused whole, naming the line."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise OutsideCallRefused(f"the settlement file lacks the columns {', '.join(missing)}")
    lines = []
    for number, row in enumerate(reader, start=2):
        amount = (row.get("amount_satang") or "").strip()
        if not amount.isdigit() or not row.get("reference") or not row.get("payment_id"):
            raise OutsideCallRefused(f"settlement line {number} is malformed")
        lines.append({"bank_payment_id": row["payment_id"], "reference": row["reference"], "amount_satang": int(amount),
                      "paid_at": row.get("paid_at") or None, "biller_id": row.get("biller_id") or None})
    return lines


class HttpBankSettlements(BankSettlements):
    def __init__(self, base_url: str, *, timeout_seconds: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def settlement(self, day: date) -> list[dict[str, Any]]:
        try:
            async with aiohttp.ClientSession(timeout=self.timeout) as session:
                async with session.get(f"{self.base_url}/settlements/{day.isoformat()}") as response:
                    if response.status >= 500:
                        raise OutsideCallFailed(f"the bank answered {response.status} for the settlement of {day}")
                    if response.status != 200:
                        raise OutsideCallRefused(f"the bank answered {response.status} for the settlement of {day}")
                    text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise OutsideCallFailed(f"the bank's settlement file could not be read: {error}") from None
        return parse_settlement(text)
