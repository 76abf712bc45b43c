"""Small pieces every handler uses: JSON in and out, ETags, cursors, and the strict parsers of
what arrives in bodies, query strings and headers."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import orjson
from aiohttp import web

from api.problems import HttpProblem
from api.encoding import dumps, loads
from application.commands import request_hash

MAX_BODY = 1024 * 1024
# No schema of ours nests deeper than a few levels; the cap is checked before anything recurses.
MAX_DEPTH = 32
INT64_MAX = 2**63 - 1
# C0 control characters other than tab, line feed and carriage return (PostgreSQL refuses NUL in
# text and jsonb; the others have no place in a form field), and lone surrogates (not encodable
# as UTF-8). CR is allowed: browsers send text areas' line breaks as CRLF.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]{1,20}")


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=dumps(data), content_type="application/json", headers=headers)


async def read_json(request: web.Request, *, empty: Any = None) -> Any:
    raw = await request.read()
    if not raw.strip():
        if empty is not None:
            return empty
        raise HttpProblem(400, "Malformed JSON", "the request body is empty", [("(body)", "a JSON object is required")])
    return parse_json_body(raw)


def parse_json_body(raw: bytes) -> Any:
    """Decode a JSON body and make it storable (see `storable`)."""
    try:
        value = loads(raw)
    except orjson.JSONDecodeError as error:
        raise HttpProblem(400, "Malformed JSON", f"the request body is not JSON: {error}", [("(body)", "is not valid JSON")]) from None
    if _plainly_storable(raw):
        return value
    return storable(value)


def _plainly_storable(raw: bytes) -> bool:
    """True for the usual body, cheaply and without walking it: too few brackets to nest
    deeply; no escape at all, so none that could hide a control character or a decomposed
    letter (JSON cannot carry control characters raw); and NFC text (strings sit between
    quotes, which compose with nothing, so an NFC document has NFC strings). Anything else is
    walked by `storable`."""
    return (
        raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH
        and b"\\" not in raw
        and (raw.isascii() or unicodedata.is_normalized("NFC", raw.decode()))
    )


def shown(text: str, limit: int = 60) -> str:
    """User input as it may be echoed in a problem: control characters and surrogates escaped."""
    text = text[:limit]
    return text if text.isprintable() else text.encode("unicode_escape", "backslashreplace").decode("ascii")


def storable(value: Any) -> Any:
    """The JSON value with every string (keys too) in Unicode NFC, or a problem naming each
    field that holds a character no store should take (see `_UNSTORABLE`) or that nests deeper
    than `MAX_DEPTH`. Iterative, so a deeply nested body cannot exhaust the stack."""
    errors: list[tuple[str, str]] = []
    root: list[Any] = [None]
    # (container to fill, key or index in it, value, field path, depth)
    stack: list[tuple[Any, Any, Any, str, int]] = [(root, 0, value, "", 0)]
    while stack:
        parent, slot, item, path, depth = stack.pop()
        if isinstance(item, str):
            parent[slot] = _text(item, path, errors)
        elif isinstance(item, dict):
            if depth >= MAX_DEPTH:
                raise HttpProblem(400, "Body nested too deep", f"the body nests more than {MAX_DEPTH} levels", [(path or "(body)", f"nests more than {MAX_DEPTH} levels")])
            copy: dict[str, Any] = {}
            parent[slot] = copy
            for key, sub in item.items():
                name = _text(key, f"{path}.{shown(key)}" if path else shown(key), errors)
                where = f"{path}.{name}" if path else name
                copy[name] = None
                stack.append((copy, name, sub, where, depth + 1))
        elif isinstance(item, list):
            if depth >= MAX_DEPTH:
                raise HttpProblem(400, "Body nested too deep", f"the body nests more than {MAX_DEPTH} levels", [(path or "(body)", f"nests more than {MAX_DEPTH} levels")])
            items: list[Any] = [None] * len(item)
            parent[slot] = items
            stack.extend((items, i, sub, f"{path}[{i}]", depth + 1) for i, sub in enumerate(item))
        else:
            parent[slot] = item
        if len(errors) >= 20:
            break
    if errors:
        raise HttpProblem(422, "Invalid request", "the body holds characters that cannot be stored", errors)
    return root[0]


def _text(text: str, path: str, errors: list[tuple[str, str]]) -> str:
    if text.isascii():
        if text.isprintable() or _UNSTORABLE.search(text) is None:
            return text
    elif _UNSTORABLE.search(text) is None:
        return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)
    errors.append((path or "(body)", "holds a control character (only tab, line feed and carriage return are allowed) or a lone surrogate"))
    return text


def check_query(request: web.Request) -> None:
    """Refuse (400, naming the parameter) a query string whose names or values hold characters
    no store should take: they reach SQL as filters."""
    for name, value in request.query.items():
        if _UNSTORABLE.search(name) or _UNSTORABLE.search(value):
            raise HttpProblem(400, "Bad query parameter", f"{shown(name)} holds a control character",
                              [(shown(name), "holds a control character or a lone surrogate")])


def idempotency_key(request: web.Request) -> str:
    """The ``Idempotency-Key`` every POST that creates something must carry (1 to 255 printable
    characters): the same key and body replay the first response."""
    key = request.headers.get("Idempotency-Key")
    if not key or len(key) > 255 or not key.isprintable():
        raise HttpProblem(400, "Idempotency-Key required", "send an Idempotency-Key header (1 to 255 printable characters) with every request that creates something",
                          [("Idempotency-Key", "is required")])
    return key


async def read_idempotent(request: web.Request) -> tuple[str, Any, str]:
    """A creating POST's ``Idempotency-Key``, its JSON body, and the body's hash (what a replay
    with the same key must match)."""
    key = idempotency_key(request)
    body = await read_json(request)
    return key, body, request_hash(body)


def etag(version: int) -> str:
    return f'"{version}"'


def state_response(state: dict[str, Any], *, body: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A request's or payment's state (or ``body``) with the state's version as its ETag."""
    return json_response(state if body is None else body, status=status, headers={"ETag": etag(state["version"]), **(headers or {})})


