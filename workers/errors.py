"""The workers' errors."""

from __future__ import annotations

from domain.errors import OneStopError


class WorkerError(OneStopError):
    """Root of the workers' errors."""


class NotConfigured(WorkerError):
    """The composition root did not hand this worker process what it needs."""


class UnsupportedBroker(WorkerError, ValueError):
    """The broker URL names neither RabbitMQ nor Redis."""


class NotDueYet(WorkerError):
    """A delayed job arrived before its time (clock skew): run it again later."""


class ForeignJob(WorkerError):
    """A job this worker's database does not know (another stack's message on a shared broker): dead-lettered, never done."""


class OutsideCallFailedForLines(WorkerError):
    """The bank's answer to a bulk transfer left lines unanswered: send the batch again."""
