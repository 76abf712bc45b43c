"""What the back office offers: services, organisations and the OpenAPI document (health is in
`api.health`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.app_key import CTX
from api.http import json_response
from api.openapi import openapi_document
from api.problems import HttpProblem
from domain.catalogue import SERVICES

routes = web.RouteTableDef()


@routes.get("/v1/services")
async def list_services(request: web.Request) -> web.Response:
    # civil.appointment is left out: /v1/appointments replaced it (GET /v1/services/civil.appointment says so).
    return json_response({"items": [s.as_dict() for s in SERVICES.values() if s.accepts_submissions]})


@routes.get("/v1/services/{code}")
async def get_service(request: web.Request) -> web.Response:
    service = SERVICES.get(request.match_info["code"])
    if service is None:
        raise HttpProblem(404, "Not found", f"no service {request.match_info['code']!r}", [("code", "is not a known service")])
    ctx = request.app[CTX]
    fees = ctx.app.fees
    fee: dict[str, Any] = {"kind": service.fee_kind}
    if service.fee_kind == "per_copy":
        fee["per_copy_satang_by_document"] = dict(fees.certified_copy_satang)
    elif service.fee_kind == "flat_permit":
        fee["amount_satang"] = fees.flyer_permit_satang
        fee["amount_satang_by_organization"] = dict(fees.flyer_permit_satang_by_organization)
    elif service.fee_kind == "hotel_fee":
        fee["rate_bp_by_organization"] = dict(fees.hotel_fee_rate_bp)
        fee["due_day_by_organization"] = dict(fees.hotel_fee_due_day)
    offered_at = [o.code for o in ctx.app.directory if service.offered_at(o)]
    return json_response({**service.as_dict(), "fee": fee, "offered_at": offered_at, "details_schema": service.details_schema})


@routes.get("/v1/organizations")
async def list_organizations(request: web.Request) -> web.Response:
    kind = request.query.get("kind")
    province = request.query.get("province")
    items = [
        o.as_dict() for o in request.app[CTX].app.directory
        if (kind is None or o.kind.value == kind) and (province is None or o.province == province)
    ]
    return json_response({"items": items})


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())
