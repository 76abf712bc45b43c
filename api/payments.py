"""Payments over HTTP: read, the PromptPay QR as an image, and cash taken at a counter."""

from __future__ import annotations

import io

import segno
from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.consistency import read_change, read_visible, written
from api.http import parse_uuid, state_response
from api.problems import HttpProblem
from application.access import READERS, STAFF
from domain.payment import AWAITING_PAYMENT

routes = web.RouteTableDef()


async def _payment(request: web.Request) -> dict:
    actor = authenticate(request, *READERS)
    return await read_visible(request, actor, "payment", parse_uuid(request.match_info["id"]))


@routes.get("/v1/payments/{id}")
async def get_payment(request: web.Request) -> web.Response:
    if "as_of" in request.query and request.app[CTX].as_of_payment is not None:
        return await request.app[CTX].as_of_payment(request)
    return state_response(await _payment(request))


@routes.get("/v1/payments/{id}/qr")
async def payment_qr(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "png")
    if fmt not in ("png", "svg"):
        raise HttpProblem(400, "Bad query parameter", "format must be png or svg", [("format", "must be png or svg")])
    document = await _payment(request)
    if document["status"] != AWAITING_PAYMENT:
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
    actor, payment_id, version, body = await read_change(request, STAFF)
    ctx = request.app[CTX]
    outcome = await ctx.bus.call(ctx.app.record_cash, payment_id, body, actor, version)
    related = "notice" if outcome.state.get("notice_id") else "request"
    return written(outcome.state, body={**outcome.state, related: outcome.related})
