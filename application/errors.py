"""The application layer's errors: what a use case can refuse, independent of HTTP."""

from __future__ import annotations

from domain.errors import OneStopError


class ApplicationError(OneStopError):
    """Root of the application layer's errors."""


class NotFound(ApplicationError):
    """No such request or payment, or the actor may not see it."""


class Forbidden(ApplicationError):
    """The actor's role or organisation may not do this (``errors`` names a field that would allow it)."""

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


class OutsideCallFailed(ApplicationError):
    """An outside system failed in a way worth retrying (timeout, 5xx, connection refused)."""


class OutsideCallRefused(ApplicationError):
    """An outside system refused the call for good (4xx): retrying will not help."""


class AccessLogUnavailable(ApplicationError):
    """Reads of personal data cannot be recorded now (the access log's buffer is full), so they are refused."""


class InvalidToken(ApplicationError):
    """A token that must not be trusted (signature, issuer, algorithm, key, audience, time, claims)."""


class SignInFailed(ApplicationError):
    """The identity provider refused or botched a browser sign-in (code exchange, ID token)."""


class IdentityProviderUnavailable(ApplicationError):
    """A trusted issuer's discovery document or keys could not be fetched; try again shortly."""


class ViewOutOfStep(ApplicationError, LookupError):
    """A view cannot apply an event: the row of its aggregate is missing (the event is set aside)."""


class UnknownAction(ApplicationError, ValueError):
    """An action name that the access table does not know (a programming error)."""


class InvalidCursor(ApplicationError, ValueError):
    """A cursor that is not one OneStop issued."""


class SubjectIndexMissing(ApplicationError):
    """An id derived from a person (recipient, booking ledger) was asked for without the keyed blind index."""
