"""The API's JSON: orjson, with non-string keys allowed (as the views and the log write them)."""

from __future__ import annotations

from typing import Any

import orjson
from orjson import loads

__all__ = ["dumps", "loads"]


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
