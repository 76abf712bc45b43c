"""What OneStop holds about a person, read from PostgreSQL: whose data an aggregate holds, and
the data sources of access and portability requests: requests, payments, the allowance register
with the person's disbursement lines, land-and-building tax notices, receipts, counter
appointments, and the stored events of all of them.

A person's records are found two ways, and each source takes both: through the views, by the
national ID they hold (records stored plain, before per-person encryption or with it off); and
through the keyed blind index, by the aggregates stored under the person's keys
(``subject_aggregates`` of their ``subject_keys``), which still finds them once they are erased
and the views read ``"[erased]"``. Each source reads with a server-side cursor in one read-only
snapshot, so memory stays constant however long a person's history is.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable, Sequence

import asyncpg

from application.appointment_views import APPOINTMENT_COLUMNS, appointment_from_row
from application.erasure import data_subject_id
from application.land_tax import notice_document
from application.ports import SubjectDataSource, SubjectLookup
from application.presentation import payment_document, receipt_document
from domain.allowance import DisbursementBatch
from domain.calendar import bangkok_day
from infrastructure.allowance.register import RECIPIENT_SELECT, recipient_item
from infrastructure.json_codec import loads
from infrastructure.eventstore.event_log import EVENTS_TABLE, event_type, plain, stored_event_document
from infrastructure.land_tax.views import NOTICE_SELECT
from infrastructure.money_trail.queries import RECEIPT_SELECT
from infrastructure.privacy.keys import SUBJECT_AGGREGATES, SUBJECT_ELEMENTS, SUBJECT_KEYS
from infrastructure.views.read_models import REQUEST_SELECT, request_from_row

BATCH = 500
BATCH_EVENTS = 4  # disbursement batch events read at a time (each up to a few hundred kilobytes)
PENDING = "pending"  # a disbursement line the bank has not answered yet
_PAYMENT_COLUMNS = (
    "id", "request_id", "reference", "organization", "amount_satang", "status", "promptpay_payload",
    "expires_at", "version", "position", "method", "updated_at", "discrepancies", "notice_id", "instalment",
)
Reveal = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]

# In every query below, $1 is the person's national ID and $2 its keyed blind index.
# The aggregates stored under the person's keys (live or erased).
_KEYED = (f"SELECT sa.aggregate_id FROM {SUBJECT_AGGREGATES} sa JOIN {SUBJECT_KEYS} sk ON sk.subject_id = sa.subject_id"
          f" WHERE sk.blind_index = $2"
          f" UNION SELECT aggregate_id FROM {SUBJECT_KEYS} WHERE blind_index = $2 AND aggregate_id IS NOT NULL")
# The batches (disbursement batches, tax rolls) holding elements under the person's keys.
_BATCHES = (f"SELECT DISTINCT se.aggregate_id FROM {SUBJECT_ELEMENTS} se JOIN {SUBJECT_KEYS} sk ON sk.subject_id = se.subject_id"
            f" WHERE sk.blind_index = $2")
# What the views name the person in, by national ID.
_PLAIN_REQUESTS = "SELECT id FROM request_summaries WHERE applicant_national_id = $1"
_PLAIN_PAYMENTS = (
    "SELECT p.id FROM payments_view p JOIN request_summaries r ON r.id = p.request_id WHERE r.applicant_national_id = $1"
    " UNION SELECT p.id FROM payments_view p JOIN land_tax_notices n ON n.id = p.notice_id WHERE n.owner_id = $1"
)
_PLAIN_RECIPIENTS = "SELECT id FROM allowance_recipients WHERE national_id = $1"
_PLAIN_NOTICES = "SELECT id FROM land_tax_notices WHERE owner_id = $1"
_PLAIN_RECEIPTS = f"SELECT id FROM receipts_view WHERE payment_id IN ({_PLAIN_PAYMENTS})"
_PLAIN_APPOINTMENTS = "SELECT id FROM appointments_view WHERE applicant_national_id = $1"


def _of(*plain_ids: str) -> str:
    """The ids of the person's aggregates: what the views name them in, and what their keys hold."""
    return " UNION ".join((*plain_ids, _KEYED))


