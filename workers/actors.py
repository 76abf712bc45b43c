"""Dramatiq actors for outside work. `declare` binds them to a broker and a queue; call it after
`workers.broker.setup_broker`, and install the runtime (built by the composition root) before a
worker starts.

Jobs travel one per message (`run_job`) or several per message (`run_jobs`, what the
dispatcher sends: a message costs a publish with its confirm, the broker's work and a thread
hand-off each way, more than running a job). A batch keeps at-least-once delivery and never
makes a job's siblings run again because of it:

- The batch's jobs run together on the worker's event loop. The message is acknowledged only
  after every job finished or was handed on: a worker that dies first leaves it unacknowledged,
  the broker delivers it again and all its jobs run again, each a no-op if already done (every
  job is idempotent: it checks its aggregate, calls outside systems with the job's id as
  idempotency key, and the application ignores a result already recorded).
- A job that fails is sent again alone, as a `run_job` message counting its first attempt
  (`retries` 1, after the first backoff), before the batch is acknowledged; from then on
  Dramatiq retries it on its own, and `job_failed` gives up on it when its retries run out. Its
  siblings are done and are not retried.
- Only if that sending fails does the batch fail as a whole: Dramatiq retries it (its finished
  jobs are skipped or replayed, as above), and when the batch's retries run out `jobs_failed`
  gives up on each of its jobs that is not done.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import dramatiq
from dramatiq.common import compute_backoff
from dramatiq.middleware import CurrentMessage

from application.jobs import Job
from workers.errors import ForeignJob, NotConfigured
from workers.jobs import JobRuntime, job_from_message

log = logging.getLogger("onestop.worker")
# The message option that names the database a job belongs to.
DATABASE_OPTION = "onestop_database"

_runtime: JobRuntime | None = None


def install(runtime: JobRuntime) -> None:
    global _runtime
    _runtime = runtime


def runtime() -> JobRuntime:
    if _runtime is None:
        raise NotConfigured("the job runtime is not installed in this worker process")
    return _runtime


async def run_job(job_id: str, kind: str, request_id: str | None, payment_id: str | None, facts: dict[str, str] | None = None) -> None:
    message = CurrentMessage.get_current_message()
    attempt = 1 + (message.options.get("retries", 0) if message is not None else 0)
    job = job_from_message(job_id, kind, request_id, payment_id, facts)
    try:
        await runtime().check_known(job, message.options.get(DATABASE_OPTION) if message is not None else None)
    except ForeignJob as error:
        # Raised, not returned: the actor's `throws` makes Dramatiq fail the message without a
        # retry, so the broker dead-letters it where an operator can look.
        log.error("dead-lettering a job of another database: %s", error)
        raise
    await runtime().run(job, attempt, sent_at=_sent_at(message))


async def job_failed(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Called by Dramatiq when a job's retries ran out."""
    job = job_from_message(*message["args"])
    await _give_up(job, f"gave up after {retry_info.get('retries', '?')} retries")


async def _give_up(job: Job, reason: str) -> None:
    stored = await asyncio.to_thread(runtime().store.get, job.id)
    if stored and stored.get("status") == "done":
        return
    if stored and stored.get("last_error"):
        reason += f"; last error: {stored['last_error']}"
    await runtime().give_up(job, reason)


def batch_entry(job: Job, organization: str | None) -> list[Any]:
    """One job of a `run_jobs` message: JSON, as a `run_job` message's arguments, plus the
    job's organisation (so that the worker writes the job's row whole)."""
    return [str(job.id), job.kind, str(job.request_id) if job.request_id else None, str(job.payment_id) if job.payment_id else None,
            dict(job.facts) or None, organization]


def _batch_jobs(entries: list[list[Any]]) -> list[tuple[Job, str | None]]:
    return [(job_from_message(*entry[:5]), entry[5] if len(entry) > 5 else None) for entry in entries]


async def _run_batch(entries: list[list[Any]], single: dramatiq.Actor) -> None:
    message = CurrentMessage.get_current_message()
    options = message.options if message is not None else {}
    attempt = 1 + options.get("retries", 0)
    jobs = _batch_jobs(entries)
    marker = options.get(DATABASE_OPTION)
    try:
        for job, _ in (jobs if marker is None else jobs[:1]):
            await runtime().check_known(job, marker)
    except ForeignJob as error:
        log.error("dead-lettering a batch of %d jobs of another database: %s", len(jobs), error)
        raise
    sent_at = _sent_at(message)
    results = await asyncio.gather(*(runtime().run(job, attempt, organization=org, sent_at=sent_at) for job, org in jobs),
                                   return_exceptions=True)
    failed = [(job, result) for (job, _), result in zip(jobs, results) if isinstance(result, BaseException)]
    if not failed:
        return
    # Each failed job goes on alone, as its own first retry; the batch is then acknowledged.
    max_retries = options.get("max_retries", single.options.get("max_retries"))
    min_backoff = options.get("min_backoff", single.options.get("min_backoff"))
    max_backoff = options.get("max_backoff", single.options.get("max_backoff"))
    for job, error in failed:
        if isinstance(error, asyncio.CancelledError):
            raise error
        _, delay = compute_backoff(attempt - 1, factor=min_backoff, max_backoff=max_backoff)
        log.info("job %s (%s) failed in a batch (%s: %s); retrying it alone in %d ms", job.id, job.kind, type(error).__name__, error, delay)
        retry = single.message_with_options(
            args=_single_args(job), max_retries=max_retries, min_backoff=min_backoff, max_backoff=max_backoff, retries=attempt,
            **({DATABASE_OPTION: marker} if marker else {}),
        ).copy(message_id=job.message_id, **({"message_timestamp": message.message_timestamp} if message is not None else {}))
        await asyncio.to_thread(single.broker.enqueue, retry, delay=delay)


