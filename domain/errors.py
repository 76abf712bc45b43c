"""The root of OneStop's errors and the domain's subtree."""

from __future__ import annotations


class OneStopError(Exception):
    """Root of every error OneStop raises on purpose."""


class DomainError(OneStopError):
    """A business rule was broken."""


class InvalidCommand(DomainError):
    """The command's data break a rule; ``errors`` names the fields."""

    def __init__(self, detail: str, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidValue(DomainError, ValueError):
    """A value breaks a rule of its own kind (a malformed payload, a negative amount)."""


class TransitionNotAllowed(DomainError):
    """The request's status does not allow this change."""


class RequestAlreadyDecided(TransitionNotAllowed):
    """The request was already approved, rejected, completed or withdrawn."""


class PaymentNotOpen(DomainError):
    """The payment is no longer awaiting money."""