class PostgresSubjectLookup(SubjectLookup):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def national_ids(self, aggregate_ids: list[str]) -> dict[str, str]:
        rows = await self.pool.fetch(
            "SELECT id::text AS id, applicant_national_id FROM request_summaries WHERE id = ANY($1::uuid[])"
            " UNION ALL SELECT p.id::text, r.applicant_national_id FROM payments_view p JOIN request_summaries r ON r.id = p.request_id"
            " WHERE p.id = ANY($1::uuid[])",
            aggregate_ids,
        )
        found = {r["id"]: r["applicant_national_id"] for r in rows}
        missing = [a for a in aggregate_ids if a not in found]
        if missing:
            # Not in the views yet: the first event of a request names its applicant; a
            # payment's names its request.
            found.update(await self._from_the_log(missing))
        return found

    async def _from_the_log(self, aggregate_ids: list[str]) -> dict[str, str]:
        sql = (f"SELECT originator_id::text AS id, topic, state FROM {EVENTS_TABLE}"
               f" WHERE originator_id = ANY($1::uuid[]) AND originator_version = 1")
        found: dict[str, str] = {}
        payment_requests: dict[str, str] = {}
        for row in await self.pool.fetch(sql, aggregate_ids):
            state = plain(loads(row["state"]))
            if row["topic"].endswith(":ServiceRequest.Submitted"):
                found[row["id"]] = state["applicant"]["national_id"]
            elif row["topic"].endswith(":Payment.Opened") and state.get("request_id") is not None:
                # (A land-tax payment has no request: its notice's owner is not a requester.)
                payment_requests[row["id"]] = str(state["request_id"])
        if payment_requests:
            requests = await self.national_ids(sorted(set(payment_requests.values())))
            found.update({p: requests[r] for p, r in payment_requests.items() if r in requests})
        return found


