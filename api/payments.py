"""Payments over HTTP: read, the PromptPay QR as an image, and cash taken at a counter."""

from __future__ import annotations

import io
from uuid import UUID

import segno
from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.consistency import position_headers, read_visible
from api.http import etag, if_match, json_response, parse_uuid, read_json
from api.problems import HttpProblem
from application.access import READERS, STAFF

routes = web.RouteTableDef()


async def _payment(request: web.Request) -> dict:
    actor = authenticate(request, *READERS)
    return await read_visible(request, actor, "payment", parse_uuid(request.match_info["id"]))


@routes.get("/v1/payments/{id}")
async def get_payment(request: web.Request) -> web.Response:
    if "as_of" in request.query and request.app[CTX].as_of_payment is not None:
        return await request.app[CTX].as_of_payment(request)
    document = await _payment(request)
    return json_response(document, headers={"ETag": etag(document["version"])})


@routes.get("/v1/payments/{id}/qr")
async def payment_qr(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "png")
    if fmt not in ("png", "svg"):
        raise HttpProblem(400, "Bad query parameter", "format must be png or svg", [("format", "must be png or svg")])
    document = await _payment(request)
    if document["status"] != "awaiting_payment":
        raise HttpProblem(409, "Payment not open", f"the payment is {document['status']}; there is nothing to pay")
    qr = segno.make(document["promptpay_payload"], error="m")
    out = io.BytesIO()
    if fmt == "png":
        qr.save(out, kind="png", scale=8, border=4)
        return web.Response(body=out.getvalue(), content_type="image/png")
    qr.save(out, kind="svg", scale=8, border=4, xmldecl=False)
    return web.Response(body=out.getvalue(), content_type="image/svg+xml")


@routes.post("/v1/payments/{id}/record-cash")
async def record_cash(request: web.Request) -> web.Response:
    actor = authenticate(request, *STAFF)
    payment_id = UUID(parse_uuid(request.match_info["id"]))
    version = if_match(request)
    body = await read_json(request)
    ctx = request.app[CTX]
    outcome = await ctx.bus.call(ctx.app.record_cash, payment_id, body, actor, version)
    return json_response({**outcome.state, "request": outcome.related}, headers={"ETag": etag(outcome.state["version"]), **position_headers(outcome.state)})
