"""Who acted, as recorded on every event."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

ROLES = ("citizen", "officer", "auditor", "integrator", "admin", "dpo", "system")
CHANNELS = ("web", "mobile", "counter", "system")


@dataclass(frozen=True)
class Actor:
    sub: str
    role: str
    org: str | None = None
    # A citizen's national ID (from ThaiD's `pid` claim, or `sub` for development tokens).
    pid: str | None = None
    # The `iss` of the token that named this actor (None: OneStop itself, such as a worker).
    issuer: str | None = None
    # A citizen's identity assurance level as the issuer vouched for it ("2.1", "2.3", ...);
    # None when the token does not say (development tokens without an `ial` claim).
    ial: str | None = None

    def as_dict(self) -> dict[str, Any]:
        recorded: dict[str, Any] = {"sub": self.sub, "role": self.role, "org": self.org}
        # Added fields (events are contracts): present only when known, so older shapes stay valid.
        if self.issuer is not None:
            recorded["issuer"] = self.issuer
        if self.role == "citizen" and self.ial is not None:
            recorded["ial"] = self.ial
        return recorded

def assurance_level(value: object) -> Decimal | None:
    """An identity assurance level as a number ("2.3" -> 2.3), or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return None
    try:
        level = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return level if level.is_finite() and 0 <= level <= 9 else None


SYSTEM = Actor(sub="onestop", role="system")