class _CursorSource(SubjectDataSource):
    """A section read with a server-side cursor; ``sql`` takes the national ID ($1) and its
    blind index ($2)."""

    sql = ""

    def __init__(self, pool: asyncpg.Pool, index: Callable[[str], str]) -> None:
        self.pool = pool
        self.index = index

    def document(self, row: asyncpg.Record) -> dict[str, Any]:
        raise NotImplementedError

    def arguments(self, national_id: str) -> tuple[Any, ...]:
        return national_id, self.index(national_id)

    async def records(self, national_id: str) -> AsyncIterator[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                cursor = await conn.cursor(self.sql, *self.arguments(national_id))
                while rows := await cursor.fetch(BATCH):
                    for row in rows:
                        yield self.document(row)


class RequestsSource(_CursorSource):
    """The person's requests, as the API shows them, oldest first."""

    name = "requests"
    sql = REQUEST_SELECT + f" WHERE id IN ({_of(_PLAIN_REQUESTS)}) ORDER BY submitted_at, id"

    def document(self, row: asyncpg.Record) -> dict[str, Any]:
        return request_from_row(row)[0]


_PAYMENT_SELECT = ("SELECT id::text AS id, request_id::text AS request_id, reference, organization, amount_satang, status, promptpay_payload,"
                   " expires_at, version, position, method, updated_at, discrepancies, notice_id::text AS notice_id, instalment FROM payments_view")


class PaymentsSource(_CursorSource):
    """The payments of the person's requests and of their tax notices."""

    name = "payments"
    sql = _PAYMENT_SELECT + f" WHERE id IN ({_of(_PLAIN_PAYMENTS)}) ORDER BY position, id"

    def document(self, row: asyncpg.Record) -> dict[str, Any]:
        return payment_document(**{k: row[k] for k in _PAYMENT_COLUMNS})


class AllowancesSource(_CursorSource):
    """The person's rows on the allowance registers (as the register shows them: the payout
    account masked), each with the person's disbursement lines (``disbursements``: month, value
    date, amounts, payout kind, the bank's status and reason), in month order.

    The lines are read from the disbursement batches that hold an element of the person
    (``subject_elements``: every batch written with per-person encryption), opened with
    ``reveal`` (the personal-data revealer of stored event documents), which reads the bank's
    reason, ``"[erased]"`` once the person is erased."""

    name = "allowances"
    sql = RECIPIENT_SELECT + f" WHERE id IN ({_of(_PLAIN_RECIPIENTS)}) ORDER BY organization, id"
    _batch_events = (
        f"SELECT notification_id, originator_id::text AS aggregate_id, originator_version, topic, state FROM {EVENTS_TABLE}"
        f" WHERE originator_id IN ({_BATCHES}) AND topic = ANY($1::text[]) ORDER BY originator_id, originator_version"
    )

    def __init__(self, pool: asyncpg.Pool, index: Callable[[str], str], reveal: Reveal | None = None) -> None:
        super().__init__(pool, index)
        self.reveal = reveal

    async def records(self, national_id: str) -> AsyncIterator[dict[str, Any]]:
        index = self.index(national_id)
        async with self.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                # A person is on a register once per organisation: a handful of rows.
                recipients = {row["id"]: {**recipient_item(row), "disbursements": []}
                              for row in await conn.fetch(self.sql, national_id, index)}
                if recipients:
                    topics = [DisbursementBatch.Prepared.TOPIC, DisbursementBatch.Settled.TOPIC]
                    cursor = await conn.cursor(self._batch_events, topics, index)
                    batch: list[dict[str, Any]] = []
                    while rows := await cursor.fetch(BATCH_EVENTS):
                        for row in rows:
                            document = _only_lines_of(stored_event_document(row), recipients)
                            if batch and batch[0]["aggregate_id"] != document["aggregate_id"]:
                                await self._add_lines(batch, recipients)
                                batch = []
                            batch.append(document)
                    if batch:
                        await self._add_lines(batch, recipients)
        for recipient in recipients.values():
            recipient["disbursements"].sort(key=lambda line: (line["month"], line["attempt"], line["batch_id"]))
            yield recipient

    async def _add_lines(self, documents: list[dict[str, Any]], recipients: dict[str, dict[str, Any]]) -> None:
        """The person's lines of one batch (its Prepared event, and its Settled one once the bank
        answered), added to their recipients' ``disbursements``."""
        if self.reveal is not None:
            documents = await asyncio.to_thread(self.reveal, documents)
        prepared = next((d for d in documents if d["type"] == "DisbursementBatch.Prepared"), None)
        if prepared is None:
            return
        settled = next((d for d in documents if d["type"] == "DisbursementBatch.Settled"), None)
        answers = {r[0]: r for r in (settled["data"].get("results") or [])} if settled is not None else {}
        batch = prepared["data"]
        for line in batch.get("lines") or []:
            answer = answers.get(line[0])
            recipients[line[0]]["disbursements"].append({
                "batch_id": prepared["aggregate_id"], "run_id": batch.get("run_id"), "month": batch.get("month"),
                "value_date": batch.get("value_date"), "attempt": batch.get("attempt"), "band_satang": line[2], "amount_satang": line[3],
                "payout_kind": line[4], "status": answer[1] if answer else PENDING, "reason": (answer[2] or None) if answer else None,
                "transfer_id": answer[3] if answer else None,
            })


def _only_lines_of(document: dict[str, Any], recipients: dict[str, Any]) -> dict[str, Any]:
    """A batch event's document with only the lines and results of these recipients (the
    recipient id, their first position, is plain): the others' are neither opened nor shown."""
    data = document["data"]
    for field in ("lines", "results"):
        if isinstance(data.get(field), list):
            data[field] = [e for e in data[field] if isinstance(e, list) and e and e[0] in recipients]
    return document


class TaxNoticesSource(_CursorSource):
    """The person's land-and-building tax notices, as the API shows them today (instalments and
    status as of today, the amount due with surcharge and interest), each with its payments."""

    name = "tax_notices"
    sql = NOTICE_SELECT + f" WHERE id IN ({_of(_PLAIN_NOTICES)}) ORDER BY tax_year, organization, id"
    _payments = ("SELECT notice_id::text AS notice_id, id::text AS id, instalment, reference, amount_satang, status, method, updated_at"
                 f" FROM payments_view WHERE notice_id IS NOT NULL AND id IN ({_of(_PLAIN_PAYMENTS)}) ORDER BY position, id")

    async def records(self, national_id: str) -> AsyncIterator[dict[str, Any]]:
        index = self.index(national_id)
        today = bangkok_day(datetime.now(timezone.utc))
        async with self.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                payments: dict[str, list[dict[str, Any]]] = {}
                for row in await conn.fetch(self._payments, national_id, index):  # a person's payments: few
                    payments.setdefault(row["notice_id"], []).append({k: row[k] for k in row.keys() if k != "notice_id"})
                cursor = await conn.cursor(self.sql, national_id, index)
                while rows := await cursor.fetch(BATCH):
                    for row in rows:
                        yield {**notice_document(dict(row), today, with_amount_due=True), "payments": payments.get(row["id"], [])}


class ReceiptsSource(_CursorSource):
    """The receipts of the person's payments (of requests and of tax notices)."""

    name = "receipts"
    sql = RECEIPT_SELECT + f" WHERE id IN ({_of(_PLAIN_RECEIPTS)}) ORDER BY issued_at, id"

    def document(self, row: asyncpg.Record) -> dict[str, Any]:
        return receipt_document(**dict(row))


class AppointmentsSource(_CursorSource):
    """The person's counter appointments, by start time."""

    name = "appointments"
    sql = (f"SELECT {', '.join(APPOINTMENT_COLUMNS)} FROM appointments_view WHERE id IN ({_of(_PLAIN_APPOINTMENTS)})"
           f" ORDER BY starts_at, id")

    def document(self, row: asyncpg.Record) -> dict[str, Any]:
        return appointment_from_row(row)[0]


_EVENT_COLUMNS = "notification_id, originator_id::text AS aggregate_id, originator_version, topic"


class EventsSource(_CursorSource):
    """Every stored event of the person's aggregates (requests, payments, allowance recipients,
    tax notices, appointments, receipts, and the record of their erasure), in log order, as
    stored; and, by reference only (position, aggregate, version, type, ``"by_reference": true``),
    the batch events (disbursement batches, the tax roll) that hold an element of theirs among
    other people's."""

    name = "events"
    sql = (
        f"SELECT {_EVENT_COLUMNS}, state FROM {EVENTS_TABLE} WHERE originator_id IN"
        f" ({_of(_PLAIN_REQUESTS, _PLAIN_PAYMENTS, _PLAIN_RECIPIENTS, _PLAIN_NOTICES, _PLAIN_RECEIPTS, _PLAIN_APPOINTMENTS)} UNION SELECT $3::uuid)"
        f" UNION ALL SELECT {_EVENT_COLUMNS}, NULL FROM {EVENTS_TABLE} e WHERE originator_id IN ({_BATCHES})"
        # The events of the batch that hold one of the person's elements name one of their key sets.
        f" AND EXISTS (SELECT 1 FROM {SUBJECT_KEYS} sk WHERE sk.blind_index = $2 AND position(convert_to(sk.subject_id::text, 'UTF8') IN e.state) > 0)"
        f" ORDER BY notification_id"
    )

    def arguments(self, national_id: str) -> tuple[Any, ...]:
        index = self.index(national_id)
        return national_id, index, data_subject_id(index)

    def document(self, row: asyncpg.Record) -> dict[str, Any]:
        if row["state"] is None:
            return {"position": row["notification_id"], "aggregate_id": row["aggregate_id"], "version": row["originator_version"],
                    "type": event_type(row["topic"]), "by_reference": True}
        return stored_event_document(row)


def subject_sources(pool: asyncpg.Pool, index: Callable[[str], str], reveal: Reveal | None) -> Sequence[SubjectDataSource]:
    """Every source of an export, in the order of its sections."""
    return [RequestsSource(pool, index), PaymentsSource(pool, index), AllowancesSource(pool, index, reveal), TaxNoticesSource(pool, index),
            ReceiptsSource(pool, index), AppointmentsSource(pool, index), EventsSource(pool, index)]
