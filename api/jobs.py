"""Outstanding and failed outside work, for officers and admins."""

from __future__ import annotations

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.pagination import keyset_page, time_and_id
from api.problems import HttpProblem
from application.access import STAFF

routes = web.RouteTableDef()


@routes.get("/v1/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    actor = authenticate(request, *STAFF)
    status = request.query.get("status", "pending")
    if status not in ("pending", "failed"):
        raise HttpProblem(400, "Bad query parameter", "status must be pending or failed", [("status", "must be pending or failed")])
    organization = actor.org if actor.role == "officer" else request.query.get("organization")
    return await keyset_page(request, lambda limit, after: request.app[CTX].read_model.list_jobs(status, organization, limit, after),
                             time_and_id("created_at", "id"))
