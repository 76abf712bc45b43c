"""The read model over PostgreSQL with asyncpg: what the API serves, straight from the views."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any, Callable

import asyncpg

from application.ports import ReadModel
from application.presentation import payment_document, payment_summary, request_document
from infrastructure.eventstore.event_log import EVENTS_TABLE, stored_event_document
from infrastructure.json_codec import dumps_str, loads
from infrastructure.views.recorder import TRACKING_TABLE, VIEWS_CHANNEL, VIEWS_NAME

REQUEST_SELECT = (
    "SELECT id::text AS id, reference, service, organization, filed_at, channel, status, version, position,"
    " applicant_national_id, applicant_name, details, assigned_to, submitted_at, updated_at, due_at, outcome,"
    " result, action_required, payment_id::text AS payment_id, payment_amount_satang, payment_status, appointment_id::text AS appointment_id"
    " FROM request_summaries"
)


def _timestamp(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


class _Args(list):
    """A query's arguments; calling it with a value adds one and gives its placeholder."""

    def __call__(self, value: Any) -> str:
        self.append(value)
        return f"${len(self)}"


def _after(after: tuple[Any, ...] | None, time_column: str, id_column: str, arg: _Args, *, descending: bool = False) -> str:
    """The keyset condition (`` AND (time, id) > cursor``, ``<`` when the list runs newest first)
    for a cursor of a timestamp and a UUID; empty on the first page."""
    if after is None:
        return ""
    return f" AND ({time_column}, {id_column}) {'<' if descending else '>'} ({arg(_timestamp(after[0]))}::timestamptz, {arg(after[1])}::uuid)"


def request_from_row(row: asyncpg.Record) -> tuple[dict[str, Any], dict[str, Any]]:
    document = request_document(
        id=row["id"],
        reference=row["reference"],
        service=row["service"],
        organization=row["organization"],
        filed_at=row["filed_at"],
        channel=row["channel"],
        status=row["status"],
        version=row["version"],
        position=row["position"],
        applicant={"national_id": row["applicant_national_id"], "name": row["applicant_name"]},
        details=row["details"],
        assigned_to=row["assigned_to"],
        submitted_at=row["submitted_at"],
        updated_at=row["updated_at"],
        due_at=row["due_at"],
        outcome=row["outcome"],
        result=row["result"],
        action_required=row["action_required"],
        payment=payment_summary(row["payment_id"], row["payment_amount_satang"], row["payment_status"]),
        appointment_id=row.get("appointment_id"),
    )
    access = {
        "organization": row["organization"],
        "filed_at": row["filed_at"],
        "applicant_national_id": row["applicant_national_id"],
    }
    return document, access


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=dumps_str, decoder=loads, schema="pg_catalog")


