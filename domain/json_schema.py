"""What OneStop's own JSON Schema formats mean, in plain Python (the standard library only), so
the domain owns their definition. The schemas themselves are data beside the rules they serve
(`domain.catalogue`, `domain.submission`); they are checked by `application.json_schema`, which
wraps a maintained JSON Schema library that the dependency rule keeps out of the domain.
"""

from __future__ import annotations

import re

_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def is_month(value: str) -> bool:
    """``month``: a calendar month as ``YYYY-MM`` (the hotel-fee filing period)."""
    return _MONTH.fullmatch(value) is not None


# Formats beyond the standard ones (date, date-time, uuid ...), by name, for the validator.
CUSTOM_FORMATS = {"month": is_month}
