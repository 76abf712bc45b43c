"""Small pieces every handler uses: JSON in and out, ETags, cursors."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from aiohttp import web

from api.problems import HttpProblem
from api.encoding import dumps, loads

MAX_BODY = 1024 * 1024


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=dumps(data), content_type="application/json", headers=headers)


async def read_json(request: web.Request, *, empty: Any = None) -> Any:
    raw = await request.read()
    if not raw.strip():
        if empty is not None:
            return empty
        raise HttpProblem(400, "Malformed JSON", "the request body is empty", [("(body)", "a JSON object is required")])
    try:
        return loads(raw)
    except orjson.JSONDecodeError as error:
        raise HttpProblem(400, "Malformed JSON", f"the request body is not JSON: {error}", [("(body)", "is not valid JSON")]) from None


def etag(version: int) -> str:
    return f'"{version}"'


def if_match(request: web.Request) -> int | None:
    value = request.headers.get("If-Match")
    if value is None or value.strip() == "*":
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise HttpProblem(400, "Bad If-Match", "If-Match must be an ETag from a previous response, such as \"3\"", [("If-Match", "is not a version ETag")])
    return int(text)


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str | None, size: int) -> tuple[Any, ...] | None:
    if not cursor:
        return None
    try:
        values = loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        values = None
    if not isinstance(values, list) or len(values) != size:
        raise HttpProblem(400, "Bad cursor", "the cursor is not one this API issued", [("cursor", "is not valid")])
    return tuple(values)


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.lstrip("-").isdigit() or not lo <= int(raw) <= hi:
        raise HttpProblem(400, "Bad query parameter", f"{name} must be an integer from {lo} to {hi}", [(name, f"must be an integer from {lo} to {hi}")])
    return int(raw)


def parse_uuid(value: str, field: str = "id") -> str:
    from uuid import UUID

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
