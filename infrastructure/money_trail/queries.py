"""The money trail read from the views with asyncpg: receipts, payments by Ref1."""

from __future__ import annotations

from typing import Any

import asyncpg

from application.ports import MoneyTrailQueries
from application.presentation import receipt_document

RECEIPT_SELECT = (
    "SELECT id::text AS id, number, organization, fiscal_year, sequence, payment_id::text AS payment_id,"
    " request_id::text AS request_id, reference, payer, items, amount_satang, method, issued_at, status, void_reason,"
    " voided_at, version, position FROM receipts_view"
)


def _receipt(row: asyncpg.Record) -> dict[str, Any]:
    return receipt_document(**dict(row))


class PostgresMoneyTrail(MoneyTrailQueries):
    def __init__(self, pool: asyncpg.Pool) -> None:
        # The read model's pool: its connections decode jsonb already.
        self.pool = pool

    async def get_receipt(self, receipt_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(RECEIPT_SELECT + " WHERE id = $1::uuid", receipt_id)
        return None if row is None else _receipt(row)

    async def list_receipts(self, organization: str, fiscal_year: int, limit: int, after: int | None) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            RECEIPT_SELECT + " WHERE organization = $1 AND fiscal_year = $2 AND sequence > $3 ORDER BY sequence LIMIT $4",
            organization, fiscal_year, after or 0, limit,
        )
        return [_receipt(row) for row in rows]

    async def receipts_on(self, organization: str, day: Any) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            RECEIPT_SELECT + " WHERE organization = $1 AND issued_on = $2 ORDER BY fiscal_year, sequence", organization, day
        )
        return [_receipt(row) for row in rows]

    async def promptpay_receipts_on(self, day: Any) -> list[dict[str, Any]]:
        # Void receipts too: the money came all the same, and the bank settles it.
        rows = await self.pool.fetch(RECEIPT_SELECT + " WHERE issued_on = $1 AND method = 'promptpay' ORDER BY organization, sequence", day)
        return [_receipt(row) for row in rows]

    async def payment_by_reference(self, reference: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT id::text AS id, organization, status FROM payments_view WHERE reference = $1 ORDER BY position DESC LIMIT 1", reference
        )
        return None if row is None else dict(row)