async def jobs_failed(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Called by Dramatiq when a batch's own retries ran out (its failed jobs could not be sent
    on alone): give up on each of its jobs that is not done."""
    reason = f"gave up after {retry_info.get('retries', '?')} retries of its batch"
    for job, _ in _batch_jobs(message["args"][0]):
        await _give_up(job, reason)


def _sent_at(message: Any) -> datetime | None:
    """When the message was first made (a retry keeps it): when the job was sent."""
    stamp = getattr(message, "message_timestamp", None)
    return datetime.fromtimestamp(stamp / 1000, timezone.utc) if stamp else None


def _single_args(job: Job) -> tuple[Any, ...]:
    return (str(job.id), job.kind, str(job.request_id) if job.request_id else None, str(job.payment_id) if job.payment_id else None,
            dict(job.facts) or None)


@dataclass(frozen=True)
class JobActors:
    run_job: dramatiq.Actor
    job_failed: dramatiq.Actor
    run_jobs: dramatiq.Actor
    jobs_failed: dramatiq.Actor


_declared: dict[tuple[int, str], JobActors] = {}


def declare(broker: dramatiq.Broker, queue: str) -> JobActors:
    """The job actors on ``broker`` and ``queue`` (declared once per broker and queue)."""
    key = (id(broker), queue)
    if key not in _declared:
        failed_name, batch_failed_name = f"job_failed@{queue}", f"jobs_failed@{queue}"
        single = dramatiq.actor(run_job, actor_name=f"run_job@{queue}", queue_name=queue, broker=broker,
                                max_retries=8, min_backoff=1000, max_backoff=300_000, on_retry_exhausted=failed_name,
                                throws=(ForeignJob,))

        async def run_jobs(entries: list[list[Any]]) -> None:
            await _run_batch(entries, single)

        _declared[key] = JobActors(
            run_job=single,
            job_failed=dramatiq.actor(job_failed, actor_name=failed_name, queue_name=queue, broker=broker, max_retries=20),
            run_jobs=dramatiq.actor(run_jobs, actor_name=f"run_jobs@{queue}", queue_name=queue, broker=broker,
                                    max_retries=8, min_backoff=1000, max_backoff=300_000, on_retry_exhausted=batch_failed_name,
                                    throws=(ForeignJob,)),
            jobs_failed=dramatiq.actor(jobs_failed, actor_name=batch_failed_name, queue_name=queue, broker=broker, max_retries=20),
        )
    return _declared[key]


# Jobs per `run_jobs` message at most: enough to make a message's cost small per job, few
# enough that several workers share a burst.
BATCH_JOBS = 32


class DramatiqSender:
    """The dispatcher's and the sweeper's Send: ``send(job, delay_ms)`` enqueues a `run_job`
    message, ``send.many(jobs)`` `run_jobs` messages of up to ``batch`` jobs each (jobs to run
    now). Every message is marked with ``database`` (see infrastructure.jobs.database_identity)
    so that a worker on another database refuses it; a single job's message id is derived from
    the job, a batch's from its first and last jobs."""

    def __init__(self, broker: Any, queue: str, *, max_retries: int, min_backoff_ms: int, max_backoff_ms: int,
                 database: str = "", batch: int = BATCH_JOBS) -> None:
        actors = declare(broker, queue)
        self.broker = broker
        self.run_job, self.run_jobs = actors.run_job, actors.run_jobs
        self.options: dict[str, Any] = {"max_retries": max_retries, "min_backoff": min_backoff_ms, "max_backoff": max_backoff_ms,
                                        **({DATABASE_OPTION: database} if database else {})}
        self.batch = max(1, batch)

    def __call__(self, job: Job, delay_ms: int) -> None:
        message = self.run_job.message_with_options(args=_single_args(job), **self.options).copy(message_id=job.message_id)
        self.broker.enqueue(message, delay=delay_ms or None)

    def many(self, jobs: list[tuple[Job, str | None]]) -> None:
        for start in range(0, len(jobs), self.batch):
            chunk = jobs[start:start + self.batch]
            if len(chunk) == 1:
                self(chunk[0][0], 0)
                continue
            message = self.run_jobs.message_with_options(args=([batch_entry(job, org) for job, org in chunk],), **self.options)
            self.broker.enqueue(message.copy(message_id=f"{chunk[0][0].message_id}+{chunk[-1][0].message_id}"))


def dramatiq_sender(broker: Any, queue: str, *, max_retries: int, min_backoff_ms: int, max_backoff_ms: int,
                    database: str = "") -> DramatiqSender:
    """A Send (see DramatiqSender) on ``broker`` and ``queue``."""
    return DramatiqSender(broker, queue, max_retries=max_retries, min_backoff_ms=min_backoff_ms, max_backoff_ms=max_backoff_ms,
                          database=database)
