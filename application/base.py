"""What every BackOffice use case builds on: the ports it was given, loading an aggregate as a
NotFound when it is not there, and saving as a StaleVersion when someone else saved first."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from application.errors import NotFound, StaleVersion
from application.ports import Clock, PersonalData, ReferenceIssuer
from domain.catalogue import FeeSchedule
from domain.calendar import bangkok_day
from domain.organizations import Directory
from domain.payment import Payment
from domain.rules import RuleBook
from domain.service_request import ServiceRequest


class BackOfficeBase(Application[UUID]):
    """The application's state and its loading and saving; the use cases are in subclasses."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        directory: Directory,
        fees: FeeSchedule,
        rules: RuleBook | None = None,
        biller_id: str,
        references: ReferenceIssuer,
        clock: Clock,
    ) -> None:
        super().__init__(env)
        self.directory = directory
        self.fees = fees
        # With a rule book, each command uses the fees in force on its own (Bangkok) day, so a
        # dated change takes effect without a restart; ``fees`` is then the schedule at startup.
        self.rules = rules
        self.biller_id = biller_id
        self.references = references
        self.clock = clock
        # Per-person keys and erasure (PDPA); set by the composition root, None in memory.
        self.personal_data: PersonalData | None = None

    def fees_on(self, at: datetime) -> FeeSchedule:
        """The fees in force on the Bangkok day of ``at``."""
        if self.rules is None:
            return self.fees
        return self.rules.fee_schedule(bangkok_day(at))

    # -- loading -----------------------------------------------------------------------------

    def get_request(self, request_id: UUID, version: int | None = None) -> ServiceRequest:
        try:
            request = self.repository.get(request_id, version=version)
        except AggregateNotFoundError:
            raise NotFound("no such service request") from None
        if not isinstance(request, ServiceRequest):
            raise NotFound("no such service request")
        return request

    def get_payment(self, payment_id: UUID, version: int | None = None) -> Payment:
        try:
            payment = self.repository.get(payment_id, version=version)
        except AggregateNotFoundError:
            raise NotFound("no such payment") from None
        if not isinstance(payment, Payment):
            raise NotFound("no such payment")
        return payment

    def _save(self, *aggregates: Any) -> int | None:
        try:
            recordings = self.save(*aggregates)
        except IntegrityError:
            raise StaleVersion("the request was changed by someone else; reload and try again") from None
        return max((r.notification.id for r in recordings), default=None)
