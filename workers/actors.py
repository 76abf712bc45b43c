"""Dramatiq actors for outside work. `declare` binds them to a broker and a queue; call it after
`workers.broker.setup_broker`, and install the runtime (built by the composition root) before a
worker starts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Callable

import dramatiq
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
    await runtime().run(job, attempt)


async def job_failed(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Called by Dramatiq when a job's retries ran out."""
    job = job_from_message(*message["args"])
    reason = f"gave up after {retry_info.get('retries', '?')} retries"
    stored = await asyncio.to_thread(runtime().store.get, job.id)
    if stored and stored.get("last_error"):
        reason += f"; last error: {stored['last_error']}"
    await runtime().give_up(job, reason)


@dataclass(frozen=True)
class JobActors:
    run_job: dramatiq.Actor
    job_failed: dramatiq.Actor


_declared: dict[tuple[int, str], JobActors] = {}


def declare(broker: dramatiq.Broker, queue: str) -> JobActors:
    """The job actors on ``broker`` and ``queue`` (declared once per broker and queue)."""
    key = (id(broker), queue)
    if key not in _declared:
        failed_name = f"job_failed@{queue}"
        _declared[key] = JobActors(
            run_job=dramatiq.actor(run_job, actor_name=f"run_job@{queue}", queue_name=queue, broker=broker,
                                   max_retries=8, min_backoff=1000, max_backoff=300_000, on_retry_exhausted=failed_name,
                                   throws=(ForeignJob,)),
            job_failed=dramatiq.actor(job_failed, actor_name=failed_name, queue_name=queue, broker=broker, max_retries=20),
        )
    return _declared[key]


def dramatiq_sender(broker: Any, queue: str, *, max_retries: int, min_backoff_ms: int, max_backoff_ms: int,
                    database: str = "") -> Callable[[Job, int], None]:
    """A Send that enqueues `run_job` messages with ids derived from the job, each marked with
    ``database`` (see infrastructure.jobs.database_identity) so that a worker on another
    database refuses it."""
    run_job = declare(broker, queue).run_job

    def send(job: Job, delay_ms: int) -> None:
        message = run_job.message_with_options(
            args=(str(job.id), job.kind, str(job.request_id) if job.request_id else None, str(job.payment_id) if job.payment_id else None,
                  dict(job.facts) or None),
            max_retries=max_retries, min_backoff=min_backoff_ms, max_backoff=max_backoff_ms,
            **({DATABASE_OPTION: database} if database else {}),
        ).copy(message_id=job.message_id)
        broker.enqueue(message, delay=delay_ms or None)

    return send
