"""The bank tells us who paid: signed payment notices, at least once, maybe twice, maybe late."""

from __future__ import annotations

import re
from uuid import UUID

from aiohttp import web

from api.app_key import CTX
from api.http import json_response, parse_json_body
from api.problems import HttpProblem
from application.bank_signature import NoticeNotAuthentic, check_notice
from domain.actors import Actor
from application.json_schema import check

routes = web.RouteTableDef()
BANK = Actor(sub="bank", role="system")
NOTICE_SCHEMA = {
    "type": "object",
    "properties": {
        "notice_id": {"type": "string", "minLength": 1, "maxLength": 100},
        "payment_id": {"type": "string", "minLength": 1, "maxLength": 100},
        "reference": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,20}$"},
        "amount_satang": {"type": "integer", "minimum": 1},
        "paid_at": {"type": "string", "maxLength": 40},
    },
    "required": ["payment_id", "reference", "amount_satang"],
}
_PROVIDER = re.compile(r"[a-z0-9-]{1,40}")


@routes.post("/v1/payment-notifications/{provider}")
async def payment_notice(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    provider = request.match_info["provider"]
    if not _PROVIDER.fullmatch(provider):
        raise HttpProblem(404, "Not found", "unknown payment provider", [("provider", "is not a known provider")])
    raw = await request.read()
    try:
        check_notice(ctx.bank_callback_secret, request.headers.get("X-Bank-Timestamp"), request.headers.get("X-Bank-Signature"),
                     provider, raw, ctx.app.clock.now().timestamp())
    except NoticeNotAuthentic as refused:
        raise HttpProblem(401, "Bad signature", str(refused), [(refused.field, str(refused))]) from None
    notice = parse_json_body(raw)
    errors = check(NOTICE_SCHEMA, notice)
    if errors:
        raise HttpProblem(422, "Invalid notice", "the notice lacks fields", errors)
    provider_payment_id = f"{provider}:{notice['payment_id']}"
    payment_id = await ctx.read_model.payment_for_reference(notice["reference"])
    if payment_id is None:
        # The views may not have the payment yet: wait until they have everything logged before
        # this notice arrived, then look again. If they are that far behind, the bank retries.
        head = await ctx.read_model.log_position()
        if not await ctx.read_model.wait_for_position(head, 5.0):
            raise HttpProblem(503, "Not ready", "the payment is not visible yet; send the notice again", headers={"Retry-After": "1"})
        payment_id = await ctx.read_model.payment_for_reference(notice["reference"])
    if payment_id is None:
        new = await ctx.bus.call(ctx.app.record_unmatched_payment, provider, provider_payment_id, notice["reference"], notice["amount_satang"], BANK)
        return json_response({"status": "unmatched", "recorded": new}, status=202)
    verdict, outcome = await ctx.bus.call(
        ctx.app.record_bank_payment, UUID(payment_id), reference=notice["reference"],
        amount_satang=notice["amount_satang"], provider_payment_id=provider_payment_id, actor=BANK,
    )
    return json_response({"status": verdict, "payment": outcome.state})
