"""A small JSON Schema (2020-12 subset) checker, so the domain can check request details
without a framework. The same schema dicts are published in the OpenAPI document and by
`GET /v1/services/{code}`, so front-ends draw forms from exactly what is enforced here.

Supported keywords: type, properties, required, additionalProperties (false), enum, const,
minLength, maxLength, pattern, minimum, maximum, format (date, date-time, month), items,
minItems, maxItems.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _format_ok(fmt: str, value: str) -> bool:
    try:
        if fmt == "date":
            date.fromisoformat(value)
            return len(value) == 10
        if fmt == "date-time":
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.tzinfo is not None
        if fmt == "month":
            return bool(re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value))
    except ValueError:
        return False
    return True


def _is_type(value: Any, expected: str) -> bool:
    if isinstance(value, bool) and expected in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[expected])


def check(schema: dict[str, Any], value: Any, path: str = "") -> list[tuple[str, str]]:
    """Return ``(field path, problem)`` pairs; empty when ``value`` satisfies ``schema``."""
    errors: list[tuple[str, str]] = []
    where = path or "(body)"
    expected = schema.get("type")
    if expected is not None:
        allowed = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, t) for t in allowed):
            return [(where, f"must be of type {' or '.join(allowed)}")]
    if "const" in schema and value != schema["const"]:
        errors.append((where, f"must be {schema['const']!r}"))
    if "enum" in schema and value not in schema["enum"]:
        errors.append((where, "must be one of " + ", ".join(map(str, schema["enum"]))))
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append((where, f"must be at least {schema['minLength']} characters"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append((where, f"must be at most {schema['maxLength']} characters"))
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            errors.append((where, f"must match {schema['pattern']}"))
        if "format" in schema and not _format_ok(schema["format"], value):
            errors.append((where, f"must be a valid {schema['format']}"))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append((where, f"must be at least {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            errors.append((where, f"must be at most {schema['maximum']}"))
    elif isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append((f"{path}.{name}" if path else name, "is required"))
        for name, item in value.items():
            sub = f"{path}.{name}" if path else name
            if name in props:
                errors.extend(check(props[name], item, sub))
            elif schema.get("additionalProperties") is False:
                errors.append((sub, "is not a known field"))
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append((where, f"must have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append((where, f"must have at most {schema['maxItems']} items"))
        if "items" in schema:
            for i, item in enumerate(value):
                errors.extend(check(schema["items"], item, f"{path}[{i}]"))
    return errors
