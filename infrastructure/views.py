"""The read-model tables and the recorder that writes them together with their tracking record.

Each batch of events is folded into the rows it touches and written in one transaction with
the tracking record, so a view is an exact function of the log and a restart never
double-applies an event.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Sequence
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.types.json import Jsonb

from application.projections import COUNT_COLUMNS, count_increments, fold_payment, fold_request, is_in_work_queue
from domain.payment import Payment
from domain.service_request import ServiceRequest
from infrastructure.json_codec import dumps_str

VIEWS_NAME = "OneStop"
VIEWS_CHANNEL = "onestop_views"
TRACKING_TABLE = "onestop_views_tracking"

REQUEST_COLUMNS = (
    "id", "reference", "service", "organization", "filed_at", "channel", "status", "version", "position",
    "applicant_national_id", "applicant_name", "details", "assigned_to", "submitted_at", "updated_at",
    "due_at", "outcome", "result", "action_required", "payment_id", "payment_amount_satang", "payment_status",
)
PAYMENT_COLUMNS = (
    "id", "request_id", "reference", "organization", "amount_satang", "status", "promptpay_payload",
    "expires_at", "version", "position", "method", "updated_at", "discrepancies",
)
JSON_COLUMNS = frozenset({"details", "result", "action_required", "discrepancies"})
VIEW_TABLES = ("request_summaries", "payments_view", "work_queue", "daily_counts")

SCHEMA_STATEMENTS = [
    """CREATE TABLE IF NOT EXISTS request_summaries (
        id uuid PRIMARY KEY, reference text NOT NULL, service text NOT NULL, organization text NOT NULL,
        filed_at text NOT NULL, channel text NOT NULL, status text NOT NULL, version int NOT NULL,
        position bigint NOT NULL, applicant_national_id text NOT NULL, applicant_name text NOT NULL,
        details jsonb NOT NULL, assigned_to text, submitted_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL, due_at timestamptz NOT NULL, outcome text, result jsonb,
        action_required jsonb, payment_id uuid, payment_amount_satang bigint, payment_status text)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS request_summaries_reference ON request_summaries (reference)",
    "CREATE INDEX IF NOT EXISTS request_summaries_org ON request_summaries (organization, submitted_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS request_summaries_filed ON request_summaries (filed_at, submitted_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS request_summaries_applicant ON request_summaries (applicant_national_id, submitted_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS request_summaries_recent ON request_summaries (submitted_at DESC, id DESC)",
    "CREATE INDEX IF NOT EXISTS request_summaries_payment ON request_summaries (payment_id)",
    """CREATE TABLE IF NOT EXISTS payments_view (
        id uuid PRIMARY KEY, request_id uuid NOT NULL, reference text NOT NULL, organization text NOT NULL,
        amount_satang bigint NOT NULL, status text NOT NULL, promptpay_payload text NOT NULL,
        expires_at timestamptz NOT NULL, version int NOT NULL, position bigint NOT NULL, method text,
        updated_at timestamptz NOT NULL, discrepancies jsonb NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS payments_view_reference ON payments_view (reference)",
    """CREATE TABLE IF NOT EXISTS work_queue (
        request_id uuid PRIMARY KEY, organization text NOT NULL, reference text NOT NULL, service text NOT NULL,
        status text NOT NULL, submitted_at timestamptz NOT NULL, due_at timestamptz NOT NULL, assigned_to text,
        action_required jsonb)""",
    "CREATE INDEX IF NOT EXISTS work_queue_org ON work_queue (organization, submitted_at, request_id)",
    """CREATE TABLE IF NOT EXISTS daily_counts (
        organization text NOT NULL, day date NOT NULL, service text NOT NULL,
        submitted int NOT NULL DEFAULT 0, approved int NOT NULL DEFAULT 0, rejected int NOT NULL DEFAULT 0,
        completed int NOT NULL DEFAULT 0, withdrawn int NOT NULL DEFAULT 0, paid_satang bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (organization, day, service))""",
]


def _sql_value(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS and value is not None:
        return Jsonb(value, dumps=dumps_str)
    return value


def _upsert(table: str, columns: Sequence[str]) -> str:
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}"
    )


UPSERT_REQUEST = _upsert("request_summaries", REQUEST_COLUMNS)
UPSERT_PAYMENT = _upsert("payments_view", PAYMENT_COLUMNS)
QUEUE_COLUMNS = ("request_id", "organization", "reference", "service", "status", "submitted_at", "due_at", "assigned_to", "action_required")
UPSERT_QUEUE = _upsert("work_queue", QUEUE_COLUMNS)
ADD_COUNTS = (
    "INSERT INTO daily_counts (organization, day, service, " + ", ".join(COUNT_COLUMNS) + ") "
    "VALUES (%s, %s, %s, " + ", ".join(["%s"] * len(COUNT_COLUMNS)) + ") "
    "ON CONFLICT (organization, day, service) DO UPDATE SET "
    + ", ".join(f"{c} = daily_counts.{c} + EXCLUDED.{c}" for c in COUNT_COLUMNS)
)


class ViewsRecorder(PostgresTrackingRecorder):
    """Writes all OneStop views and their tracking record in one transaction per batch."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)
        from psycopg.sql import SQL

        self.sql_create_statements.extend(SQL(s) for s in SCHEMA_STATEMENTS)  # type: ignore[arg-type]

    def position(self) -> int:
        return self.max_tracking_id(VIEWS_NAME) or 0

    def apply_batch(self, events: Sequence[tuple[Any, int]]) -> None:
        """Fold ``(domain event, position)`` pairs, in log order, into the views."""
        if not events:
            return
        last_position = events[-1][1]
        with self.datastore.transaction(commit=True) as curs:
            payment_ids = {e.originator_id for e, _ in events if isinstance(e, Payment.Event)}
            payments = self._load(curs, "payments_view", PAYMENT_COLUMNS, payment_ids)
            request_ids = {e.originator_id for e, _ in events if isinstance(e, ServiceRequest.Event)}
            request_ids |= {p["request_id"] for p in payments.values()}
            request_ids |= {e.request_id for e, _ in events if isinstance(e, Payment.Opened)}
            requests = self._load(curs, "request_summaries", REQUEST_COLUMNS, request_ids)
            counts: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNT_COLUMNS, 0))
            for event, position in events:
                if isinstance(event, ServiceRequest.Event):
                    row = requests[event.originator_id] = fold_request(requests.get(event.originator_id), event, position)
                elif isinstance(event, Payment.Event):
                    payment = payments[event.originator_id] = fold_payment(payments.get(event.originator_id), event, position)
                    row = requests[payment["request_id"]]
                    row["payment_status"] = payment["status"]
                else:
                    continue
                increment = count_increments(event, row["organization"], row["service"])
                if increment is not None:
                    key, column, amount = increment
                    counts[key][column] += amount
            self._write(curs, requests.values(), payments.values(), counts)
            self._insert_tracking(curs, Tracking(VIEWS_NAME, last_position))
            curs.execute(f"NOTIFY {VIEWS_CHANNEL}, '{int(last_position)}'")

    @staticmethod
    def _load(curs: Any, table: str, columns: Sequence[str], ids: Iterable[UUID]) -> dict[UUID, dict[str, Any]]:
        ids = list(ids)
        if not ids:
            return {}
        curs.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE id = ANY(%s)", (ids,))
        return {row["id"]: dict(row) for row in curs.fetchall()}

    @staticmethod
    def _write(curs: Any, requests: Iterable[dict[str, Any]], payments: Iterable[dict[str, Any]], counts: dict[tuple[Any, ...], dict[str, int]]) -> None:
        request_rows = list(requests)
        curs.executemany(UPSERT_REQUEST, [[_sql_value(c, r[c]) for c in REQUEST_COLUMNS] for r in request_rows])
        payment_rows = [[_sql_value(c, p[c]) for c in PAYMENT_COLUMNS] for p in payments]
        if payment_rows:
            curs.executemany(UPSERT_PAYMENT, payment_rows)
        queued = [r for r in request_rows if is_in_work_queue(r)]
        if queued:
            curs.executemany(UPSERT_QUEUE, [
                [r["id"], r["organization"], r["reference"], r["service"], r["status"], r["submitted_at"],
                 r["due_at"], r["assigned_to"], _sql_value("action_required", r["action_required"])]
                for r in queued
            ])
        closed = [r["id"] for r in request_rows if not is_in_work_queue(r)]
        if closed:
            curs.execute("DELETE FROM work_queue WHERE request_id = ANY(%s)", (closed,))
        if counts:
            curs.executemany(ADD_COUNTS, [[*key, *(c[col] for col in COUNT_COLUMNS)] for key, c in counts.items()])

    def reset(self) -> None:
        """Empty every view and forget the position, so the next catch-up rebuilds from the start."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(f"TRUNCATE {', '.join(VIEW_TABLES)}")
            curs.execute(f"DELETE FROM {TRACKING_TABLE} WHERE application_name = %s", (VIEWS_NAME,))

    def checksum(self) -> dict[str, str]:
        """An md5 per view over its rows in key order: equal checksums mean equal contents."""
        keys = {"request_summaries": "id", "payments_view": "id", "work_queue": "request_id", "daily_counts": "organization, day, service"}
        result = {}
        with self.datastore.transaction(commit=False) as curs:
            for table, key in keys.items():
                curs.execute(f"SELECT count(*) AS n, coalesce(md5(string_agg(t::text, '|' ORDER BY {key})), '') AS h FROM {table} t")
                row = curs.fetchone()
                result[table] = f"{row['n']}:{row['h']}"
        return result
