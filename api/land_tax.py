"""Land and building tax over HTTP: the tax roll's import (CSV or NDJSON, streamed), notices,
the owner's self-check with the amount due on a day, payments and warning notices."""

from __future__ import annotations

import asyncio
import csv
from datetime import date
from typing import Any
from uuid import UUID

import orjson
from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.http import decode_cursor, encode_cursor, etag, if_match, json_response, parse_uuid, query_int, read_json, next_link
from api.problems import HttpProblem
from api.consistency import position_headers, wait_for_views
from application.access import READERS
from application.land_tax import MAX_ROWS, TAX_YEARS, can_see_notice, notice_document, parse_parcel
from application.ports import LandTaxViews
from domain.calendar import bangkok_day
from domain.tax_roll import PARCEL_FIELDS

routes = web.RouteTableDef()
CSV_TYPES = ("text/csv",)
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson")
IMPORT_BATCH = 5000  # rows per transaction
MAX_IMPORT_BYTES = 64 * 1024 * 1024
MAX_REJECTED_SHOWN = 1000
MAX_LINE_BYTES = 64 * 1024
_REQUIRED = ("parcel_id", "owner_id", "owner_kind", "owner_name", "land_use", "value_satang")


def _views(request: web.Request) -> LandTaxViews:
    views = request.app[CTX].land_tax
    if views is None:
        raise HttpProblem(404, "Not found", "land tax is not served here")
    return views


def _tax_year(request: web.Request) -> int:
    raw = request.match_info["tax_year"]
    if not raw.isdigit() or not TAX_YEARS[0] <= int(raw) <= TAX_YEARS[1]:
        raise HttpProblem(400, "Bad tax year", "tax_year is a Buddhist-era year such as 2569",
                          [("tax_year", f"must be from {TAX_YEARS[0]} to {TAX_YEARS[1]}")])
    return int(raw)


def _only(request: web.Request, *names: str) -> None:
    unknown = sorted(set(request.query) - set(names))
    if unknown:
        raise HttpProblem(400, "Bad query parameter", f"unknown query parameter {unknown[0]!r}", [(unknown[0], "is not a parameter of this call")])


def _on(request: web.Request) -> date:
    raw = request.query.get("on")
    if raw is None:
        return bangkok_day(request.app[CTX].app.clock.now())
    try:
        day = date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise HttpProblem(400, "Bad query parameter", "on must be a date, YYYY-MM-DD", [("on", "must be a date, YYYY-MM-DD")])
    return day


class _Rejections:
    def __init__(self) -> None:
        self.shown: list[dict[str, Any]] = []
        self.count = 0

    def add(self, line: int, field: str, message: str) -> None:
        self.count += 1
        if len(self.shown) < MAX_REJECTED_SHOWN:
            self.shown.append({"line": line, "field": field, "message": message})


async def _lines(request: web.Request, timeout: float) -> Any:
    """The body's lines, a chunk's worth at a time, each chunk awaited under the body deadline
    (a stalled client is dropped). Memory holds one chunk and one partial line."""
    total, rest = 0, b""
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await request.content.readany()
        except TimeoutError:
            raise HttpProblem(408, "Request timeout", f"the roll stopped arriving for {timeout:g} s", [("(body)", "arrived too slowly")]) from None
        if not chunk:
            if rest:
                yield [rest]
            return
        total += len(chunk)
        if total > MAX_IMPORT_BYTES:
            raise HttpProblem(413, "Too large", f"a roll import is at most {MAX_IMPORT_BYTES} bytes", [("(body)", "is too large")])
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        if len(rest) > MAX_LINE_BYTES:
            raise HttpProblem(400, "Line too long", "a line of the roll is too long", [("(body)", f"has a line over {MAX_LINE_BYTES} bytes")])
        if lines:
            yield lines


