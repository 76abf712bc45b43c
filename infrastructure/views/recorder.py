"""The read-model tables and the recorder that writes them together with their tracking record.

Each batch of events is folded into the rows it touches and written in one transaction with
the tracking record, so a view is an exact function of the log and a restart never
double-applies an event.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime
from operator import itemgetter
from typing import Any, Callable, Iterable, Sequence
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.utils import get_topic
from psycopg.types.json import set_json_dumps

from application.appointment_views import APPOINTMENT_COLUMNS, fold_appointment
from application.projections import COUNT_COLUMNS, COUNTED, count_increments, fold_payment, fold_receipt, fold_request, is_in_work_queue
from domain.appointments import Appointment
from domain.data_subject import DataSubject
from domain.payment import Payment
from domain.receipt import Receipt
from domain.service_request import ServiceRequest
from infrastructure.eventstore.following import CONNECTION_ERRORS
from infrastructure.json_codec import dumps, dumps_str
from infrastructure.views.projection_failures import FAILURES_TABLE, describe_error, SCHEMA_STATEMENTS as FAILURES_SCHEMA, record as record_failure

log = logging.getLogger("onestop.views")
from infrastructure.land_tax import views as land_tax_views

VIEWS_NAME = "OneStop"
LAND_TAX_SERVICE = "local.land-building-tax"
VIEWS_CHANNEL = "onestop_views"
TRACKING_TABLE = "onestop_views_tracking"
# The name of these views in projection_failures.
FAILURES_VIEW = "views"
# Every transaction that writes the views takes this lock, so that a retry of set-aside events
# and the elected projector take turns.
WRITE_LOCK_KEY = 0x0E57_0011

REQUEST_COLUMNS = (
    "id", "reference", "service", "organization", "filed_at", "channel", "status", "version", "position",
    "applicant_national_id", "applicant_name", "details", "assigned_to", "submitted_at", "updated_at",
    "due_at", "outcome", "result", "action_required", "payment_id", "payment_amount_satang", "payment_status",
    "applicant_index",
    "appointment_id",
)
PAYMENT_COLUMNS = (
    "id", "request_id", "reference", "organization", "amount_satang", "status", "promptpay_payload",
    "expires_at", "version", "position", "method", "updated_at", "discrepancies", "notice_id", "instalment", "receipt",
)
RECEIPT_COLUMNS = (
    "id", "number", "organization", "fiscal_year", "sequence", "payment_id", "request_id", "reference", "payer", "items",
    "amount_satang", "method", "issued_at", "issued_on", "status", "void_reason", "voided_at", "version", "position",
)
JSON_COLUMNS = frozenset({"details", "result", "action_required", "discrepancies", "receipt", "payer", "items"})
VIEW_TABLES = ("request_summaries", "payments_view", "work_queue", "daily_counts", "appointments_view", "receipts_view",
               *land_tax_views.VIEW_TABLES)
SECONDARY_INDEXES = (
    "request_summaries_reference", "request_summaries_org", "request_summaries_filed", "request_summaries_applicant",
    "request_summaries_recent", "request_summaries_payment", "payments_view_reference", "work_queue_org",
    "appointments_view_org", "appointments_view_applicant", "appointments_view_open", "receipts_view_book", "receipts_view_day",
    *land_tax_views.SECONDARY_INDEXES,
    "request_summaries_applicant_index",
)

SCHEMA_STATEMENTS = [
    """CREATE TABLE IF NOT EXISTS request_summaries (
        id uuid PRIMARY KEY, reference text NOT NULL, service text NOT NULL, organization text NOT NULL,
        filed_at text NOT NULL, channel text NOT NULL, status text NOT NULL, version int NOT NULL,
        position bigint NOT NULL, applicant_national_id text NOT NULL, applicant_name text NOT NULL,
        details jsonb NOT NULL, assigned_to text, submitted_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL, due_at timestamptz NOT NULL, outcome text, result jsonb,
        action_required jsonb, payment_id uuid, payment_amount_satang bigint, payment_status text)""",
    # The keyed blind index of the applicant's national ID (infrastructure/privacy/keys.py): lists
    # by applicant filter on it, never on the plain ID.
    "ALTER TABLE request_summaries ADD COLUMN IF NOT EXISTS applicant_index text",
    # Added with counter appointments: the appointment a counter check-in started the request from.
    "ALTER TABLE request_summaries ADD COLUMN IF NOT EXISTS appointment_id uuid",
    "CREATE UNIQUE INDEX IF NOT EXISTS request_summaries_reference ON request_summaries (reference)",
    "CREATE INDEX IF NOT EXISTS request_summaries_applicant_index ON request_summaries (applicant_index, submitted_at DESC, id DESC)",
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
    # A payment of land-and-building tax belongs to a notice and has no request.
    "ALTER TABLE payments_view ADD COLUMN IF NOT EXISTS notice_id uuid",
    "ALTER TABLE payments_view ADD COLUMN IF NOT EXISTS instalment int",
    "ALTER TABLE payments_view ALTER COLUMN request_id DROP NOT NULL",
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
    """CREATE TABLE IF NOT EXISTS appointments_view (
        id uuid PRIMARY KEY, organization text NOT NULL, service text NOT NULL, starts_at timestamptz NOT NULL,
        ends_at timestamptz NOT NULL, status text NOT NULL, applicant_national_id text NOT NULL, applicant_name text NOT NULL,
        request_id uuid, reminded boolean NOT NULL, version int NOT NULL, position bigint NOT NULL,
        booked_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS appointments_view_org ON appointments_view (organization, service, starts_at, id)",
    "CREATE INDEX IF NOT EXISTS appointments_view_applicant ON appointments_view (applicant_national_id, starts_at, id)",
    "CREATE INDEX IF NOT EXISTS appointments_view_open ON appointments_view (starts_at) WHERE status = 'booked'",
    # Added with receipts: a database made before them gets the column here.
    "ALTER TABLE payments_view ADD COLUMN IF NOT EXISTS receipt jsonb",
    """CREATE TABLE IF NOT EXISTS receipts_view (
        id uuid PRIMARY KEY, number text NOT NULL, organization text NOT NULL, fiscal_year int NOT NULL,
        sequence int NOT NULL, payment_id uuid NOT NULL, request_id uuid, reference text NOT NULL, payer jsonb NOT NULL,
        items jsonb NOT NULL, amount_satang bigint NOT NULL, method text NOT NULL, issued_at timestamptz NOT NULL,
        issued_on date NOT NULL, status text NOT NULL, void_reason text, voided_at timestamptz, version int NOT NULL,
        position bigint NOT NULL)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS receipts_view_book ON receipts_view (organization, fiscal_year, sequence)",
    "CREATE INDEX IF NOT EXISTS receipts_view_day ON receipts_view (organization, issued_on, sequence)",
    *land_tax_views.SCHEMA_STATEMENTS,
]


COLUMN_TYPES = {
    "id": "uuid", "request_id": "uuid", "payment_id": "uuid", "notice_id": "uuid", "instalment": "int4", "appointment_id": "uuid",
    "version": "int4", "position": "int8",
    "amount_satang": "int8", "payment_amount_satang": "int8", "submitted_at": "timestamptz",
    "updated_at": "timestamptz", "due_at": "timestamptz", "expires_at": "timestamptz", "day": "date",
    "submitted": "int4", "approved": "int4", "rejected": "int4", "completed": "int4", "withdrawn": "int4",
    "paid_satang": "int8", "starts_at": "timestamptz", "ends_at": "timestamptz", "booked_at": "timestamptz",
    "reminded": "bool", "fiscal_year": "int4", "sequence": "int4", "issued_at": "timestamptz", "issued_on": "date",
    "voided_at": "timestamptz",
}


def _column_type(column: str) -> str:
    # JSON travels as text and is cast on the way in; everything else not listed is text.
    return COLUMN_TYPES.get(column, "text")


def _json_upsert(table: str, columns: Sequence[str], conflict: Sequence[str], update: str) -> str:
    """One statement for a whole batch: the rows arrive as one JSON array of objects keyed by
    column (one orjson encode in C; PostgreSQL reads each value as its column's type), so a
    batch costs one parameter, not an array per column, each of which psycopg dumps value by
    value in Python."""
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)}"
        f" FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {update}"
    )


def _replace_all(columns: Sequence[str], key: int = 1) -> str:
    return ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[key:])


QUEUE_COLUMNS = ("request_id", "organization", "reference", "service", "status", "submitted_at", "due_at", "assigned_to", "action_required")
# A work-queue row is read from its request's row: the request's id is its request_id.
QUEUE_FROM_REQUEST = ("id", *QUEUE_COLUMNS[1:])
COUNT_KEY = ("organization", "day", "service")
UPSERT_REQUESTS = _json_upsert("request_summaries", REQUEST_COLUMNS, ("id",), _replace_all(REQUEST_COLUMNS))
UPSERT_PAYMENTS = _json_upsert("payments_view", PAYMENT_COLUMNS, ("id",), _replace_all(PAYMENT_COLUMNS))
UPSERT_APPOINTMENTS = _json_upsert("appointments_view", APPOINTMENT_COLUMNS, ("id",), _replace_all(APPOINTMENT_COLUMNS))
UPSERT_RECEIPTS = _json_upsert("receipts_view", RECEIPT_COLUMNS, ("id",), _replace_all(RECEIPT_COLUMNS))
# The work queue's rows of a batch, copied from their requests' rows (written just before, in the
# same transaction) by PostgreSQL: Python sends their ids only.
UPSERT_QUEUE = (
    f"INSERT INTO work_queue ({', '.join(QUEUE_COLUMNS)}) SELECT {', '.join(QUEUE_FROM_REQUEST)} FROM request_summaries"
    f" WHERE id = ANY(%b::uuid[]) ON CONFLICT (request_id) DO UPDATE SET {_replace_all(QUEUE_COLUMNS)}"
)
ADD_COUNTS = _json_upsert(
    "daily_counts", (*COUNT_KEY, *COUNT_COLUMNS), COUNT_KEY,
    ", ".join(f"{c} = daily_counts.{c} + EXCLUDED.{c}" for c in COUNT_COLUMNS),
)


# What kind of view row an event's class folds into, learned once per class.
_REQUEST, _PAYMENT, _RECEIPT, _APPOINTMENT, _LAND_TAX, _NONE = "request", "payment", "receipt", "appointment", "land-tax", "none"
# The families whose rows are loaded and written by aggregate id, and the event that creates one.
_CREATED_BY = {_REQUEST: ServiceRequest.Submitted, _PAYMENT: Payment.Opened, _RECEIPT: Receipt.Issued, _APPOINTMENT: Appointment.Booked}
_family_of: dict[type, str] = {}
# Per event class: (family, whether it creates its aggregate's row, whether it names a request).
_plan_of: dict[type, tuple[str, bool, bool]] = {}
# Per event class: whether it can add to the daily counts (see count_increments).
_counts_of: dict[type, bool] = {}


def _learn_family(kind: type) -> str:
    for base, family in ((Appointment.Event, _APPOINTMENT), (ServiceRequest.Event, _REQUEST), (Payment.Event, _PAYMENT),
                         (Receipt.Event, _RECEIPT)):
        if issubclass(kind, base):
            break
    else:
        family = _LAND_TAX if issubclass(kind, land_tax_views.LAND_TAX_EVENTS) else _NONE
    _family_of[kind] = family
    _plan_of[kind] = (family, kind is _CREATED_BY.get(family), kind is Payment.Opened)
    _counts_of[kind] = kind in COUNTED or issubclass(kind, Payment.Received)
    return family


def _plan(kind: type) -> tuple[str, bool, bool]:
    plan = _plan_of.get(kind)
    if plan is None:
        _learn_family(kind)
        plan = _plan_of[kind]
    return plan


# The Python type a column's binary COPY dumper takes (JSON columns take any value).
_PYTHON_TYPES = {"uuid": UUID, "int4": int, "int8": int, "timestamptz": datetime, "date": date, "bool": bool, "text": str}


def _copy_types(columns: Sequence[str]) -> list[str]:
    return ["jsonb" if c in JSON_COLUMNS else _column_type(c) for c in columns]


def _copy_new(curs: Any, table: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> bool:
    """Write rows of aggregates created in this batch with a binary COPY: several times cheaper
    than an upsert. Returns False, having written nothing, when some value is not of the type
    its column's binary form takes (the upsert casts it); raises UniqueViolation when a row
    exists already."""
    types = _copy_types(columns)
    tuples = list(map(itemgetter(*columns), rows))
    for pg_type, values in zip(types, zip(*tuples)):
        wanted = _PYTHON_TYPES.get(pg_type)
        if wanted is not None and not set(map(type, values)) <= {wanted, type(None)}:
            return False
    # orjson's bytes as they are (no decoding to str and encoding again).
    set_json_dumps(dumps, context=curs)
    with curs.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in tuples:
            copy.write_row(row)
    return True


def _write_rows(curs: Any, table: str, columns: Sequence[str], upsert: str, rows: dict[Any, dict[str, Any]], new: set[Any],
                *, bulk: bool = True) -> None:
    """Write a batch's rows of one view: with ``bulk``, those created in the batch copied in and
    the others upserted; without, all upserted in one statement (a small batch, where a COPY's
    extra round trips cost more than it saves, and which may run in a pipeline). A row whose
    values are not all of their columns' types is upserted too, so COPY and upsert never
    disagree on what a row holds: the upsert is the one way any row can take."""
    if not bulk or not new:
        curs.execute(upsert, (dumps_str(list(rows.values())),))
        return
    fresh: list[dict[str, Any]] = []
    existing: list[dict[str, Any]] = []
    for key, r in rows.items():
        (fresh if key in new else existing).append(r)
    if fresh:
        # An erasure's purge refolds an aggregate from the whole log, so its row may exist
        # before the views reach its first event: then the batch's rows are upserted after all.
        curs.execute("SAVEPOINT copy_rows")
        try:
            copied = _copy_new(curs, table, columns, fresh)
        except psycopg.errors.UniqueViolation:
            curs.execute("ROLLBACK TO SAVEPOINT copy_rows")
            copied = False
        else:
            curs.execute("RELEASE SAVEPOINT copy_rows")
        if not copied:
            existing.extend(fresh)
    if existing:
        curs.execute(upsert, (dumps_str(existing),))


# Batches of at least this many events write the rows they create with a binary COPY; smaller
# ones (the live projector's) upsert every row, all statements in one pipeline.
BULK_EVENTS = 500
# National IDs whose blind index the recorder keeps (cleared when full).
INDEX_CACHE_SIZE = 10_000


class ViewsRecorder(PostgresTrackingRecorder):
    """Writes all OneStop views and their tracking record in one transaction per batch."""

    def __init__(self, datastore: PostgresDatastore, *, blind_index: Callable[[str], str] | None = None) -> None:
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)
        self.blind_index = blind_index
        # The blind index of the national IDs seen lately: a citizen files again and again, and
        # the keyed hash costs more than the rest of the request's fold.
        self._indexes: dict[str, str] = {}
        from psycopg.sql import SQL

        self.sql_create_statements.extend(SQL(s) for s in SCHEMA_STATEMENTS)  # type: ignore[arg-type]
        self.sql_create_statements.extend(SQL(s) for s in FAILURES_SCHEMA)  # type: ignore[arg-type]

    def position(self, curs: Any | None = None) -> int:
        """The views' position; with ``curs``, read in that cursor's transaction (no second
        connection from the pool, which may hold only one)."""
        if curs is not None:
            return self._max_tracking_id(VIEWS_NAME, curs) or 0
        return self.max_tracking_id(VIEWS_NAME) or 0

    def apply_batch(self, events: Sequence[tuple[Any, int]], last_position: int | None = None, topics: Sequence[str] | None = None) -> list[int]:
        """Fold ``(domain event, position)`` pairs, in log order, into the views, and move the
        tracking record to ``last_position`` (default: the last event's). An event the views
        cannot apply is set aside in ``projection_failures`` and the others are applied: when the
        batch fails as a whole, it is applied again one event at a time, each under a SAVEPOINT,
        to find the culprits. Returns the positions set aside."""
        if last_position is None:
            if not events:
                return []
            last_position = events[-1][1]
        if self._indexes and any(type(event) is DataSubject.Erased for event, _ in events):
            self._indexes.clear()  # the national IDs kept for their blind indexes: none outlives an erasure
        try:
            if len(events) >= BULK_EVENTS:
                with self.datastore.transaction(commit=True) as curs:
                    self._begin(curs)
                    self._fold_and_write(curs, events)
                    self._finish(curs, last_position)
            else:
                # A small batch (the live projector's): every statement in one pipeline, BEGIN
                # and COMMIT included, so it costs two round trips (reading the rows it
                # changes with the tracking record's answer, then the rest) instead of one a
                # statement.
                with self.datastore.get_connection() as conn, conn.pipeline(), conn.transaction():
                    curs = conn.cursor()
                    self._begin(curs)
                    # The tracking record goes first, and its answer is read with the rows'.
                    self._check_has_multi_row_tracking_table(curs)
                    tracking = conn.cursor()
                    tracking.execute(self.insert_tracking_statement, {"application_name": VIEWS_NAME, "notification_id": last_position},
                                     prepare=True)
                    self._fold_and_write(curs, events, bulk=False)
                    if self.datastore.single_row_tracking and tracking.fetchone() is None:
                        raise IntegrityError(f"Failed to record tracking for {VIEWS_NAME} {last_position}")
                    curs.execute(f"NOTIFY {VIEWS_CHANNEL}, '{int(last_position)}'")
            return []
        except CONNECTION_ERRORS:
            raise
        except Exception:
            return self._apply_one_by_one(events, last_position, topics)

    @staticmethod
    def _begin(curs: Any) -> None:
        # Views are derived: if the server crashes before this commit reaches disk, the rows
        # and the tracking record are lost together and the batch is applied again. One
        # statement: SET LOCAL, then the write lock.
        curs.execute("SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))

    def _finish(self, curs: Any, last_position: int) -> None:
        self._insert_tracking(curs, Tracking(VIEWS_NAME, last_position))
        curs.execute(f"NOTIFY {VIEWS_CHANNEL}, '{int(last_position)}'")

    def _apply_one_by_one(self, events: Sequence[tuple[Any, int]], last_position: int, topics: Sequence[str] | None) -> list[int]:
        set_aside = []
        with self.datastore.transaction(commit=True) as curs:
            self._begin(curs)
            for i, (event, position) in enumerate(events):
                curs.execute("SAVEPOINT one_event")
                try:
                    self._fold_and_write(curs, [(event, position)], bulk=False)
                except CONNECTION_ERRORS:
                    raise
                except Exception as error:
                    curs.execute("ROLLBACK TO SAVEPOINT one_event")
                    topic = topics[i] if topics is not None else get_topic(type(event))
                    log.error("views: setting aside the event at position %d (%s): %s", position, topic, describe_error(error))
                    record_failure(curs, FAILURES_VIEW, position, topic, error)
                    set_aside.append(position)
                else:
                    curs.execute("RELEASE SAVEPOINT one_event")
            self._finish(curs, last_position)
        return set_aside

    def set_aside(self, curs: Any, position: int, topic: str, error: BaseException) -> None:
        """Record an event that could not even be read back from the log (in ``curs``'s transaction)."""
        log.error("views: setting aside the event at position %d (%s): %s", position, topic, describe_error(error))
        record_failure(curs, FAILURES_VIEW, position, topic, error)

    def _fold_and_write(self, curs: Any, events: Sequence[tuple[Any, int]], counted: set[int] | None = None, *, bulk: bool = True) -> None:
        """Fold ``events`` into the rows they touch and write them. With ``counted``, only the
        events at those positions add to the daily counts (the others were counted before).
        With ``bulk``, the rows of aggregates the batch creates are copied in (see _write_rows)."""
        # One pass over the batch, by a table per event class: which aggregates of each family
        # it touches, and which it creates (their rows start here, so they are not loaded, and
        # may be copied in rather than upserted). Aggregates are keyed by their id's integer:
        # a UUID's hash is computed in Python, an int's is not.
        touched: dict[str, dict[int, UUID]] = {_REQUEST: {}, _PAYMENT: {}, _RECEIPT: {}, _APPOINTMENT: {}}
        created: dict[str, set[int]] = {_REQUEST: set(), _PAYMENT: set(), _RECEIPT: set(), _APPOINTMENT: set()}
        plan_of = _plan_of
        request_ids = touched[_REQUEST]
        for event, _ in events:
            kind = type(event)
            plan = plan_of.get(kind)
            if plan is None:
                plan = _plan(kind)
            ids = touched.get(plan[0])
            if ids is None:
                continue
            aggregate_id = event.originator_id
            ids[aggregate_id.int] = aggregate_id
            if plan[1]:
                created[plan[0]].add(aggregate_id.int)
                if plan[2] and event.request_id is not None:
                    request_ids[event.request_id.int] = event.request_id
        filed, opened, issued, booked = created[_REQUEST], created[_PAYMENT], created[_RECEIPT], created[_APPOINTMENT]
        # Load only the rows of aggregates created before this batch: the others start here.
        # Every query is sent before any answer is read (one round trip in a pipeline); the
        # requests of the payments loaded are read with them.
        payments, requests, receipts, appointments = self._load_rows(
            curs, *([i for k, i in touched[family].items() if k not in created[family]] for family in (_PAYMENT, _REQUEST, _RECEIPT, _APPOINTMENT)))
        counts: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNT_COLUMNS, 0))
        land_tax: list[tuple[Any, int]] = []
        family_of = _family_of
        counts_of = _counts_of
        for event, position in events:
            kind = type(event)
            family = family_of[kind]
            if family is _REQUEST:
                key = event.originator_id.int
                row = requests[key] = fold_request(requests.get(key), event, position)
                organization, service = row["organization"], row["service"]
            elif family is _PAYMENT:
                key = event.originator_id.int
                payment = payments[key] = fold_payment(payments.get(key), event, position)
                if payment["request_id"] is None:  # land-and-building tax, paid on a notice
                    organization, service = payment["organization"], LAND_TAX_SERVICE
                else:
                    row = requests[payment["request_id"].int]
                    row["payment_status"] = payment["status"]
                    organization, service = row["organization"], row["service"]
            elif family is _APPOINTMENT:
                key = event.originator_id.int
                appointments[key] = fold_appointment(appointments.get(key), event, position)
                continue
            elif family is _RECEIPT:
                key = event.originator_id.int
                receipts[key] = fold_receipt(receipts.get(key), event, position)
                continue
            elif family is _LAND_TAX:
                land_tax.append((event, position))
                continue
            else:
                continue
            if not counts_of[kind] or (counted is not None and position not in counted):
                continue
            increment = count_increments(event, organization, service)
            if increment is not None:
                key, column, amount = increment
                counts[key][column] += amount
        for request_id in filed:
            row = requests[request_id]
            row["applicant_index"] = self._index(row["applicant_national_id"])
        self._write(curs, requests, filed, payments, opened, counts, bulk)
        if land_tax:
            land_tax_views.apply_land_tax(curs, land_tax)
        if appointments:
            _write_rows(curs, "appointments_view", APPOINTMENT_COLUMNS, UPSERT_APPOINTMENTS, appointments, booked, bulk=bulk)
        if receipts:
            _write_rows(curs, "receipts_view", RECEIPT_COLUMNS, UPSERT_RECEIPTS, receipts, issued, bulk=bulk)

    def _index(self, national_id: Any) -> str | None:
        # An erased applicant's ID reads "[erased]": no index, so no list finds the request.
        if self.blind_index is None or not isinstance(national_id, str) or not national_id.isdigit():
            return None
        index = self._indexes.get(national_id)
        if index is None:
            if len(self._indexes) >= INDEX_CACHE_SIZE:
                self._indexes.clear()
            index = self._indexes[national_id] = self.blind_index(national_id)
        return index

    def lock_for_writing(self, curs: Any) -> None:
        """Take the views' write lock for ``curs``'s transaction (the projector waits meanwhile)."""
        self._begin(curs)

    def refold(self, curs: Any, events: Sequence[tuple[Any, int]], counted: Iterable[int] = ()) -> None:
        """Compute the rows of the aggregates of ``events`` again from all their events (given in
        log order, up to the views' position): their rows are replaced; only the events at
        ``counted`` positions (set aside until now) add to the daily counts. Erasure uses it
        with none counted: the rows become what a rebuild would make of them."""
        counted = set(counted)
        request_ids = [e.originator_id for e, _ in events if isinstance(e, ServiceRequest.Event)]
        payment_ids = [e.originator_id for e, _ in events if isinstance(e, Payment.Event)]
        receipt_ids = [e.originator_id for e, _ in events if isinstance(e, Receipt.Event)]
        curs.execute("DELETE FROM receipts_view WHERE id = ANY(%s)", (receipt_ids,))
        curs.execute("DELETE FROM request_summaries WHERE id = ANY(%s)", (request_ids,))
        curs.execute("DELETE FROM work_queue WHERE request_id = ANY(%s)", (request_ids,))
        curs.execute("DELETE FROM payments_view WHERE id = ANY(%s)", (payment_ids,))
        curs.execute("DELETE FROM appointments_view WHERE id = ANY(%s)", ([e.originator_id for e, _ in events if isinstance(e, Appointment.Event)],))
        self._fold_and_write(curs, events, counted)

    @staticmethod
    def _load_rows(curs: Any, payment_ids: list[UUID], request_ids: list[UUID], receipt_ids: list[UUID],
                   appointment_ids: list[UUID]) -> list[dict[int, dict[str, Any]]]:
        """The rows of these payments, requests (and the requests of those payments), receipts
        and appointments, by their id's integer: every query sent before any answer is read."""
        queries = []
        if payment_ids:
            queries.append((f"SELECT {', '.join(PAYMENT_COLUMNS)} FROM payments_view WHERE id = ANY(%s)", (payment_ids,)))
        else:
            queries.append(None)
        if payment_ids:
            queries.append((f"SELECT {', '.join(REQUEST_COLUMNS)} FROM request_summaries"
                            f" WHERE id = ANY(%s) OR id IN (SELECT request_id FROM payments_view WHERE id = ANY(%s))",
                            (request_ids, payment_ids)))
        elif request_ids:
            queries.append((f"SELECT {', '.join(REQUEST_COLUMNS)} FROM request_summaries WHERE id = ANY(%s)", (request_ids,)))
        else:
            queries.append(None)
        for table, columns, ids in (("receipts_view", RECEIPT_COLUMNS, receipt_ids), ("appointments_view", APPOINTMENT_COLUMNS, appointment_ids)):
            queries.append((f"SELECT {', '.join(columns)} FROM {table} WHERE id = ANY(%s)", (ids,)) if ids else None)
        cursors = []
        for query in queries:
            if query is None:
                cursors.append(None)
            else:
                reader = curs.connection.cursor()
                reader.execute(*query)
                cursors.append(reader)
        loaded = []
        for reader in cursors:
            if reader is None:
                loaded.append({})
            else:
                loaded.append({row["id"].int: dict(row) for row in reader.fetchall()})
                reader.close()
        return loaded

    @staticmethod
    def _write(curs: Any, requests: dict[int, dict[str, Any]], filed: set[int], payments: dict[int, dict[str, Any]],
               opened: set[int], counts: dict[tuple[Any, ...], dict[str, int]], bulk: bool = True) -> None:
        if requests:
            _write_rows(curs, "request_summaries", REQUEST_COLUMNS, UPSERT_REQUESTS, requests, filed, bulk=bulk)
        if payments:
            _write_rows(curs, "payments_view", PAYMENT_COLUMNS, UPSERT_PAYMENTS, payments, opened, bulk=bulk)
        queued, closed = [], []
        for r in requests.values():
            (queued if is_in_work_queue(r) else closed).append(r["id"])
        if queued:
            curs.execute(UPSERT_QUEUE, (queued,))
        if closed:
            curs.execute("DELETE FROM work_queue WHERE request_id = ANY(%s)", (closed,))
        if counts:
            rows = [dict(zip(COUNT_KEY, key)) | c for key, c in counts.items()]
            curs.execute(ADD_COUNTS, (dumps_str(rows),))

    def reset(self, *, drop_indexes: bool = False) -> None:
        """Empty every view and forget the position, so the next catch-up rebuilds from the start.
        With ``drop_indexes`` the secondary indexes go too (loading is several times faster
        without them); `restore_indexes` builds them again afterwards."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(f"TRUNCATE {', '.join(VIEW_TABLES)}")
            curs.execute(f"DELETE FROM {TRACKING_TABLE} WHERE application_name = %s", (VIEWS_NAME,))
            # A rebuild applies every event again, and sets aside again those that still fail.
            curs.execute(f"DELETE FROM {FAILURES_TABLE} WHERE view = %s", (FAILURES_VIEW,))
            if drop_indexes:
                for name in SECONDARY_INDEXES:
                    curs.execute(f"DROP INDEX IF EXISTS {name}")

    def restore_indexes(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for statement in SCHEMA_STATEMENTS:
                if "INDEX" in statement:
                    curs.execute(statement)

    def checksum(self) -> dict[str, str]:
        """An md5 per view over its rows in key order: equal checksums mean equal contents."""
        keys = {"request_summaries": "id", "payments_view": "id", "work_queue": "request_id", "daily_counts": "organization, day, service",
                "appointments_view": "id", "receipts_view": "id", **land_tax_views.CHECKSUM_KEYS}
        result = {}
        with self.datastore.transaction(commit=False) as curs:
            for table, key in keys.items():
                curs.execute(f"SELECT count(*) AS n, coalesce(md5(string_agg(t::text, '|' ORDER BY {key})), '') AS h FROM {table} t")
                row = curs.fetchone()
                result[table] = f"{row['n']}:{row['h']}"
        return result
