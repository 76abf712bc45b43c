"""The jobs table: operational state of outside work (attempts, last error), for the workers'
bookkeeping and for officers' `GET /v1/jobs`. The log stays the source of truth: the dispatcher
creates rows from events, and a failure that officers must act on is also an event."""

from __future__ import annotations

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
    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    def record_dispatched(self, curs: Any, jobs: list[tuple[Job, str | None]]) -> None:
        """New jobs are pending; a retried job becomes pending again (inside the caller's tx)."""
        if not jobs:
            return
        curs.executemany(
            "INSERT INTO jobs (id, kind, request_id, payment_id, organization, run_at) VALUES (%s, %s, %s, %s, %s, %s) "
            # A worker may have written the row first (it runs a job as soon as it is sent);
            # the dispatcher still supplies what only it knows.
            "ON CONFLICT (id) DO UPDATE SET status = CASE WHEN %s AND jobs.status = 'failed' THEN 'pending' ELSE jobs.status END, "
            "organization = coalesce(jobs.organization, EXCLUDED.organization), run_at = coalesce(jobs.run_at, EXCLUDED.run_at), "
            "updated_at = now()",
            [(j.id, j.kind, j.request_id, j.payment_id, org, j.run_at, bool(j.attempt_key)) for j, org in jobs],
        )

    def finish_many(self, jobs: list[Job]) -> None:
        """Mark jobs done, counting their last attempt, in one statement. A row the dispatcher
        has not committed yet is created here, and its later insert leaves it done."""
        self._upsert(jobs, "done", None)

    def note_error(self, job: Job, error: str) -> None:
        self._upsert([job], "retrying", error)

    def fail(self, job: Job, error: str) -> None:
        self._upsert([job], "failed", error)

    def _upsert(self, jobs: list[Job], status: str, error: str | None) -> None:
        if not jobs:
            return
        with self.datastore.transaction(commit=True) as curs:
            curs.executemany(
                "INSERT INTO jobs AS j (id, kind, request_id, payment_id, status, attempts, last_error) "
                "VALUES (%s, %s, %s, %s, %s, 1, %s) "
                "ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, attempts = j.attempts + 1, "
                "last_error = coalesce(EXCLUDED.last_error, j.last_error), updated_at = now()",
                [(j.id, j.kind, j.request_id, j.payment_id, status, error) for j in jobs],
            )

    def get(self, job_id: UUID) -> dict[str, Any] | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT * FROM jobs WHERE id = %s", (job_id,))
            return curs.fetchone()
