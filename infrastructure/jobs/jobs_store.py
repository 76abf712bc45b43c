"""The jobs table: operational state of outside work (attempts, last error), for the workers'
bookkeeping and for officers' `GET /v1/jobs`. The log stays the source of truth: the dispatcher
creates rows from events, and a failure that officers must act on is also an event."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore

from application.jobs import Job
from application.ports import JobsLedger

SCHEMA_STATEMENTS = [
    """CREATE TABLE IF NOT EXISTS jobs (
        id uuid PRIMARY KEY, kind text NOT NULL, request_id uuid, payment_id uuid, organization text,
        status text NOT NULL DEFAULT 'pending', attempts int NOT NULL DEFAULT 0, last_error text,
        run_at timestamptz, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, organization, created_at)",
]


class JobsStore(JobsLedger):
    """A job's row is written once when it goes well: the dispatcher records the jobs it sent a
    moment after sending them (infrastructure.jobs.dispatcher), by which time a worker has
    usually inserted the row already, done, with what its message told it (organisation, time
    sent); the dispatcher's insert then finds the row complete and writes nothing. A job still
    running when the dispatcher records it is inserted pending and updated once by the worker."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    def record_dispatched(self, curs: Any, jobs: list[tuple[Job, str | None]], sent_at: dict[UUID, datetime] | None = None) -> None:
        """New jobs are pending; a retried job becomes pending again (inside the caller's tx).
        A row a worker wrote first is left as it is, unless it lacks what only the dispatcher
        knows (its organisation, its time to run): no write when nothing changes."""
        if not jobs:
            return
        sent_at = sent_at or {}
        rows = {j.id: (j.id, j.kind, j.request_id, j.payment_id, org, j.run_at, sent_at.get(j.id)) for j, org in jobs}
        retried = list({j.id for j, _ in jobs if j.attempt_key})
        curs.execute(
            "INSERT INTO jobs AS j (id, kind, request_id, payment_id, organization, run_at, created_at, updated_at) "
            "SELECT id, kind, request_id, payment_id, organization, run_at, coalesce(created_at, now()), now() FROM "
            "unnest(%s::uuid[], %s::text[], %s::uuid[], %s::uuid[], %s::text[], %s::timestamptz[], %s::timestamptz[]) "
            "AS t(id, kind, request_id, payment_id, organization, run_at, created_at) "
            "ON CONFLICT (id) DO UPDATE SET "
            "status = CASE WHEN j.status = 'failed' AND EXCLUDED.id = ANY(%s::uuid[]) THEN 'pending' ELSE j.status END, "
            "organization = coalesce(j.organization, EXCLUDED.organization), run_at = coalesce(j.run_at, EXCLUDED.run_at), "
            "updated_at = now() "
            "WHERE (j.status = 'failed' AND EXCLUDED.id = ANY(%s::uuid[])) "
            "OR (j.organization IS NULL AND EXCLUDED.organization IS NOT NULL) OR (j.run_at IS NULL AND EXCLUDED.run_at IS NOT NULL)",
            (*(list(column) for column in zip(*rows.values())), retried, retried),
        )

    def finish_many(self, jobs: list[Job], context: dict[UUID, tuple[str | None, datetime | None]] | None = None) -> None:
        """Mark jobs done, counting their last attempt, in one statement. A row the dispatcher
        has not written yet is created here, done, with ``context`` (organisation, time sent)."""
        self._upsert(jobs, "done", None, context)

    def note_error(self, job: Job, error: str) -> None:
        self._upsert([job], "retrying", error)

    def fail(self, job: Job, error: str) -> None:
        self._upsert([job], "failed", error)

    def _upsert(self, jobs: list[Job], status: str, error: str | None,
                context: dict[UUID, tuple[str | None, datetime | None]] | None = None) -> None:
        if not jobs:
            return
        context = context or {}
        # One row per job: the same job finished twice (a message delivered again) counts once here.
        rows = {j.id: (j.id, j.kind, j.request_id, j.payment_id, *context.get(j.id, (None, None))) for j in jobs}
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO jobs AS j (id, kind, request_id, payment_id, organization, created_at, status, attempts, last_error) "
                "SELECT id, kind, request_id, payment_id, organization, coalesce(created_at, now()), %s, 1, %s FROM "
                "unnest(%s::uuid[], %s::text[], %s::uuid[], %s::uuid[], %s::text[], %s::timestamptz[]) "
                "AS t(id, kind, request_id, payment_id, organization, created_at) "
                "ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, attempts = j.attempts + 1, "
                "last_error = coalesce(EXCLUDED.last_error, j.last_error), organization = coalesce(j.organization, EXCLUDED.organization), "
                "updated_at = now()",
                (status, error, *(list(column) for column in zip(*rows.values()))),
            )

    def get(self, job_id: UUID) -> dict[str, Any] | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT * FROM jobs WHERE id = %s", (job_id,))
            return curs.fetchone()
