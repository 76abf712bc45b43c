"""What the back office offers: services, organisations and the OpenAPI document (health is in
`api.health`)."""

from __future__ import annotations

from aiohttp import web

from api.app_key import CTX
from domain.organizations import OrganizationKind
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
    offered_at = [o.code for o in ctx.app.directory if service.offered_at(o)]
    return json_response({**service.as_dict(), "fee": service.fee_terms(ctx.app.fees), "offered_at": offered_at, "details_schema": service.details_schema})


@routes.get("/v1/organizations")
async def list_organizations(request: web.Request) -> web.Response:
    kind = request.query.get("kind")
    province = request.query.get("province")
    kinds = [k.value for k in OrganizationKind]
    if kind is not None and kind not in kinds:
        raise HttpProblem(400, "Bad query parameter", f"kind must be one of {', '.join(kinds)}", [("kind", "must be one of " + ", ".join(kinds))])
    if province is not None and len(province) > 100:
        raise HttpProblem(400, "Bad query parameter", "province is at most 100 characters", [("province", "is at most 100 characters")])
    items = [
        o.as_dict() for o in request.app[CTX].app.directory
        if (kind is None or o.kind.value == kind) and (province is None or o.province == province)
    ]
    return json_response({"items": items})


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())
