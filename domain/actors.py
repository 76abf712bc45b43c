"""Who acted, as recorded on every event."""

from __future__ import annotations

from dataclasses import dataclass
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

    def as_dict(self) -> dict[str, Any]:
        return {"sub": self.sub, "role": self.role, "org": self.org}

    @property
    def is_staff(self) -> bool:
        return self.role in ("officer", "admin")


SYSTEM = Actor(sub="onestop", role="system")
