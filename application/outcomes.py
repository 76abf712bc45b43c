"""What a use case returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    """A use case's result: the resulting state, as clients see it."""

    state: dict[str, Any]
    replayed: bool = False
    related: dict[str, Any] | None = field(default=None)
