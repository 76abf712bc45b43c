"""The DataSubject aggregate: a person whose personal data OneStop holds, as far as the log needs
to know them: only that their data was erased, when, on what legal basis and by whom.

It is keyed by the keyed blind index of the person's national ID (never the ID itself), and its
events carry no personal field. The person's data keys are deleted when it is recorded
(crypto-shredding, in the infrastructure), so that every copy of their personal fields, in the
log and in backups, reads as erased.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate

from domain.actors import Actor
from domain.errors import DomainError


class SubjectHasOpenRequests(DomainError):
    """A person with a request still open cannot be erased: the request needs their data."""


class DataSubject(BaseAggregate[UUID]):
    TOPIC = "onestop:DataSubject"

    class Event(AggregateEvent):
        actor: dict[str, Any]
        channel: str

    class Registered(Event, AggregateCreated):
        TOPIC = "onestop:DataSubject.Registered"
        blind_index: str

    class Erased(Event):
        """DataSubjectErased: the person's data keys are deleted."""

        TOPIC = "onestop:DataSubject.Erased"
        basis: str
        # The random ids of the person's key sets (not their national ID): every process that
        # reads the log forgets those keys on reading this.
        subjects: list[str]
        aggregates: int
        # "request" (the person asked, PDPA s.33) or "retention" (the retention period passed).
        reason: str = "request"

        def apply(self, subject: DataSubject) -> None:
            subject.erased_subjects.update(self.subjects)
            subject.erasures.append({"at": self.timestamp, "basis": self.basis, "reason": self.reason, "aggregates": self.aggregates})

    def __init__(self, *, blind_index: str, actor: dict[str, Any], channel: str) -> None:
        self.blind_index = blind_index
        self.erasures: list[dict[str, Any]] = []
        self.erased_subjects: set[str] = set()

    @classmethod
    def register(cls, *, id: UUID, blind_index: str, actor: Actor, at: datetime) -> DataSubject:
        return cls._create(cls.Registered, id=id, timestamp=at, blind_index=blind_index, actor=actor.as_dict(), channel="system")

    def erase(self, *, basis: str, subjects: list[str], aggregates: int, reason: str, actor: Actor, channel: str, at: datetime) -> None:
        self.trigger_event(self.Erased, basis=basis, subjects=subjects, aggregates=aggregates, reason=reason,
                           actor=actor.as_dict(), channel=channel, timestamp=at)
