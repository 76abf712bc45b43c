"""What every BackOffice use case builds on: the ports it was given, loading an aggregate as a
NotFound when it is not there, and saving as a StaleVersion when someone else saved first."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Sequence, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import IntegrityError, Recording

from application.errors import NotFound, StaleVersion, SubjectIndexMissing
from application.ports import Clock, PersonalData, ReferenceIssuer, SubjectIndex
from domain.allowance import AllowanceRules
from domain.catalogue import FeeSchedule
from domain.calendar import bangkok_day
from domain.organizations import Directory
from domain.payment import Payment
from domain.rules import RuleBook
from domain.service_request import ServiceRequest
from domain.tax_notice import TaxNotice
from domain.tax_roll import TaxRoll

_A = TypeVar("_A", ServiceRequest, Payment)


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
        subject_index: SubjectIndex | None = None,
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
        # The keyed blind index of national IDs: ids derived from a person (an allowance
        # recipient's, a booking ledger's) are made from it, never from the plain ID.
        self.subject_index = subject_index

    def subject_ref(self, national_id: str) -> str:
        """The person's keyed reference (the blind index of their national ID), which the ids
        derived from a person are made of: the same person gives the same id, and nobody without
        the key can compute it from a national ID."""
        if self.subject_index is None:
            raise SubjectIndexMissing("ids derived from a person need the keyed blind index (subject_index=)")
        return self.subject_index.reference(national_id)

    def fees_on(self, at: datetime) -> FeeSchedule:
        """The fees in force on the Bangkok day of ``at`` (the rule book keeps each day's schedule)."""
        return self.fees if self.rules is None else self.rules.fee_schedule(bangkok_day(at))

    def allowance_rules(self, day: date, organization: str | None = None) -> AllowanceRules:
        """The elderly-allowance rules in force on ``day`` (the shipped defaults without a rule book)."""
        if self.rules is None:
            return AllowanceRules()
        return self.rules.elderly_allowance(day, organization)

    # -- loading -----------------------------------------------------------------------------

    def get_request(self, request_id: UUID, version: int | None = None) -> ServiceRequest:
        return self._get(ServiceRequest, request_id, version, "no such service request")

    def get_payment(self, payment_id: UUID, version: int | None = None) -> Payment:
        return self._get(Payment, payment_id, version, "no such payment")

    def _get(self, kind: type[_A], aggregate_id: UUID, version: int | None, missing: str) -> _A:
        """The aggregate of class ``kind`` (at ``version``), or NotFound saying ``missing``."""
        try:
            found = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(missing) from None
        if not isinstance(found, kind):
            raise NotFound(missing)
        return found

    def get_notice(self, notice_id: UUID, version: int | None = None) -> TaxNotice:
        try:
            notice = self.repository.get(notice_id, version=version)
        except AggregateNotFoundError:
            raise NotFound("no such tax notice") from None
        if not isinstance(notice, TaxNotice):
            raise NotFound("no such tax notice")
        return notice

    def find_roll(self, roll_id: UUID) -> TaxRoll | None:
        try:
            roll = self.repository.get(roll_id)
        except AggregateNotFoundError:
            return None
        return roll if isinstance(roll, TaxRoll) else None

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's ``save``, collecting the pending events of OneStop's aggregates directly.

        eventsourcing's ``ProcessingEvent.collect_events`` asks of every object whether it is a
        ``DomainEventProtocol``, then a ``CollectEventsProtocol``: runtime-checkable Protocols,
        whose checks in Python 3.11 walk the protocol's members each time (more than the rest of
        a small save). An aggregate (a ``BaseAggregate``, which has no ``originator_id`` or
        ``originator_version``, so it is never taken for an event) has its events collected
        and is kept by id exactly as the library does; anything else (a domain event, another
        kind of object, None) goes through the library's own checks. The rest is the library's
        ``save``: record, snapshots, ``_notify`` and the deprecated ``notify``."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        events = processing.events
        aggregates = processing.aggregates
        for obj in objs:
            if isinstance(obj, BaseAggregate) and not hasattr(obj, "originator_version"):
                events.extend(obj.collect_events())
                aggregates[obj.id] = obj
            else:
                processing.collect_events(obj)
        processing.saved_kwargs.update(kwargs)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        self.notify(processing.events)  # the library's deprecated hook, as its save calls it
        return recordings

    def save_at(self, *aggregates: Any) -> int | None:
        """``save``; the log position of the last event saved (IntegrityError when another
        writer saved one of the aggregates first)."""
        return last_position(self.save(*aggregates))

    def _save(self, *aggregates: Any) -> int | None:
        try:
            return self.save_at(*aggregates)
        except IntegrityError:
            raise StaleVersion("the request was changed by someone else; reload and try again") from None


def last_position(recordings: Sequence[Recording[Any]]) -> int | None:
    """The log position of the last of a save's events (None when it saved none)."""
    return max((r.notification.id for r in recordings), default=None)
