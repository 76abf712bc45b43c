"""Reads of the appointments view with asyncpg (the projector writes it: see recorder.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from application.appointment_views import APPOINTMENT_COLUMNS, appointment_from_row
from application.ports import AppointmentViews
from domain.appointments import HOLDS_SEAT

_SELECT = f"SELECT {', '.join(APPOINTMENT_COLUMNS)} FROM appointments_view"


class PostgresAppointmentViews(AppointmentViews):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self, appointment_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        row = await self.pool.fetchrow(_SELECT + " WHERE id = $1::uuid", appointment_id)
        return appointment_from_row(row) if row else None

    async def list(self, *, organization: str | None, applicant: str | None, service: str | None, status: str | None,
                   since: datetime | None, until: datetime | None, limit: int, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        where: list[str] = []
        args: list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        for column, value in (("organization", organization), ("applicant_national_id", applicant), ("service", service), ("status", status)):
            if value is not None:
                where.append(f"{column} = {arg(value)}")
        if since is not None:
            where.append(f"starts_at >= {arg(since)}")
        if until is not None:
            where.append(f"starts_at < {arg(until)}")
        if after is not None:
            where.append(f"(starts_at, id) > ({arg(datetime.fromisoformat(after[0]))}, {arg(after[1])}::uuid)")
        sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + f" ORDER BY starts_at, id LIMIT {arg(limit)}"
        return [appointment_from_row(row)[0] for row in await self.pool.fetch(sql, *args)]

    async def seats_taken(self, organization: str, service: str, since: datetime, until: datetime) -> dict[datetime, int]:
        rows = await self.pool.fetch(
            "SELECT starts_at, count(*) AS n FROM appointments_view WHERE organization = $1 AND service = $2"
            " AND starts_at >= $3 AND starts_at < $4 AND status = ANY($5::text[]) GROUP BY starts_at",
            organization, service, since, until, sorted(HOLDS_SEAT),
        )
        return {row["starts_at"]: row["n"] for row in rows}
