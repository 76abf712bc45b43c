"""Outstanding and failed outside work, for officers and admins."""

from __future__ import annotations

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.consistency import wait_for_views
from api.http import decode_cursor, encode_cursor, json_response, query_int, next_link
from api.problems import HttpProblem

routes = web.RouteTableDef()


@routes.get("/v1/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    actor = authenticate(request, "officer", "admin")
    status = request.query.get("status", "pending")
    if status not in ("pending", "failed"):
        raise HttpProblem(400, "Bad query parameter", "status must be pending or failed", [("status", "must be pending or failed")])
    organization = actor.org if actor.role == "officer" else request.query.get("organization")
    limit = query_int(request, "limit", 50, 1, 200)
    after = decode_cursor(request.query.get("cursor"), ("time", "uuid"))
    await wait_for_views(request)
    items = await request.app[CTX].read_model.list_jobs(status, organization, limit + 1, after)
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor([items[-1]["created_at"].isoformat(), items[-1]["id"]])
    return json_response({"items": items, "next_cursor": next_cursor}, headers=next_link(request, next_cursor))
