"""The money trail over HTTP: receipts (JSON or PDF, void, public verification), the daily
reconciliation with the bank, and the revenue export for the organisation's accounting."""

from __future__ import annotations

import csv
import io
from typing import Any
from uuid import UUID

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.consistency import position_headers, wait_for_views
from api.pagination import keyset_page
from api.http import etag, if_match, json_response, parse_uuid, query_date, query_int, read_json
from api.problems import HttpProblem
from application.access import ORGANIZATION_VIEWERS, STAFF
from application.presentation import verification_document
from domain.calendar import bangkok_day
from domain.promptpay import format_amount
from domain.receipt import fiscal_year

routes = web.RouteTableDef()
# Receipts, reconciliations and revenue are an organisation's books: its officers, auditors, admins.
BOOK_READERS = ORGANIZATION_VIEWERS
REVENUE_COLUMNS = ("receipt_number", "issued_on", "fiscal_year", "organization", "revenue_code", "revenue_code_confirmed",
                   "description", "amount", "amount_satang", "method", "reference", "payment_id", "status")


def _organization_query(request: web.Request) -> str:
    """``?organization=``: required, known, and the caller's own for an officer."""
    actor = authenticate(request, *BOOK_READERS)
    code = request.query.get("organization")
    if not code:
        raise HttpProblem(400, "Bad query parameter", "organization is required", [("organization", "is required")])
    if code not in request.app[CTX].app.directory and code != "UNASSIGNED":
        raise HttpProblem(400, "Bad query parameter", "no such organisation", [("organization", "is not a known organisation")])
    if actor.role == "officer" and actor.org != code:
        raise HttpProblem(403, "Forbidden", f"officers of {actor.org} see their own organisation's money only")
    return code


def _day(request: web.Request) -> Any:
    if "day" not in request.query:
        raise HttpProblem(400, "Bad query parameter", "day is required (YYYY-MM-DD, a Bangkok day)", [("day", "is required")])
    return query_date(request, "day", bangkok_day(request.app[CTX].app.clock.now()))


def _verify_url(request: web.Request, receipt_id: str) -> str:
    base = request.app[CTX].public_url or str(request.url.origin())
    return f"{base.rstrip('/')}/v1/receipts/{receipt_id}/verify"


@routes.get("/v1/receipts")
async def list_receipts(request: web.Request) -> web.Response:
    code = _organization_query(request)
    year = query_int(request, "fiscal_year", fiscal_year(bangkok_day(request.app[CTX].app.clock.now())), 2500, 2700)

    async def fetch(limit: int, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        return await request.app[CTX].money_trail.list_receipts(code, year, limit, None if after is None else after[0])  # type: ignore[no-any-return]

    return await keyset_page(request, fetch, lambda row: [row["sequence"]], kinds=("sequence",))


async def _receipt(request: web.Request) -> dict[str, Any]:
    actor = authenticate(request, "citizen", *BOOK_READERS)
    receipt_id = parse_uuid(request.match_info["id"])
    ctx = request.app[CTX]
    # The event store answers for a receipt the views do not have yet, and checks who may read it.
    return await ctx.bus.call(ctx.app.read_receipt, UUID(receipt_id), actor)  # type: ignore[no-any-return]


@routes.get("/v1/receipts/{id}")
async def get_receipt(request: web.Request) -> web.Response:
    document = await _receipt(request)
    accept = request.headers.get("Accept", "")
    if "application/pdf" in accept:
        ctx = request.app[CTX]
        if ctx.receipt_printer is None:
            raise HttpProblem(406, "Not acceptable", "receipts cannot be printed here (no Thai font installed)")
        organization = ctx.app.directory.get(document["organization"])
        pdf = await ctx.bus.call(ctx.receipt_printer.pdf, document, organization.as_dict() if organization else {},
                                 _verify_url(request, document["id"]))
        return web.Response(body=pdf, content_type="application/pdf", headers={
            "Content-Disposition": f'inline; filename="{document["number"]}.pdf"', "ETag": etag(document["version"])})
    return json_response(document, headers={"ETag": etag(document["version"])})


@routes.get("/v1/receipts/{id}/verify")
async def verify_receipt(request: web.Request) -> web.Response:
    """Public: what a receipt's QR leads to. Number, amount, day and status; no personal data."""
    receipt_id = parse_uuid(request.match_info["id"])
    ctx = request.app[CTX]
    document = await ctx.money_trail.get_receipt(receipt_id)
    if document is not None:
        return json_response(verification_document(document))
    # Not in the views yet (scanned the moment it was printed): the event store answers.
    return json_response(await ctx.bus.call(ctx.app.verify_receipt, UUID(receipt_id)))


@routes.post("/v1/receipts/{id}/void")
async def void_receipt(request: web.Request) -> web.Response:
    actor = authenticate(request, *STAFF)
    receipt_id = UUID(parse_uuid(request.match_info["id"]))
    version = if_match(request)
    body = await read_json(request)
    ctx = request.app[CTX]
    outcome = await ctx.bus.call(ctx.app.void_receipt, receipt_id, body, actor, version)
    return json_response(outcome.state, headers={"ETag": etag(outcome.state["version"]), **position_headers(outcome.state)})


@routes.get("/v1/reconciliations")
async def get_reconciliation(request: web.Request) -> web.Response:
    code = _organization_query(request)
    day = _day(request)
    ctx = request.app[CTX]
    return json_response(await ctx.bus.call(ctx.app.get_reconciliation, code, day))


@routes.get("/v1/revenue")
async def revenue(request: web.Request) -> web.Response:
    """One CSV line per receipt item of the day, for posting into the accounting system."""
    code = _organization_query(request)
    day = _day(request)
    await wait_for_views(request)
    receipts = await request.app[CTX].money_trail.receipts_on(code, day)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(REVENUE_COLUMNS)
    for receipt in receipts:
        for item in receipt["items"]:
            amount = item["amount_satang"] if receipt["status"] != "void" else 0
            writer.writerow([receipt["number"], receipt["issued_on"], receipt["fiscal_year"], receipt["organization"],
                             item.get("revenue_code", ""), str(item.get("revenue_code_confirmed", False)).lower(),
                             item["description"], format_amount(amount) if amount else "0.00", amount, receipt["method"],
                             receipt["reference"], receipt["payment_id"], receipt["status"]])
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="revenue-{code}-{day.isoformat()}.csv"'})
