"""The register of elderly-allowance recipients as a view: one row per recipient, kept from the
Recipient events of the log.

`RegisterFollower.catch_up` applies the new Recipient events in batches, writing the rows and
its position in one transaction; the position row is locked for the transaction, so the
projector (after each catch-up) and a run's plan job (before it reads) may both call it and
neither applies an event twice. `RegisterQueries` serves the officers' list with asyncpg.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from application.ports import AllowanceQueries, AllowanceRegister
from domain.allowance import Recipient
from infrastructure.eventstore.event_log import EVENTS_TABLE

TABLE = "allowance_recipients"
POSITION_TABLE = "allowance_register_position"

SCHEMA_STATEMENTS = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        id uuid PRIMARY KEY, national_id text NOT NULL, organization text NOT NULL, birth_date date NOT NULL,
        payout jsonb NOT NULL, start_month text NOT NULL, band_amount_satang int NOT NULL, status text NOT NULL,
        reasons jsonb NOT NULL DEFAULT '[]', last_month text, request_id text, version int NOT NULL,
        position bigint NOT NULL)""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_org ON {TABLE} (organization, status, id)",
    f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} (name text PRIMARY KEY, position bigint NOT NULL)",
    f"INSERT INTO {POSITION_TABLE} (name, position) VALUES ('register', 0) ON CONFLICT DO NOTHING",
]

TOPICS = [e.TOPIC for e in (Recipient.Registered, Recipient.Suspended, Recipient.Resumed, Recipient.Ended, Recipient.BandChanged)]
_COLUMNS = ("id", "national_id", "organization", "birth_date", "payout", "start_month", "band_amount_satang", "status",
            "reasons", "last_month", "request_id", "version", "position")


class RegisterFollower(AllowanceRegister):
    def __init__(self, datastore: Any, *, batch_size: int = 20_000) -> None:
        self.datastore = datastore
        self.batch_size = batch_size

    def catch_up(self) -> int:
        done = 0
        while True:
            applied, more = self._one_batch()
            done += applied
            if not more:
                return done

    def _one_batch(self) -> tuple[int, bool]:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(f"INSERT INTO {POSITION_TABLE} (name, position) VALUES ('register', 0) ON CONFLICT DO NOTHING")
            curs.execute(f"SELECT position FROM {POSITION_TABLE} WHERE name = 'register' FOR UPDATE")
            position = curs.fetchone()["position"]
            # The event table has no index on topic: read the log in position order and keep
            # the Recipient events (a range scan on the primary key).
            curs.execute(
                f"SELECT notification_id, originator_id, originator_version, topic, state FROM {EVENTS_TABLE}"
                f" WHERE notification_id > %s ORDER BY notification_id LIMIT %s", (position, self.batch_size))
            rows = curs.fetchall()
            if not rows:
                return 0, False
            mine = [r for r in rows if r["topic"] in TOPICS]
            changed: dict[Any, dict[str, Any]] = {}
            missing = {r["originator_id"] for r in mine if r["topic"] != Recipient.Registered.TOPIC}
            if missing:
                curs.execute(f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} WHERE id = ANY(%s)", (list(missing),))
                changed = {row["id"]: dict(row) for row in curs.fetchall()}
            for r in mine:
                _apply(changed, r)
            if changed:
                curs.executemany(
                    f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
                    f" ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:]),
                    [tuple(_db(row[c]) if c in ("payout", "reasons") else row[c] for c in _COLUMNS) for row in changed.values()],
                )
            curs.execute(f"UPDATE {POSITION_TABLE} SET position = %s WHERE name = 'register'", (rows[-1]["notification_id"],))
            return len(mine), len(rows) == self.batch_size

    def recipients(self, organization: str) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                f"SELECT id, national_id, birth_date, payout, start_month, band_amount_satang, status FROM {TABLE}"
                f" WHERE organization = %s AND status <> 'ended' ORDER BY id", (organization,))
            return curs.fetchall()


def _db(value: Any) -> str:
    return orjson.dumps(value).decode()


def _apply(rows: dict[Any, dict[str, Any]], stored: dict[str, Any]) -> None:
    state = orjson.loads(stored["state"])
    rid, topic = stored["originator_id"], stored["topic"]
    if topic == Recipient.Registered.TOPIC:
        rows[rid] = {
            "id": rid, "national_id": state["national_id"], "organization": state["organization"],
            "birth_date": state["birth_date"], "payout": state["payout"], "start_month": state["start_month"],
            "band_amount_satang": state["band_amount_satang"], "status": "active", "reasons": [], "last_month": None,
            "request_id": state.get("request_id"),
        }
    else:
        row = rows.get(rid)
        if row is None:  # an event of a recipient the view never saw registered: cannot be applied
            return
        if isinstance(row["reasons"], str):
            row["reasons"] = orjson.loads(row["reasons"])
        if topic == Recipient.BandChanged.TOPIC:
            row["band_amount_satang"] = state["band_amount_satang"]
        else:
            status = {Recipient.Suspended.TOPIC: "suspended", Recipient.Resumed.TOPIC: "active", Recipient.Ended.TOPIC: "ended"}[topic]
            row["status"] = status
            row["reasons"] = [*row["reasons"], {"status": status, "reason": state["reason"]}]
            if topic == Recipient.Ended.TOPIC:
                row["last_month"] = state.get("last_month")
    rows[rid]["version"] = stored["originator_version"]
    rows[rid]["position"] = stored["notification_id"]


class RegisterQueries(AllowanceQueries):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def position(self) -> int:
        return int(await self.pool.fetchval(f"SELECT coalesce(max(position), 0) FROM {POSITION_TABLE}") or 0)

    async def list_recipients(self, filters: dict[str, Any], limit: int, after: str | None) -> list[dict[str, Any]]:
        clauses, args = [], []
        for column in ("organization", "status", "band_amount_satang"):
            if filters.get(column) is not None:
                args.append(filters[column])
                clauses.append(f"{column} = ${len(args)}")
        if after:
            args.append(after)
            clauses.append(f"id > ${len(args)}::uuid")
        args.append(limit)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.pool.fetch(
            f"SELECT id::text AS id, national_id, organization, birth_date::text AS birth_date, payout::text AS payout, start_month,"
            f" band_amount_satang, status, reasons::text AS reasons, last_month, request_id, version, position"
            f" FROM {TABLE} {where} ORDER BY id LIMIT ${len(args)}", *args)
        result = []
        for row in rows:
            item = dict(row)
            payout = orjson.loads(item["payout"])
            account = str(payout.get("account", ""))
            item["payout"] = {"kind": payout["kind"], "account": "X" * max(0, len(account) - 4) + account[-4:]}
            item["reasons"] = orjson.loads(item["reasons"])
            result.append(item)
        return result
