"""The infrastructure's errors."""

from __future__ import annotations

from domain.errors import OneStopError


class InfrastructureError(OneStopError):
    """Root of the infrastructure's errors."""


class ProjectorBusy(InfrastructureError):
    """Another projector holds the views."""


class ChainHeadMoved(InfrastructureError):
    """Another writer extended the audit chain under this follower."""


class IssuersFileError(InfrastructureError):
    """The trusted-issuers file (ONESTOP_OIDC_ISSUERS) is missing, malformed or inconsistent."""


class InvalidKey(InfrastructureError, ValueError):
    """A key setting that is not base64 of the right length."""


class NoSuchEvent(InfrastructureError, LookupError):
    """No event at that position of the log."""


class UnknownDataSubject(InfrastructureError, LookupError):
    """An event with personal fields whose data subject is not known."""


class PersonalDataUnsupported(InfrastructureError, TypeError):
    """Personal-data encryption installed on an event store that cannot write its keys."""


class RevealerMissing(InfrastructureError, RuntimeError):
    """A follower that reads encrypted events was built without the personal-data revealer."""
