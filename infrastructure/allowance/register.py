"""The register of elderly-allowance recipients as a view: one row per recipient, kept from the
Recipient events of the log.

`RegisterFollower.catch_up` applies the new Recipient events in batches, writing the rows and
its position in one transaction; the position row is locked for the transaction, so the
projector (after each catch-up) and a run's plan job (before it reads) may both call it and
neither applies an event twice. `RegisterQueries` serves the officers' list with asyncpg.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import asyncpg
import orjson

from application.ports import AllowanceQueries, AllowanceRegister
from domain.allowance import Recipient
from infrastructure.errors import RevealerMissing
from infrastructure.eventstore.event_log import EVENTS_TABLE
from infrastructure.privacy.envelopes import ERASED, SUBJECT

TABLE = "allowance_recipients"
POSITION_TABLE = "allowance_register_position"

SCHEMA_STATEMENTS = [
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        id uuid PRIMARY KEY, national_id text NOT NULL, organization text NOT NULL, birth_date date NOT NULL,
        payout jsonb NOT NULL, start_month text NOT NULL, band_amount_satang int NOT NULL, status text NOT NULL,
        reasons jsonb NOT NULL DEFAULT '[]', last_month text, request_id text, version int NOT NULL,
        position bigint NOT NULL)""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_org ON {TABLE} (organization, status, id)",
    # Erasure: an erased recipient's birth date is gone (the row keeps amounts and statuses).
    f"ALTER TABLE {TABLE} ALTER COLUMN birth_date DROP NOT NULL",
    # Access and portability exports find a person's rows by their national ID.
    f"CREATE INDEX IF NOT EXISTS {TABLE}_national_id ON {TABLE} (national_id)",
    f"CREATE TABLE IF NOT EXISTS {POSITION_TABLE} (name text PRIMARY KEY, position bigint NOT NULL)",
    f"INSERT INTO {POSITION_TABLE} (name, position) VALUES ('register', 0) ON CONFLICT DO NOTHING",
]

TOPICS = [e.TOPIC for e in (Recipient.Registered, Recipient.Suspended, Recipient.Resumed, Recipient.Ended, Recipient.BandChanged)]
_COLUMNS = ("id", "national_id", "organization", "birth_date", "payout", "start_month", "band_amount_satang", "status",
            "reasons", "last_month", "request_id", "version", "position")


Reveal = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


class RegisterFollower(AllowanceRegister):
    """``reveal`` opens the personal fields of the Recipient events it reads (their stored states,
    parsed): a recipient's ID, birth date, payout and reasons are encrypted per person in the
    log (``infrastructure/privacy``), and read ``"[erased]"`` once the person is erased."""

    def __init__(self, datastore: Any, *, batch_size: int = 20_000, reveal: Reveal | None = None) -> None:
        self.datastore = datastore
        self.batch_size = batch_size
        self.reveal = reveal

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
            self._fold(curs, mine, load=True)
            curs.execute(f"UPDATE {POSITION_TABLE} SET position = %s WHERE name = 'register'", (rows[-1]["notification_id"],))
            return len(mine), len(rows) == self.batch_size

    def _fold(self, curs: Any, mine: Sequence[dict[str, Any]], *, load: bool) -> None:
        """Apply Recipient events (log rows, in order) to the register's rows, in ``curs``'s
        transaction; with ``load``, rows of recipients registered earlier are read first."""
        states = [orjson.loads(r["state"]) for r in mine]
        if self.reveal is not None and states:
            states = self.reveal(states)
        elif any(SUBJECT in state for state in states):
            raise RevealerMissing("the register reads encrypted Recipient events: it needs the personal data revealer (reveal=)")
        changed: dict[Any, dict[str, Any]] = {}
        missing = {r["originator_id"] for r in mine if r["topic"] != Recipient.Registered.TOPIC}
        if missing and load:
            curs.execute(f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} WHERE id = ANY(%s)", (list(missing),))
            changed = {row["id"]: dict(row) for row in curs.fetchall()}
        for r, state in zip(mine, states):
            _apply(changed, r, state)
        if changed:
            curs.executemany(
                f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
                f" ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:]),
                [tuple(_db(row[c]) if c in ("payout", "reasons") else row[c] for c in _COLUMNS) for row in changed.values()],
            )

    def refold(self, curs: Any, recipient_ids: Sequence[Any]) -> int:
        """Compute these recipients' rows again from all their events, as the log reads now (an
        erasure: their ID, birth date, payout and reasons read ``"[erased]"``), up to the
        register's position; rows of events the register has not reached are left to it."""
        if not recipient_ids:
            return 0
        curs.execute(f"SELECT position FROM {POSITION_TABLE} WHERE name = 'register' FOR UPDATE")
        row = curs.fetchone()
        position = row["position"] if row else 0
        curs.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state FROM {EVENTS_TABLE}"
            f" WHERE originator_id = ANY(%s) AND notification_id <= %s ORDER BY notification_id", (list(recipient_ids), position))
        mine = [r for r in curs.fetchall() if r["topic"] in TOPICS]
        curs.execute(f"DELETE FROM {TABLE} WHERE id = ANY(%s)", (list(recipient_ids),))
        self._fold(curs, mine, load=False)
        return len({r["originator_id"] for r in mine})

    def recipients(self, organization: str) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                f"SELECT id, national_id, birth_date, payout, start_month, band_amount_satang, status FROM {TABLE}"
                f" WHERE organization = %s AND status <> 'ended' ORDER BY id", (organization,))
            return curs.fetchall()


def _db(value: Any) -> str:
    return orjson.dumps(value).decode()


def _apply(rows: dict[Any, dict[str, Any]], stored: dict[str, Any], state: dict[str, Any]) -> None:
    rid, topic = stored["originator_id"], stored["topic"]
    if topic == Recipient.Registered.TOPIC:
        # An erased person's birth date reads "[erased]": the column keeps a date, so NULL.
        birth_date = state["birth_date"] if state["birth_date"] != ERASED else None
        rows[rid] = {
            "id": rid, "national_id": state["national_id"], "organization": state["organization"],
            "birth_date": birth_date, "payout": state["payout"], "start_month": state["start_month"],
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
        rows = await self.pool.fetch(f"{RECIPIENT_SELECT} {where} ORDER BY id LIMIT ${len(args)}", *args)
        return [recipient_item(row) for row in rows]


# A register row as officers (and a person's own export) see it: see ``recipient_item``.
RECIPIENT_SELECT = (
    f"SELECT id::text AS id, national_id, organization, coalesce(birth_date::text, '{ERASED}') AS birth_date, payout::text AS payout,"
    f" start_month, band_amount_satang, status, reasons::text AS reasons, last_month, request_id, version, position FROM {TABLE}"
)


def recipient_item(row: Any) -> dict[str, Any]:
    """A row of ``RECIPIENT_SELECT`` as the register shows it: the payout account masked but for
    its last four digits."""
    item = dict(row)
    payout = orjson.loads(item["payout"])
    account = str(payout.get("account", ""))
    masked = account if account == ERASED else "X" * max(0, len(account) - 4) + account[-4:]
    item["payout"] = {"kind": payout["kind"], "account": masked}
    item["reasons"] = orjson.loads(item["reasons"])
    return item