@routes.post(r"/v1/land-tax/{tax_year:\d{1,6}}/parcels")
async def import_parcels(request: web.Request) -> web.Response:
    actor = authenticate(request, "officer", "admin")
    tax_year = _tax_year(request)
    kind = request.content_type
    if kind not in CSV_TYPES + NDJSON_TYPES:
        raise HttpProblem(415, "Unsupported media type", "send the roll as text/csv (with a header line) or application/x-ndjson",
                          [("Content-Type", "must be text/csv or application/x-ndjson")])
    ctx = request.app[CTX]
    session = await ctx.bus.call(ctx.app.begin_parcel_import, tax_year, actor)
    header: list[str] | None = None
    rejected = _Rejections()
    accepted = unchanged = rows = 0
    seen: set[str] = set()
    batch: list[Any] = []
    line_no = 0
    saving: asyncio.Future[tuple[int, int]] | None = None
    stop = False
    async for chunk in _lines(request, ctx.limits.body_timeout_seconds):
        texts: list[str | None] = []
        for raw in chunk:
            line_no += 1
            try:
                texts.append(raw.decode("utf-8-sig" if line_no == 1 else "utf-8").rstrip("\r"))
            except UnicodeDecodeError:
                texts.append(None)
        first = line_no - len(chunk) + 1
        values_of = iter(csv.reader([t or "" for t in texts])) if kind in CSV_TYPES else None
        for offset, text in enumerate(texts):
            number = first + offset
            values = next(values_of) if values_of is not None else None
            if text is None:
                rejected.add(number, "(line)", "is not UTF-8")
                continue
            if not text.strip():
                continue
            if values is not None:
                if header is None:
                    header = [v.strip() for v in values]
                    unknown = [h for h in header if h not in PARCEL_FIELDS]
                    missing = [f for f in _REQUIRED if f not in header]
                    if unknown or missing or len(set(header)) != len(header):
                        name = (unknown or missing or ["(header)"])[0]
                        raise HttpProblem(422, "Bad header", "the CSV header names the fields: " + ", ".join(PARCEL_FIELDS),
                                          [(name, "is not a field of a roll row" if unknown else "is missing from the header" if missing else "appears twice")])
                    continue
                if len(values) != len(header):
                    rejected.add(number, "(line)", f"has {len(values)} fields; the header names {len(header)}")
                    continue
                obj: Any = dict(zip(header, values))
            else:
                try:
                    obj = orjson.loads(text)
                except orjson.JSONDecodeError:
                    rejected.add(number, "(line)", "is not JSON")
                    continue
            if rows >= MAX_ROWS:
                rejected.add(number, "(body)", f"over {MAX_ROWS} rows: this line and those after it are not imported")
                stop = True
                break
            rows += 1
            parsed = parse_parcel(obj)
            if isinstance(parsed, list):
                for field, message in parsed:
                    rejected.add(number, field, message)
                continue
            if parsed[0] in seen:
                rejected.add(number, "parcel_id", "appears twice in this import")
                continue
            seen.add(parsed[0])
            batch.append(parsed)
        if len(batch) >= IMPORT_BATCH:
            # Save this batch while the next one is parsed; one save at a time, in order.
            if saving is not None:
                a, u = await saving
                accepted, unchanged = accepted + a, unchanged + u
            saving = asyncio.ensure_future(ctx.bus.call(session.add, batch))
            batch = []
        if stop:
            break
    if saving is not None:
        a, u = await saving
        accepted, unchanged = accepted + a, unchanged + u
    if line_no == 0 or (kind in CSV_TYPES and header is None):
        raise HttpProblem(400, "Empty roll", "the body holds no rows", [("(body)", "holds no rows")])
    if batch:
        a, u = await ctx.bus.call(session.add, batch)
        accepted, unchanged = accepted + a, unchanged + u
    return json_response({"tax_year": tax_year, "accepted": accepted, "unchanged": unchanged, "rejected": rejected.shown,
                          "rejected_count": rejected.count, "version": session.roll.version},
                         headers=position_headers({"position": session.position}))


setattr(import_parcels, "streams_body", True)


