"""The dispatcher: the event log is the outbox.

It follows the log with its own tracking record and enqueues Dramatiq messages for the events
that need outside work (the jobs due now several per message). Messages are enqueued before the
tracking record is committed, so a crash in between re-sends them; their ids come from the
events, and the workers skip a job that is already done, so a re-send changes nothing that
matters.

When the Send batches jobs, the jobs' rows and the tracking record are committed together a
moment after the messages went out (``RECORD_AFTER_SECONDS``, or at once for a large backlog or
a retried job): most jobs are done by then and their rows already written, whole, by the
worker, so a job's row is written once instead of inserted pending and then updated. Until
that commit the jobs are only in the broker, as they would be after a crash between sending and
committing: a restart sends them again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.utils import get_topic

from application.back_office import BackOffice
from application.jobs import EXPIRE_PAYMENT, VERIFY_APPLICANT, Job, jobs_for, ALLOWANCE_KINDS
from domain.allowance import AllowanceRun, DisbursementBatch
from domain.payment import Payment
from domain.service_request import ServiceRequest
from infrastructure.jobs.jobs_store import JobsStore
from infrastructure.eventstore.following import LogFollower, broker_errors

log = logging.getLogger("onestop.dispatcher")

TRACKING_TABLE = "onestop_dispatcher_tracking"
TRACKING_NAME = "OneStop"
ADVISORY_LOCK_KEY = 0x0E57_0002
NAME = "dispatcher"
TOPICS = [get_topic(cls) for cls in (
    # Submitted needs no job, but carries the service and organisation later events need.
    ServiceRequest.Submitted, ServiceRequest.VerificationStarted, ServiceRequest.Approved, ServiceRequest.RetryRequested,
    Payment.Opened, Payment.ReceivedAfterExpiry,
    AllowanceRun.Started, AllowanceRun.RetryRequested, DisbursementBatch.Prepared,
)]

# Busy, the dispatcher lets events gather this long between steps, so that a message carries
# several jobs (a few tens of milliseconds on a job that waits on the registry anyway).
GATHER_SECONDS = 0.05
# How long sent jobs wait before their rows and the tracking record are committed, and how many
# may wait at most.
RECORD_AFTER_SECONDS = 2.0
RECORD_AT_MOST = 5000

# send(job, delay_ms) puts one message on the broker, with the job's message id. A Send may also
# have ``many(jobs)``, which puts (job, organisation) pairs due now on the broker, several a message.
Send = Callable[[Job, int], None]


class Dispatcher:
    def __init__(self, app: BackOffice, send: Send, *, batch_size: int = 500) -> None:
        self.app = app
        self.send = send
        # A Send that can also put several jobs in one message does so for the jobs due now.
        self.send_many: Callable[[list[tuple[Job, str | None]]], None] | None = getattr(send, "many", None)
        self.batch_size = batch_size
        self.tracking = PostgresTrackingRecorder(app.recorder.datastore, tracking_table_name=TRACKING_TABLE)  # type: ignore[attr-defined]
        self.store = JobsStore(app.recorder.datastore)  # type: ignore[attr-defined]
        # Sent, not yet recorded, step by step: (when, the jobs, the position the step reached).
        self._unrecorded: deque[tuple[float, list[tuple[Job, str | None]], int]] = deque()
        self._unrecorded_jobs = 0
        self._sent_at: dict[UUID, datetime] = {}
        self._context: dict[UUID, tuple[str, str]] = {}
        self._facts: dict[UUID, tuple[tuple[str, str], ...]] = {}

    def _remember(self, request_id: UUID, service: str, organization: str, facts: tuple[tuple[str, str], ...] = ()) -> None:
        # Bounded: a request's context is needed only until its jobs are dispatched.
        if len(self._context) > 100_000:
            self._context.clear()
            self._facts.clear()
        self._context[request_id] = (service, organization)
        if facts:
            self._facts[request_id] = facts

    def _request_context(self, request_id: UUID) -> tuple[str, str]:
        """(service, organisation) of a request: fixed at filing, so cached."""
        if request_id not in self._context:
            request = self.app.get_request(request_id)
            self._remember(request_id, request.service, request.organization)
        return self._context[request_id]

    def _jobs(self, event: Any) -> list[tuple[Job, str | None]]:
        if isinstance(event, ServiceRequest.Submitted):
            facts = [("national_id", event.applicant["national_id"])]
            if "to_house_id" in event.details:
                facts.append(("to_house_id", event.details["to_house_id"]))
            self._remember(event.originator_id, event.service, event.organization, tuple(facts))
            return []
        if isinstance(event, ServiceRequest.RetryRequested):
            return self._retry(event)
        found = jobs_for(event, lambda rid: self._request_context(rid)[0])
        result = []
        for job in found:
            if job.kind in ALLOWANCE_KINDS:
                org = dict(job.facts).get("organization")
            elif job.request_id is not None:
                org = self._request_context(job.request_id)[1]
                if job.kind == VERIFY_APPLICANT and job.request_id in self._facts:
                    job = replace(job, facts=self._facts.pop(job.request_id))
            else:
                org = self.app.get_payment(job.payment_id).organization  # type: ignore[arg-type]
            result.append((job, org))
        return result

    def _retry(self, event: ServiceRequest.RetryRequested) -> list[tuple[Job, str | None]]:
        if not event.job_id:
            return []
        row = self.store.get(UUID(event.job_id))
        if row is None:
            return []
        job = Job(row["id"], row["kind"], row["request_id"], row["payment_id"], attempt_key=f"retry-{event.originator_version}")
        return [(job, row["organization"])]

    def position(self) -> int:
        # Following starts (again) from what was recorded: jobs sent since are sent again.
        self._forget_unrecorded()
        return self.tracking.max_tracking_id(TRACKING_NAME) or 0

    def dispatch_once(self, position: int) -> int:
        """Dispatch the next batch after ``position``; return the new position. The jobs are
        recorded (with the tracking record) at a later call, or by ``record``."""
        notifications = self.app.recorder.select_notifications(
            start=position, limit=self.batch_size, topics=TOPICS, inclusive_of_start=False
        )
        if not notifications:
            self.record(force=False)
            return position
        jobs: list[tuple[Job, str | None]] = []
        for notification in notifications:
            jobs.extend(self._jobs(self.app.mapper.to_domain_event(notification)))
        now = datetime.now(timezone.utc)
        due: list[tuple[Job, str | None]] = []
        for job, org in jobs:
            if job.kind == EXPIRE_PAYMENT:
                # Recorded below, not sent: the expiry sweep (infrastructure.jobs.sweeps) expires the
                # payment at its time, instead of a delayed message held in a worker's memory.
                continue
            delay = max(0, int((job.run_at - now).total_seconds() * 1000)) if job.run_at else 0
            if delay or self.send_many is None:
                self.send(job, delay)
            else:
                due.append((job, org))
        if due:
            # Several jobs per message (see workers.actors): one publish and its confirm for a batch.
            self.send_many(due)
        last = notifications[-1].id
        self._unrecorded.append((time.monotonic(), jobs, last))
        self._unrecorded_jobs += len(jobs)
        self._sent_at.update((job.id, now) for job, _ in jobs)
        if jobs:
            log.info("dispatched %d jobs up to position %d", len(jobs), last)
        # A Send without ``many`` (one message a job) gains nothing from waiting: recorded now.
        # So is a retried job: its row turns from failed to pending, which must happen before
        # the worker can fail it again.
        self.record(force=self.send_many is None or any(job.attempt_key for job, _ in jobs))
        return last

    def record(self, *, force: bool = True) -> None:
        """Commit the rows of the jobs sent at least ``RECORD_AFTER_SECONDS`` ago, and the
        tracking record up to the position they reach (all of them with ``force``, or when
        more than ``RECORD_AT_MOST`` wait)."""
        if not self._unrecorded:
            return
        if force or self._unrecorded_jobs >= RECORD_AT_MOST:
            due = len(self._unrecorded)
        else:
            cutoff = time.monotonic() - RECORD_AFTER_SECONDS
            due = next((i for i, (at, _, _) in enumerate(self._unrecorded) if at > cutoff), len(self._unrecorded))
            if not due:
                return
        steps = [self._unrecorded[i] for i in range(due)]
        jobs = [job for _, step_jobs, _ in steps for job in step_jobs]
        with self.app.recorder.datastore.transaction(commit=True) as curs:  # type: ignore[attr-defined]
            self.store.record_dispatched(curs, jobs, self._sent_at)
            self.tracking._insert_tracking(curs, Tracking(TRACKING_NAME, steps[-1][2]))
        for _ in range(due):
            self._unrecorded.popleft()
        self._unrecorded_jobs -= len(jobs)
        for job, _ in jobs:
            self._sent_at.pop(job.id, None)

    def _forget_unrecorded(self) -> None:
        self._unrecorded.clear()
        self._unrecorded_jobs = 0
        self._sent_at.clear()

    def run(self, stop: threading.Event, conninfo: str, *, poll_seconds: float = 1.0) -> None:
        """Follow the log until ``stop`` is set. One dispatcher sends at a time (others stand
        by); a lost connection or an unreachable broker is retried with backoff, anything
        unexpected escapes (run it in a supervised thread)."""
        LogFollower(
            NAME, conninfo, ADVISORY_LOCK_KEY, self.app.recorder.channel_name,  # type: ignore[attr-defined]
            position=self.position, step=self.dispatch_once, tracking=TRACKING_TABLE,
            poll_seconds=min(poll_seconds, RECORD_AFTER_SECONDS), transient=broker_errors(), gather_seconds=GATHER_SECONDS,
        ).run(stop)
        try:
            self.record()
        except Exception as error:  # noqa: BLE001 - the next start sends them again
            log.warning("could not record the last %d jobs sent (%s); they are sent again at the next start", self._unrecorded_jobs, error)