def ascii_int(raw: str, lo: int, hi: int) -> int | None:
    """``raw`` as an integer from ``lo`` to ``hi`` when it is written in ASCII digits (an
    optional leading minus), else None. ``str.isdigit`` and ``int`` accept ``²`` and ``٣``."""
    digits = raw[1:] if raw.startswith("-") else raw
    if _DIGITS.fullmatch(digits) is None:
        return None
    value = int(raw)
    return value if lo <= value <= hi else None


def if_match(request: web.Request) -> int | None:
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    version = ascii_int(text, 0, INT64_MAX)
    if version is None:
        raise HttpProblem(400, "Bad If-Match", "If-Match must be an ETag from a previous response, such as \"3\"", [("If-Match", "is not a version ETag")])
    return version


def parse_position(raw: str, name: str) -> int:
    """A log position (a cursor such as ``00000000000000000042``, or ``42``), at most int64."""
    position = ascii_int(raw.strip(), 0, INT64_MAX)
    if position is None:
        raise HttpProblem(400, "Bad cursor", f"{shown(name)} must be a cursor this API issued", [(name, "is not a valid cursor")])
    return position


def query_position(request: web.Request, name: str) -> int:
    """A cursor from the query string (a log position, as ``next_cursor`` and the feed's
    ``sequence`` give it); 0 when absent."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return 0
    return parse_position(raw, name)


def query_time(request: web.Request, name: str) -> datetime | None:
    """An RFC 3339 time from the query string (with its offset), in UTC; None when absent."""
    raw = request.query.get(name)
    if raw is None:
        return None
    text = raw.strip().replace(" ", "+").replace("z", "Z").replace("Z", "+00:00")
    try:
        # ASCII only: fromisoformat reads some non-ASCII digits. Converting to UTC overflows
        # for the first and last hours of the calendar (0001-01-01T00:00+14:00).
        value = datetime.fromisoformat(text) if text.isascii() else None
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise HttpProblem(400, "Bad query parameter", f"{name} must be an RFC 3339 time with an offset, such as 2026-05-01T09:30:00+07:00",
                      [(name, "must be an RFC 3339 date-time with an offset")])


def query_date(request: web.Request, name: str, default: date) -> date:
    """A calendar date (YYYY-MM-DD, ASCII digits) from the query string, or ``default``."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        if raw.isascii() and len(raw) == 10:  # fromisoformat reads some non-ASCII digits
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise HttpProblem(400, "Bad query parameter", f"{name} must be a date (YYYY-MM-DD)", [(name, "must be a date")])


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(dumps(values)).decode().rstrip("=")


# What a cursor's elements may be: a timestamp as isoformat() writes it, or a UUID.
_CURSOR_PARTS = {
    "time": lambda v: isinstance(v, str) and v.isascii() and _aware(v),
    "uuid": lambda v: isinstance(v, str) and _is_uuid(v),
    # a position in a numbered series, such as a receipt's sequence in its book
    "sequence": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31,
}


def decode_cursor(cursor: str | None, size: int | tuple[str, ...]) -> tuple[Any, ...] | None:
    """The values of a cursor this API issued; ``size`` names each element's kind ("time",
    "uuid") so that a forged cursor of the right length but wrong shape is refused too."""
    if not cursor:
        return None
    kinds = size if isinstance(size, tuple) else None
    count = len(kinds) if kinds is not None else size
    try:
        values = loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))) if cursor.isascii() else None
    except (binascii.Error, ValueError):
        values = None
    if (not isinstance(values, list) or len(values) != count
            or (kinds is not None and not all(_CURSOR_PARTS[k](v) for k, v in zip(kinds, values)))):
        raise HttpProblem(400, "Bad cursor", "the cursor is not one this API issued", [("cursor", "is not valid")])
    return tuple(values)


def _aware(text: str) -> bool:
    try:
        value = datetime.fromisoformat(text)
        return value.tzinfo is not None and value.astimezone(UTC) is not None
    except (ValueError, OverflowError):
        return False


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
        return text.isascii()
    except ValueError:
        return False


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = ascii_int(raw, lo, hi)
    if value is None:
        raise HttpProblem(400, "Bad query parameter", f"{name} must be an integer from {lo} to {hi}", [(name, f"must be an integer from {lo} to {hi}")])
    return value


def parse_uuid(value: str, field: str = "id") -> str:
    try:
        return str(UUID(value))
    except ValueError:
        raise HttpProblem(404, "Not found", f"no such resource: {field} is not a UUID", [(field, "is not a UUID")]) from None


def next_link(request: web.Request, cursor: str | None, parameter: str = "cursor") -> dict[str, str]:
    """``Link: <...>; rel="next"`` (RFC 8288) for a page that has a next one: the request's own
    address (path and query, so it resolves against whatever host and scheme the client used)
    with the cursor replaced. No next page, no header."""
    if cursor is None:
        return {}
    following = request.rel_url.update_query({parameter: cursor})
    return {"Link": f'<{following}>; rel="next"'}