class PostgresReadModel(ReadModel):
    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self.pool = pool
        self.dsn = dsn
        self._position = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._listener: asyncpg.Connection | None = None
        # Opens personal fields encrypted per person in event documents (a batch at a time; it
        # may read keys from the database, so it runs in a thread). Set by the composition root.
        self.reveal: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None

    async def _revealed(self, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.reveal is None or not documents:
            return documents
        return await asyncio.to_thread(self.reveal, documents)

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> PostgresReadModel:
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection)
        model = cls(pool, dsn)
        await model._listen()
        return model

    async def _listen(self) -> None:
        # The projector NOTIFYs its new position in the transaction that writes the views, so
        # waiting readers wake as soon as the views have it.
        try:
            self._listener = await asyncpg.connect(self.dsn)
            await self._listener.add_listener(VIEWS_CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError):
            self._listener = None

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._advance(int(payload))
        except ValueError:
            pass

    def _advance(self, position: int) -> None:
        if position <= self._position:
            return
        self._position = position
        still = []
        for wanted, future in self._waiters:
            if wanted <= position:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((wanted, future))
        self._waiters = still

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
        await self.pool.close()

    async def get_request(self, request_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        row = await self.pool.fetchrow(REQUEST_SELECT + " WHERE id = $1::uuid", request_id)
        return request_from_row(row) if row else None

    async def list_requests(self, filters: dict[str, Any], scope: dict[str, Any], limit: int, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        where: list[str] = ["true"]
        arg = _Args()
        for column in ("status", "service", "organization", "filed_at"):
            if filters.get(column) is not None:
                where.append(f"{column} = {arg(filters[column])}")
        # Applicants are found by the blind index of their national ID, which the API computes.
        if "applicant_index" in filters:
            where.append(f"applicant_index = {arg(filters['applicant_index'])}")
        if "applicant_index" in scope:
            where.append(f"applicant_index = {arg(scope['applicant_index'])}")
        if "org" in scope:
            org = arg(scope["org"])
            where.append(f"(organization = {org} OR filed_at = {org})")
        sql = REQUEST_SELECT + " WHERE " + " AND ".join(where) + _after(after, "submitted_at", "id", arg, descending=True)
        sql += f" ORDER BY submitted_at DESC, id DESC LIMIT {arg(limit)}"
        return [request_from_row(row)[0] for row in await self.pool.fetch(sql, *arg)]

    async def get_payment(self, payment_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        row = await self.pool.fetchrow(
            "SELECT p.id::text AS id, p.request_id::text AS request_id, p.reference, p.organization, p.amount_satang,"
            " p.status, p.promptpay_payload, p.expires_at, p.version, p.position, p.method, p.updated_at,"
            " p.discrepancies, p.notice_id::text AS notice_id, p.instalment, p.receipt,"
            " coalesce(r.filed_at, p.organization) AS filed_at, coalesce(r.applicant_national_id, n.owner_id) AS applicant_national_id"
            " FROM payments_view p LEFT JOIN request_summaries r ON r.id = p.request_id"
            " LEFT JOIN land_tax_notices n ON n.id = p.notice_id WHERE p.id = $1::uuid",
            payment_id,
        )
        if row is None:
            return None
        document = payment_document(**{k: row[k] for k in (
            "id", "request_id", "reference", "organization", "amount_satang", "status", "promptpay_payload",
            "expires_at", "version", "position", "method", "updated_at", "discrepancies", "notice_id", "instalment", "receipt")})
        access = {"organization": row["organization"], "filed_at": row["filed_at"], "applicant_national_id": row["applicant_national_id"]}
        return document, access

    async def request_history(self, request_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
        # Straight from the event log, not the views, so a history is never behind a write.
        sql = (
            f"SELECT notification_id, originator_id::text AS aggregate_id, originator_version, topic, state"
            f" FROM {EVENTS_TABLE} WHERE originator_id = ANY($1::uuid[]) ORDER BY notification_id"
        )
        events = await self._revealed([stored_event_document(row) for row in await self.pool.fetch(sql, [request_id])])
        if not events or events[0]["type"] != "ServiceRequest.Submitted":
            return None
        submitted = events[0]["data"]
        access = {
            "organization": submitted["organization"],
            "filed_at": submitted["filed_at"],
            "applicant_national_id": submitted["applicant"]["national_id"],
        }
        payment_ids = [e["data"]["payment_id"] for e in events if e["type"] == "ServiceRequest.FeeAssessed"]
        if payment_ids:
            events += await self._revealed([stored_event_document(row) for row in await self.pool.fetch(sql, payment_ids)])
            events.sort(key=lambda e: e["position"])
        return events, access

    async def payment_for_reference(self, reference: str) -> str | None:
        return await self.pool.fetchval(
            "SELECT id::text FROM payments_view WHERE reference = $1"
            " ORDER BY status = 'awaiting_payment' DESC, position DESC LIMIT 1", reference
        )

    async def list_jobs(self, status: str, organization: str | None, limit: int, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        statuses = ["failed"] if status == "failed" else ["pending", "running", "retrying"]
        arg = _Args([statuses, organization, limit])
        cursor = _after(after, "created_at", "id", arg)
        rows = await self.pool.fetch(
            "SELECT id::text AS id, kind, request_id::text AS request_id, payment_id::text AS payment_id, organization,"
            " status, attempts, last_error, run_at, created_at, updated_at FROM jobs"
            " WHERE status = ANY($1::text[]) AND ($2::text IS NULL OR organization = $2)" + cursor +
            " ORDER BY created_at, id LIMIT $3",
            *arg,
        )
        return [dict(row) for row in rows]

    async def work_queue(self, organization: str, limit: int, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        arg = _Args([organization, limit])
        cursor = _after(after, "submitted_at", "request_id", arg)
        rows = await self.pool.fetch(
            "SELECT request_id::text AS request_id, organization, reference, service, status, submitted_at, due_at,"
            " assigned_to, action_required FROM work_queue WHERE organization = $1" + cursor +
            " ORDER BY submitted_at, request_id LIMIT $2",
            *arg,
        )
        return [dict(row) for row in rows]

    async def daily_counts(self, organization: str | None, since: Any, until: Any) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT organization, day, service, submitted, approved, rejected, completed, withdrawn, paid_satang"
            " FROM daily_counts WHERE ($1::text IS NULL OR organization = $1) AND day >= $2 AND day <= $3"
            " ORDER BY day, organization, service",
            organization, since, until,
        )
        return [dict(row) for row in rows]

    async def views_position(self) -> int:
        value = await self.pool.fetchval(
            f"SELECT notification_id FROM {TRACKING_TABLE} WHERE application_name = $1", VIEWS_NAME
        )
        self._advance(value or 0)
        return value or 0

    async def wait_for_position(self, position: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._position >= position or await self.views_position() >= position:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((position, future))
            # Poll as well as listen, in case a notification was missed.
            try:
                await asyncio.wait_for(asyncio.shield(future), timeout=min(remaining, 0.25))
            except asyncio.TimeoutError:
                self._waiters = [(p, f) for p, f in self._waiters if f is not future]

    async def log_position(self) -> int:
        return await self.pool.fetchval(f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}")
