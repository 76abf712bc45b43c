"""The land-tax views: parcels and notices, written by the views recorder in its transaction
(with the tracking record), and read by the API with asyncpg."""

from __future__ import annotations

from datetime import date
from typing import Any, Sequence
from uuid import UUID

import asyncpg

from application.land_tax_views import ParcelChanges, fold_notice
from application.ports import LandTaxViews
from domain.tax_notice import TaxNotice
from domain.tax_roll import TaxRoll
from infrastructure.json_codec import dumps_str

VIEW_TABLES = ("land_tax_parcels", "land_tax_notices")
CHECKSUM_KEYS = {"land_tax_parcels": "organization, tax_year, parcel_id", "land_tax_notices": "id"}
SECONDARY_INDEXES = ("land_tax_parcels_owner", "land_tax_notices_org", "land_tax_notices_owner", "land_tax_notices_number")

SCHEMA_STATEMENTS = [
    """CREATE TABLE IF NOT EXISTS land_tax_parcels (
        organization text NOT NULL, tax_year int NOT NULL, parcel_id text NOT NULL, owner_id text NOT NULL,
        owner_kind text NOT NULL, owner_name text NOT NULL, land_use text NOT NULL, value_satang bigint NOT NULL,
        vacant_years int NOT NULL, position bigint NOT NULL, PRIMARY KEY (organization, tax_year, parcel_id))""",
    "CREATE INDEX IF NOT EXISTS land_tax_parcels_owner ON land_tax_parcels (owner_id, tax_year)",
    """CREATE TABLE IF NOT EXISTS land_tax_notices (
        id uuid PRIMARY KEY, number text NOT NULL, organization text NOT NULL, tax_year int NOT NULL, owner_id text NOT NULL,
        owner_kind text NOT NULL, parcels jsonb NOT NULL, tax_satang bigint NOT NULL, reduction_satang bigint NOT NULL,
        due_date date NOT NULL, instalments jsonb, paid_satang bigint NOT NULL, warning jsonb, version int NOT NULL,
        position bigint NOT NULL, issued_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS land_tax_notices_org ON land_tax_notices (organization, tax_year, owner_id, id)",
    "CREATE INDEX IF NOT EXISTS land_tax_notices_owner ON land_tax_notices (owner_id, tax_year, id)",
    "CREATE INDEX IF NOT EXISTS land_tax_notices_number ON land_tax_notices (number)",
]

PARCEL_COLUMNS = ("organization", "tax_year", "parcel_id", "owner_id", "owner_kind", "owner_name", "land_use", "value_satang",
                  "vacant_years", "position")
NOTICE_COLUMNS = ("id", "number", "organization", "tax_year", "owner_id", "owner_kind", "parcels", "tax_satang", "reduction_satang",
                  "due_date", "instalments", "paid_satang", "warning", "version", "position", "issued_at", "updated_at")
_JSON = frozenset({"parcels", "instalments", "warning"})
_TYPES = {"tax_year": "int4", "value_satang": "int8", "vacant_years": "int4", "position": "int8", "id": "uuid", "tax_satang": "int8",
          "reduction_satang": "int8", "due_date": "date", "paid_satang": "int8", "version": "int4", "issued_at": "timestamptz",
          "updated_at": "timestamptz"}


def _upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    arrays = ", ".join(f"%s::{'text' if c in _JSON else _TYPES.get(c, 'text')}[]" for c in columns)
    select = ", ".join(f"t.{c}::jsonb" if c in _JSON else f"t.{c}" for c in columns)
    update = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM unnest({arrays}) AS t({', '.join(columns)}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {update}")


UPSERT_PARCELS = _upsert("land_tax_parcels", PARCEL_COLUMNS, ("organization", "tax_year", "parcel_id"))
UPSERT_NOTICES = _upsert("land_tax_notices", NOTICE_COLUMNS, ("id",))
REVALUE_PARCELS = (
    "UPDATE land_tax_parcels p SET value_satang = t.v, position = t.pos"
    " FROM unnest(%s::text[], %s::int4[], %s::text[], %s::int8[], %s::int8[]) AS t(o, y, pid, v, pos)"
    " WHERE p.organization = t.o AND p.tax_year = t.y AND p.parcel_id = t.pid"
)


def _arrays(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[list[Any]]:
    return [[dumps_str(r[c]) if r[c] is not None else None for r in rows] if c in _JSON else
            [date.fromisoformat(r[c]) if c == "due_date" and isinstance(r[c], str) else r[c] for r in rows] for c in columns]


# The events these views fold (the recorder sends them here).
LAND_TAX_EVENTS = (TaxRoll.Event, TaxNotice.Event)


def apply_land_tax(curs: Any, events: Sequence[tuple[Any, int]]) -> None:
    """Fold a batch's land-tax events into the views, in the recorder's transaction."""
    parcels = ParcelChanges()
    issued = {e.originator_id for e, _ in events if isinstance(e, TaxNotice.Issued)}
    touched = {e.originator_id for e, _ in events if isinstance(e, TaxNotice.Event)} - issued
    notices: dict[UUID, dict[str, Any]] = {}
    if touched:
        curs.execute(f"SELECT {', '.join(NOTICE_COLUMNS)} FROM land_tax_notices WHERE id = ANY(%s)", (list(touched),))
        for row in curs.fetchall():
            notices[row["id"]] = {**row, "due_date": row["due_date"].isoformat()}
    for event, position in events:
        if isinstance(event, TaxRoll.Event):
            parcels.fold(event, position)
        elif isinstance(event, TaxNotice.Event):
            notices[event.originator_id] = fold_notice(notices.get(event.originator_id), event, position)
    if parcels.rows:
        curs.execute(UPSERT_PARCELS, _arrays(list(parcels.rows.values()), PARCEL_COLUMNS))
    if parcels.values:
        keys = list(parcels.values)
        curs.execute(REVALUE_PARCELS, ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                                       [parcels.values[k][0] for k in keys], [parcels.values[k][1] for k in keys]))
    if notices:
        curs.execute(UPSERT_NOTICES, _arrays(list(notices.values()), NOTICE_COLUMNS))


NOTICE_SELECT = ("SELECT id::text AS id, number, organization, tax_year, owner_id, owner_kind, parcels, tax_satang, reduction_satang,"
                 " due_date, instalments, paid_satang, warning, version, position FROM land_tax_notices")


class PostgresLandTaxViews(LandTaxViews):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get_notice(self, notice_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(NOTICE_SELECT + " WHERE id = $1::uuid", notice_id)
        return dict(row) if row else None

    async def list_notices(self, *, organization: str | None, owner_id: str | None, tax_year: int | None, limit: int,
                           after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        where, args = [], []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if organization is not None:
            where.append(f"organization = {arg(organization)}")
        if owner_id is not None:
            where.append(f"owner_id = {arg(owner_id)}")
        if tax_year is not None:
            where.append(f"tax_year = {arg(tax_year)}")
        if after is not None:
            where.append(f"(tax_year, owner_id, id) > ({arg(int(after[0]))}, {arg(str(after[1]))}, {arg(str(after[2]))}::uuid)")
        sql = NOTICE_SELECT + (" WHERE " + " AND ".join(where) if where else "")
        sql += f" ORDER BY tax_year, owner_id, id LIMIT {arg(limit)}"
        return [dict(r) for r in await self.pool.fetch(sql, *args)]
