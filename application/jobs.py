"""Outside work: which events need a job, and what each job is called.

The event log is the outbox. The dispatcher reads events in order and asks `jobs_for` which
jobs each one starts; a job's id comes from the event, so dispatching the same event twice
names the same job, and the worker runs it at most once to completion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.allowance import AllowanceRun, DisbursementBatch
from domain.catalogue import SERVICES
from domain.payment import Payment
from domain.service_request import ServiceRequest

JOB_NAMESPACE = uuid5(NAMESPACE_URL, "https://onestop.dev/jobs")

VERIFY_APPLICANT = "verify_applicant"
FULFIL = "fulfil"
CREATE_CHARGE = "create_charge"
EXPIRE_PAYMENT = "expire_payment"
REFUND = "refund"
# The elderly-allowance run: plan (the registry's bulk check, then every batch), and pay one batch.
ALLOWANCE_PLAN = "allowance_plan"
ALLOWANCE_PAY = "allowance_pay"
ALLOWANCE_KINDS = (ALLOWANCE_PLAN, ALLOWANCE_PAY)
JOB_KINDS = (VERIFY_APPLICANT, FULFIL, CREATE_CHARGE, EXPIRE_PAYMENT, REFUND, *ALLOWANCE_KINDS)


@dataclass(frozen=True)
class Job:
    id: UUID
    kind: str
    request_id: UUID | None
    payment_id: UUID | None
    run_at: datetime | None = None
    # A retry of a failed job gets a new message, but keeps the job's id (and so its
    # idempotency key at the outside system).
    attempt_key: str = ""
    # Facts the job needs that the log already told the dispatcher (the applicant's national ID,
    # the destination house), so a worker need not load the aggregate to learn them.
    facts: tuple[tuple[str, str], ...] = ()

    @property
    def message_id(self) -> str:
        return str(uuid5(self.id, self.attempt_key or "first"))


def job_id(kind: str, aggregate_id: UUID, version: int) -> UUID:
    return uuid5(JOB_NAMESPACE, f"{kind}\n{aggregate_id}\n{version}")


def jobs_for(event: Any, service_of: Callable[[UUID], str]) -> list[Job]:
    """The jobs an event starts. ``service_of`` tells a request's service (from the log)."""
    aggregate_id, version = event.originator_id, event.originator_version
    if isinstance(event, ServiceRequest.VerificationStarted):
        return [Job(job_id(VERIFY_APPLICANT, aggregate_id, version), VERIFY_APPLICANT, aggregate_id, None)]
    if isinstance(event, ServiceRequest.Approved):
        if SERVICES[service_of(aggregate_id)].fulfilment:
            return [Job(job_id(FULFIL, aggregate_id, version), FULFIL, aggregate_id, None)]
        return []
    if isinstance(event, Payment.Opened):
        return [
            Job(job_id(CREATE_CHARGE, aggregate_id, version), CREATE_CHARGE, event.request_id, aggregate_id),
            Job(job_id(EXPIRE_PAYMENT, aggregate_id, version), EXPIRE_PAYMENT, event.request_id, aggregate_id, run_at=event.expires_at),
        ]
    if isinstance(event, AllowanceRun.Started):
        facts = (("attempt", "0"), ("organization", event.organization), ("run_id", str(aggregate_id)))
        return [Job(job_id(ALLOWANCE_PLAN, aggregate_id, version), ALLOWANCE_PLAN, None, None, facts=facts)]
    if isinstance(event, AllowanceRun.RetryRequested):
        facts = (("attempt", str(event.attempt)), ("run_id", str(aggregate_id)))
        return [Job(job_id(ALLOWANCE_PLAN, aggregate_id, version), ALLOWANCE_PLAN, None, None, facts=facts)]
    if isinstance(event, DisbursementBatch.Prepared):
        facts = (("batch_id", str(aggregate_id)), ("organization", event.organization), ("run_id", event.run_id))
        return [Job(job_id(ALLOWANCE_PAY, aggregate_id, version), ALLOWANCE_PAY, None, None, facts=facts)]
    if isinstance(event, Payment.ReceivedAfterExpiry):
        return [Job(job_id(REFUND, aggregate_id, version), REFUND, None, aggregate_id)]
    return []