@routes.post(r"/v1/land-tax/{tax_year:\d{1,6}}/notices")
async def issue_notices(request: web.Request) -> web.Response:
    actor = authenticate(request, "officer", "admin")
    tax_year = _tax_year(request)
    ctx = request.app[CTX]
    result = await ctx.bus.call(ctx.app.issue_notices, tax_year, actor)
    return json_response(result, headers=position_headers(result))


@routes.get("/v1/land-tax/notices")
async def list_notices(request: web.Request) -> web.Response:
    actor = authenticate(request, *READERS)
    _only(request, "owner_id", "tax_year", "organization", "cursor", "limit", "on", "min_position")
    owner_id = request.query.get("owner_id")
    if owner_id is not None and not (len(owner_id) == 13 and owner_id.isascii() and owner_id.isdigit()):
        raise HttpProblem(400, "Bad query parameter", "owner_id is 13 digits", [("owner_id", "must be 13 digits")])
    tax_year = None
    if "tax_year" in request.query:
        tax_year = query_int(request, "tax_year", 0, TAX_YEARS[0], TAX_YEARS[1])
    organization = request.query.get("organization")
    if actor.role == "citizen":
        if owner_id is not None and owner_id != actor.pid:
            return json_response({"items": [], "next_cursor": None})
        owner_id = actor.pid or "-"
    elif actor.role == "officer":
        organization = actor.org or "-"
    limit = query_int(request, "limit", 20, 1, 100)
    after = decode_cursor(request.query.get("cursor"), 3)
    await wait_for_views(request)
    rows = await _views(request).list_notices(organization=organization, owner_id=owner_id, tax_year=tax_year, limit=limit + 1, after=after)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor([rows[-1]["tax_year"], rows[-1]["owner_id"], rows[-1]["id"]])
    on = _on(request)
    staff = actor.role != "citizen"
    return json_response({"items": [notice_document(r, on, mask_owner=staff) for r in rows], "next_cursor": next_cursor},
                         headers=next_link(request, next_cursor))


@routes.get("/v1/land-tax/notices/{id}")
async def get_notice(request: web.Request) -> web.Response:
    actor = authenticate(request, *READERS)
    _only(request, "on", "min_position")
    nid = parse_uuid(request.match_info["id"])
    on = _on(request)
    await wait_for_views(request)
    row = await _views(request).get_notice(nid)
    ctx = request.app[CTX]
    if row is None:
        # Reads see their writes: a notice the views do not have yet comes from the log.
        document = await ctx.bus.call(ctx.app.notice_state, UUID(nid), actor, on)
    else:
        if not can_see_notice(actor, row["organization"], row["owner_id"]):
            raise HttpProblem(404, "Not found", "no such tax notice")
        document = notice_document(row, on, with_amount_due=True)
    return json_response(document, headers={"ETag": etag(document["version"])})


@routes.post("/v1/land-tax/notices/{id}/payments")
async def open_payment(request: web.Request) -> web.Response:
    actor = authenticate(request, "citizen", "officer", "admin")
    nid = UUID(parse_uuid(request.match_info["id"]))
    body = await read_json(request, empty={})
    ctx = request.app[CTX]
    outcome = await ctx.bus.call(ctx.app.open_notice_payment, nid, body, actor)
    headers = {"Location": f"/v1/payments/{outcome.state['id']}", "ETag": etag(outcome.state["version"]), **position_headers(outcome.state)}
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(outcome.state, status=201, headers=headers)


@routes.post("/v1/land-tax/notices/{id}/warnings")
async def record_warning(request: web.Request) -> web.Response:
    actor = authenticate(request, "citizen", "officer", "admin")
    nid = UUID(parse_uuid(request.match_info["id"]))
    version = if_match(request)
    body = await read_json(request)
    ctx = request.app[CTX]
    outcome = await ctx.bus.call(ctx.app.record_notice_warning, nid, body, actor, version)
    return json_response(outcome.state, status=201, headers={"ETag": etag(outcome.state["version"]), **position_headers(outcome.state)})
