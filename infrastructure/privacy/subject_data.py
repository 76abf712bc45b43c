"""What OneStop holds about a person, read from PostgreSQL: whose data an aggregate holds, and
the data sources of access and portability requests (requests, payments, their events).

Requests and payments are found through the views (indexed by the applicant's national ID);
each source reads with a server-side cursor in one read-only snapshot, so memory stays constant
however long a person's history is.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import asyncpg

from application.ports import SubjectDataSource, SubjectLookup
from application.presentation import payment_document
from infrastructure.json_codec import loads
from infrastructure.eventstore.event_log import EVENTS_TABLE, plain, stored_event_document
from infrastructure.views.read_models import REQUEST_SELECT, request_from_row

BATCH = 500
_PAYMENT_COLUMNS = (
    "id", "request_id", "reference", "organization", "amount_satang", "status", "promptpay_payload",
    "expires_at", "version", "position", "method", "updated_at", "discrepancies",
)
# The ids of a person's requests and of their payments.
_AGGREGATES_OF = (
    "SELECT id FROM request_summaries WHERE applicant_national_id = $1"
    " UNION ALL SELECT p.id FROM payments_view p JOIN request_summaries r ON r.id = p.request_id WHERE r.applicant_national_id = $1"
)


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
    sql = ""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def document(self, row: asyncpg.Record) -> dict[str, Any]:
        raise NotImplementedError

    async def records(self, national_id: str) -> AsyncIterator[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                cursor = await conn.cursor(self.sql, national_id)
                while rows := await cursor.fetch(BATCH):
                    for row in rows:
                        yield self.document(row)


class RequestsSource(_CursorSource):
    """The person's requests, as the API shows them, oldest first."""

    name = "requests"
    sql = REQUEST_SELECT + " WHERE applicant_national_id = $1 ORDER BY submitted_at, id"

    def document(self, row: asyncpg.Record) -> dict[str, Any]:
        return request_from_row(row)[0]


class PaymentsSource(_CursorSource):
    """The payments of the person's requests."""

    name = "payments"
    sql = ("SELECT p.id::text AS id, p.request_id::text AS request_id, p.reference, p.organization, p.amount_satang,"
           " p.status, p.promptpay_payload, p.expires_at, p.version, p.position, p.method, p.updated_at, p.discrepancies"
           " FROM payments_view p JOIN request_summaries r ON r.id = p.request_id"
           " WHERE r.applicant_national_id = $1 ORDER BY p.position, p.id")

    def document(self, row: asyncpg.Record) -> dict[str, Any]:
        return payment_document(**{k: row[k] for k in _PAYMENT_COLUMNS})


class EventsSource(_CursorSource):
    """Every stored event of the person's requests and payments, in log order, as stored."""

    name = "events"
    sql = (f"SELECT notification_id, originator_id::text AS aggregate_id, originator_version, topic, state"
           f" FROM {EVENTS_TABLE} WHERE originator_id IN ({_AGGREGATES_OF}) ORDER BY notification_id")

    def document(self, row: asyncpg.Record) -> dict[str, Any]:
        return stored_event_document(row)
