"""The application layer's errors: what a use case can refuse, independent of HTTP."""

from __future__ import annotations

from domain.errors import OneStopError


class ApplicationError(OneStopError):
    """Root of the application layer's errors."""


class NotFound(ApplicationError):
    """No such request or payment, or the actor may not see it."""


class Forbidden(ApplicationError):
    """The actor's role or organisation may not do this; ``errors`` names a field that would
    make it allowed, if one would."""

    def __init__(self, detail: str, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class StaleVersion(ApplicationError):
    """The caller's If-Match version is not the current one, or a concurrent change won."""

    def __init__(self, detail: str, current_version: int | None = None) -> None:
        super().__init__(detail)
        self.current_version = current_version


class IdempotencyKeyReused(ApplicationError):
    """The same Idempotency-Key came with a different body."""


class OutsideSystemUnavailable(ApplicationError):
    """The registry or bank did not answer usefully; the call may be retried."""
