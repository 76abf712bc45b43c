"""The ServiceRequest aggregate: a citizen's request from filing to its end, and its events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate

from domain.actors import Actor
from domain.errors import RequestAlreadyDecided, TransitionNotAllowed

SUBMITTED = "submitted"
VERIFYING = "verifying"
AWAITING_PAYMENT = "awaiting_payment"
IN_REVIEW = "in_review"
INFO_REQUESTED = "info_requested"
APPROVED = "approved"
COMPLETED = "completed"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"

STATUSES = (SUBMITTED, VERIFYING, AWAITING_PAYMENT, IN_REVIEW, INFO_REQUESTED, APPROVED, COMPLETED, REJECTED, WITHDRAWN)
FINAL = frozenset({COMPLETED, REJECTED, WITHDRAWN})
OPEN = frozenset(STATUSES) - FINAL
DECIDED = frozenset({APPROVED}) | FINAL

TRANSITIONS: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({VERIFYING, AWAITING_PAYMENT, IN_REVIEW, REJECTED, WITHDRAWN}),
    VERIFYING: frozenset({AWAITING_PAYMENT, IN_REVIEW, REJECTED, WITHDRAWN}),
    AWAITING_PAYMENT: frozenset({IN_REVIEW, REJECTED, WITHDRAWN}),
    IN_REVIEW: frozenset({AWAITING_PAYMENT, INFO_REQUESTED, APPROVED, REJECTED, WITHDRAWN}),
    INFO_REQUESTED: frozenset({IN_REVIEW, REJECTED, WITHDRAWN}),
    APPROVED: frozenset({COMPLETED}),
    COMPLETED: frozenset(),
    REJECTED: frozenset(),
    WITHDRAWN: frozenset(),
}


class ServiceRequest(BaseAggregate[UUID]):
    """A request for one service, filed at one organisation and decided by the responsible one."""

    TOPIC = "onestop:ServiceRequest"

    class Event(AggregateEvent):
        actor: dict[str, Any]
        channel: str
        # The status the request moves to (not a field: the event's class says it), or None.
        MOVES_TO: ClassVar[str | None] = None

        def apply(self, request: ServiceRequest) -> None:
            if self.MOVES_TO is not None:
                request._move(self.MOVES_TO)

    class Submitted(Event, AggregateCreated):
        TOPIC = "onestop:ServiceRequest.Submitted"
        reference: str
        service: str
        organization: str
        filed_at: str
        applicant: dict[str, Any]
        details: dict[str, Any]
        due_at: datetime
        request_hash: str
        # Set when an officer checked in a counter appointment (README "Appointments").
        appointment_id: UUID | None = None

    class VerificationStarted(Event):
        TOPIC = "onestop:ServiceRequest.VerificationStarted"
        MOVES_TO = VERIFYING

    class ApplicantVerified(Event):
        TOPIC = "onestop:ServiceRequest.ApplicantVerified"
        registry: dict[str, Any]

        def apply(self, request: ServiceRequest) -> None:
            request.verified = True
            request.registry = self.registry

    class FeeAssessed(Event):
        TOPIC = "onestop:ServiceRequest.FeeAssessed"
        amount_satang: int
        payment_id: UUID
        MOVES_TO = AWAITING_PAYMENT

        def apply(self, request: ServiceRequest) -> None:
            super().apply(request)
            request.fee_satang = self.amount_satang
            request.payment_id = self.payment_id

    class PaymentSettled(Event):
        TOPIC = "onestop:ServiceRequest.PaymentSettled"
        payment_id: UUID
        MOVES_TO = IN_REVIEW

        def apply(self, request: ServiceRequest) -> None:
            super().apply(request)
            request.paid = True

    class ReviewStarted(Event):
        TOPIC = "onestop:ServiceRequest.ReviewStarted"
        MOVES_TO = IN_REVIEW

    class Assigned(Event):
        TOPIC = "onestop:ServiceRequest.Assigned"
        officer: str

        def apply(self, request: ServiceRequest) -> None:
            request.assigned_to = self.officer

    class InfoRequested(Event):
        TOPIC = "onestop:ServiceRequest.InfoRequested"
        message: str
        MOVES_TO = INFO_REQUESTED

    class InfoProvided(Event):
        TOPIC = "onestop:ServiceRequest.InfoProvided"
        message: str
        # Staff of the filing or responsible organisation answered for the applicant.
        on_behalf_of_applicant: bool = False
        MOVES_TO = IN_REVIEW

    class Approved(Event):
        TOPIC = "onestop:ServiceRequest.Approved"
        note: str | None
        MOVES_TO = APPROVED

    class Rejected(Event):
        TOPIC = "onestop:ServiceRequest.Rejected"
        reason: str
        MOVES_TO = REJECTED

        def apply(self, request: ServiceRequest) -> None:
            super().apply(request)
            request.outcome = self.reason

    class Completed(Event):
        TOPIC = "onestop:ServiceRequest.Completed"
        result: dict[str, Any]
        MOVES_TO = COMPLETED

        def apply(self, request: ServiceRequest) -> None:
            super().apply(request)
            request.result = self.result

    class Withdrawn(Event):
        TOPIC = "onestop:ServiceRequest.Withdrawn"
        reason: str | None
        # Staff of the filing or responsible organisation withdrew it for the applicant.
        on_behalf_of_applicant: bool = False
        MOVES_TO = WITHDRAWN

        def apply(self, request: ServiceRequest) -> None:
            super().apply(request)
            request.outcome = self.reason

    class ActionRequired(Event):
        """Outside work failed after its retries; an officer must look."""

        TOPIC = "onestop:ServiceRequest.ActionRequired"
        job: str
        reason: str
        job_id: str | None = None

        def apply(self, request: ServiceRequest) -> None:
            request.action_required = {"job": self.job, "reason": self.reason, "job_id": self.job_id}

    class RetryRequested(Event):
        TOPIC = "onestop:ServiceRequest.RetryRequested"
        job: str
        job_id: str | None = None

        def apply(self, request: ServiceRequest) -> None:
            request.action_required = None

    def __init__(
        self,
        *,
        reference: str,
        service: str,
        organization: str,
        filed_at: str,
        channel: str,
        applicant: dict[str, Any],
        details: dict[str, Any],
        due_at: datetime,
        request_hash: str,
        actor: dict[str, Any],
        appointment_id: UUID | None = None,
    ) -> None:
        self.reference = reference
        self.service = service
        self.organization = organization
        self.filed_at = filed_at
        self.channel = channel
        self.applicant = applicant
        self.details = details
        self.due_at = due_at
        self.request_hash = request_hash
        self.submitted_by = actor
        self.status = SUBMITTED
        self.verified = False
        self.registry: dict[str, Any] | None = None
        self.fee_satang = 0
        self.payment_id: UUID | None = None
        self.paid = False
        self.assigned_to: str | None = None
        self.outcome: str | None = None
        self.result: dict[str, Any] | None = None
        self.action_required: dict[str, str] | None = None
        self.appointment_id = appointment_id

    @classmethod
    def file(cls, *, id: UUID, at: datetime, actor: Actor, channel: str, **fields: Any) -> ServiceRequest:
        """File a new request (the caller has checked the service, organisation and details)."""
        return cls._create(cls.Submitted, id=id, timestamp=at, actor=actor.as_dict(), channel=channel, **fields)

    # -- rules -------------------------------------------------------------------------------

    def _move(self, to: str) -> None:
        self._check_can_become(to)
        self.status = to

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def _emit(self, event_class: type[Event], actor: Actor, channel: str, at: datetime, **data: Any) -> None:
        self.trigger_event(event_class, actor=actor.as_dict(), channel=channel, timestamp=at, **data)

    # -- commands ----------------------------------------------------------------------------

    def start_verification(self, actor: Actor, channel: str, at: datetime) -> None:
        self._emit(self.VerificationStarted, actor, channel, at)

    def record_verification(self, registry: dict[str, Any], actor: Actor, at: datetime) -> None:
        self._emit(self.ApplicantVerified, actor, "system", at, registry=registry)

    def assess_fee(self, amount_satang: int, payment_id: UUID, actor: Actor, channel: str, at: datetime) -> None:
        if amount_satang <= 0:
            raise TransitionNotAllowed("an assessed fee must be positive")
        if self.paid:
            raise TransitionNotAllowed("the fee for this request is already paid")
        self._emit(self.FeeAssessed, actor, channel, at, amount_satang=amount_satang, payment_id=payment_id)

    def settle_payment(self, payment_id: UUID, actor: Actor, channel: str, at: datetime) -> None:
        if payment_id != self.payment_id:
            raise TransitionNotAllowed("the payment is not this request's open payment")
        self._emit(self.PaymentSettled, actor, channel, at, payment_id=payment_id)

    def start_review(self, actor: Actor, channel: str, at: datetime) -> None:
        self._emit(self.ReviewStarted, actor, channel, at)

    def assign(self, officer: str, actor: Actor, channel: str, at: datetime) -> None:
        if not self.is_open:
            raise RequestAlreadyDecided(f"request {self.reference} is already {self.status}")
        self._emit(self.Assigned, actor, channel, at, officer=officer)

    def request_info(self, message: str, actor: Actor, channel: str, at: datetime) -> None:
        self._check_can_become(INFO_REQUESTED)
        self._emit(self.InfoRequested, actor, channel, at, message=message)

    def provide_info(self, message: str, actor: Actor, channel: str, at: datetime, *, on_behalf_of_applicant: bool = False) -> None:
        if self.status != INFO_REQUESTED:
            raise TransitionNotAllowed("no information was requested")
        self._emit(self.InfoProvided, actor, channel, at, message=message, on_behalf_of_applicant=on_behalf_of_applicant)

    def approve(self, note: str | None, actor: Actor, channel: str, at: datetime) -> None:
        self._check_can_become(APPROVED)
        self._emit(self.Approved, actor, channel, at, note=note)

    def reject(self, reason: str, actor: Actor, channel: str, at: datetime) -> None:
        self._check_can_become(REJECTED)
        self._emit(self.Rejected, actor, channel, at, reason=reason)

    def complete(self, result: dict[str, Any], actor: Actor, channel: str, at: datetime) -> None:
        self._check_can_become(COMPLETED)
        self._emit(self.Completed, actor, channel, at, result=result)

    def withdraw(self, reason: str | None, actor: Actor, channel: str, at: datetime, *, on_behalf_of_applicant: bool = False) -> None:
        self._check_can_become(WITHDRAWN)
        self._emit(self.Withdrawn, actor, channel, at, reason=reason, on_behalf_of_applicant=on_behalf_of_applicant)

    def require_action(self, job: str, job_id: str, reason: str, actor: Actor, at: datetime) -> None:
        self._emit(self.ActionRequired, actor, "system", at, job=job, reason=reason, job_id=job_id)

    def retry(self, actor: Actor, channel: str, at: datetime) -> None:
        if self.action_required is None:
            raise TransitionNotAllowed("nothing failed on this request")
        self._emit(self.RetryRequested, actor, channel, at, job=self.action_required["job"], job_id=self.action_required.get("job_id"))

    def _check_can_become(self, to: str) -> None:
        if to not in TRANSITIONS[self.status]:
            if self.status in DECIDED:
                raise RequestAlreadyDecided(f"request {self.reference} is already {self.status}")
            raise TransitionNotAllowed(f"a request that is {self.status} cannot become {to}")
