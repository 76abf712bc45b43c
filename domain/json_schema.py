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
    if _fast_path(schema, value):
        return []
    return _check(schema, value, path)


def _fast_path(schema: dict[str, Any], value: Any) -> bool:
    """A quick yes for the common valid case of a flat object of strings and integers, so that
    only bad input pays for the full walk that names every problem."""
    if schema.get("type") != "object" or type(value) is not dict:
        return False
    props: dict[str, Any] = schema.get("properties", {})
    if schema.get("additionalProperties") is False and not value.keys() <= props.keys():
        return False
    for name in schema.get("required", ()):
        if name not in value:
            return False
    for name, item in value.items():
        sub = props.get(name)
        if sub is None:
            continue
        kind = sub.get("type")
        if kind == "string":
            if type(item) is not str or len(sub) > 4 and not _string_ok(sub, item):
                return False
            if not sub.get("minLength", 0) <= len(item) <= sub.get("maxLength", len(item)):
                return False
        elif kind == "integer":
            if type(item) is not int or not sub.get("minimum", item) <= item <= sub.get("maximum", item):
                return False
        elif kind == "object":
            if not _fast_path(sub, item):
                return False
        else:
            return False
        if "enum" in sub and item not in sub["enum"]:
            return False
    return True


def _string_ok(schema: dict[str, Any], value: str) -> bool:
    if "pattern" in schema and not _regex(schema["pattern"]).search(value):
        return False
    return "format" not in schema or _format_ok(schema["format"], value)


def _check(schema: dict[str, Any], value: Any, path: str = "") -> list[tuple[str, str]]:
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
                errors.extend(_check(props[name], item, sub))
            elif schema.get("additionalProperties") is False:
                errors.append((sub, "is not a known field"))
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append((where, f"must have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append((where, f"must have at most {schema['maxItems']} items"))
        if "items" in schema:
            for i, item in enumerate(value):
                errors.extend(_check(schema["items"], item, f"{path}[{i}]"))
    return errors
