"""An organisation's own views: its work queue and its daily counts."""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.consistency import wait_for_views
from api.http import json_response, query_date
from api.pagination import keyset_page, time_and_id
from api.problems import HttpProblem
from application.access import ORGANIZATION_VIEWERS
from domain.calendar import bangkok_day

routes = web.RouteTableDef()


def _organization(request: web.Request) -> str:
    actor = authenticate(request, *ORGANIZATION_VIEWERS)
    code = request.match_info["code"]
    if code not in request.app[CTX].app.directory:
        raise HttpProblem(404, "Not found", f"no organisation {code!r}", [("code", "is not a known organisation")])
    if actor.role == "officer" and actor.org != code:
        raise HttpProblem(403, "Forbidden", f"officers of {actor.org} see their own organisation's views only")
    return code


@routes.get("/v1/organizations/{code}/work-queue")
async def work_queue(request: web.Request) -> web.Response:
    """Open requests the organisation is responsible for, oldest first, with their due dates."""
    code = _organization(request)
    return await keyset_page(request, lambda limit, after: request.app[CTX].read_model.work_queue(code, limit, after),
                             time_and_id("submitted_at", "request_id"))


@routes.get("/v1/organizations/{code}/daily-counts")
async def daily_counts(request: web.Request) -> web.Response:
    """Requests filed, decided and paid per Bangkok day and service."""
    code = _organization(request)
    today = bangkok_day(request.app[CTX].app.clock.now())
    until = query_date(request, "to", today)
    # max(): thirty days before 0001-01-05 is before the calendar starts.
    since = query_date(request, "from", max(until, date.min + timedelta(days=30)) - timedelta(days=30))
    if since > until or (until - since).days > 366:
        raise HttpProblem(400, "Bad query parameter", "from must be on or before to, at most a year apart", [("from", "is out of range")])
    await wait_for_views(request)
    items = await request.app[CTX].read_model.daily_counts(code, since, until)
    return json_response({"items": items})
