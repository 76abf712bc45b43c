"""The elderly allowance over HTTP: the register of recipients (list, read, suspend, resume) and
the monthly runs (start, progress, the CSV report for the Department of Local Administration)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.consistency import position_headers, wait_for_follower
from api.http import idempotency_key, json_response, parse_uuid, read_json
from api.pagination import keyset_page
from api.problems import HttpProblem
from application.access import STAFF
from application.ports import AllowanceQueries
from domain.allowance import MONTH, RECIPIENT_STATUSES

MAX_REASON = 500


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise HttpProblem(422, "Invalid body", "the body must be a JSON object", [("(body)", "must be an object")])
    return body


class AllowancesApi:
    def __init__(self, queries: AllowanceQueries) -> None:
        self.queries = queries

    def routes(self) -> web.RouteTableDef:
        routes = web.RouteTableDef()
        routes.get("/v1/allowances/recipients")(self.list_recipients)
        routes.get("/v1/allowances/recipients/{id}")(self.get_recipient)
        routes.post("/v1/allowances/recipients/{id}/{action:suspend|resume}")(self.change_recipient)
        routes.post("/v1/allowances/runs")(self.start_run)
        routes.get("/v1/allowances/runs/{id}")(self.get_run)
        return routes

    async def list_recipients(self, request: web.Request) -> web.Response:
        actor = authenticate(request, *STAFF)
        filters: dict[str, Any] = {}
        organization = request.query.get("organization")
        if actor.role == "officer":
            if organization not in (None, actor.org):
                raise HttpProblem(403, "Forbidden", "an officer lists the recipients of their own organisation",
                                  [("organization", f"must be {actor.org}")])
            organization = actor.org
        filters["organization"] = organization
        status = request.query.get("status")
        if status is not None and status not in RECIPIENT_STATUSES:
            raise HttpProblem(400, "Bad query parameter", f"unknown status {status!r}", [("status", "must be one of " + ", ".join(RECIPIENT_STATUSES))])
        filters["status"] = status
        band = request.query.get("band")
        if band is not None:
            if not band.isdigit() or not 1 <= int(band) <= 100_000:
                raise HttpProblem(400, "Bad query parameter", "band is the monthly amount in baht, such as 700", [("band", "must be a whole number of baht")])
            filters["band_amount_satang"] = int(band) * 100
        await self._wait_for_register(request)
        return await keyset_page(request, lambda limit, after: self.queries.list_recipients(filters, limit, after[0] if after else None),
                                 lambda r: [r["id"]], kinds=("uuid",), default=50, most=500, from_views=False)

    async def _wait_for_register(self, request: web.Request) -> None:
        """``?min_position=`` (a suspend's OneStop-Position): the list reads the register alone, so
        it waits (at most as long as reads of the views wait) for the register's own position."""
        await wait_for_follower(request, self.queries.position, "register")

    async def get_recipient(self, request: web.Request) -> web.Response:
        actor = authenticate(request, *STAFF)
        rid = UUID(parse_uuid(request.match_info["id"]))
        ctx = request.app[CTX]
        state = await ctx.bus.call(ctx.app.read_recipient, rid, actor)
        return json_response(state, headers={"ETag": f'"{state["version"]}"'})

    async def change_recipient(self, request: web.Request) -> web.Response:
        actor = authenticate(request, *STAFF)
        rid = UUID(parse_uuid(request.match_info["id"]))
        body = _object(await read_json(request))
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            raise HttpProblem(422, "Invalid body", f"a reason is required (1 to {MAX_REASON} characters)", [("reason", "is required")])
        ctx = request.app[CTX]
        state = await ctx.bus.call(ctx.app.change_recipient, rid, request.match_info["action"], reason.strip(), actor)
        return json_response(state, headers={"ETag": f'"{state["version"]}"', **position_headers(state)})

    async def start_run(self, request: web.Request) -> web.Response:
        actor = authenticate(request, *STAFF)
        # Required as on every creating POST; a run is idempotent by organisation and month
        # itself, so a second call with any key answers the first run (200).
        idempotency_key(request)
        body = _object(await read_json(request))
        errors = []
        organization, month = body.get("organization"), body.get("month")
        if not isinstance(organization, str) or not organization:
            errors.append(("organization", "is required"))
        if not isinstance(month, str) or not MONTH.match(month):
            errors.append(("month", "must be a month such as 2027-01"))
        unknown = sorted(set(body) - {"organization", "month"})
        errors += [(name, "is not a field of a run") for name in unknown]
        if errors:
            raise HttpProblem(422, "Invalid body", "the body does not describe a run", errors)
        ctx = request.app[CTX]
        state, created = await ctx.bus.call(ctx.app.start_run, organization, month, actor)
        headers = {"Location": f"/v1/allowances/runs/{state['id']}", **position_headers({"position": state.pop("position", None)})}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return json_response(state, status=202 if created else 200, headers=headers)

    async def get_run(self, request: web.Request) -> web.StreamResponse:
        actor = authenticate(request, *STAFF)
        rid = UUID(parse_uuid(request.match_info["id"]))
        ctx = request.app[CTX]
        if "text/csv" in request.headers.get("Accept", ""):
            text = await ctx.bus.call(ctx.app.run_report_csv, rid, actor)
            return web.Response(text=text, content_type="text/csv", charset="utf-8",
                                headers={"Content-Disposition": f'attachment; filename="allowance-run-{rid}.csv"'})
        state = await ctx.bus.call(ctx.app.run_summary, rid, actor)
        return json_response(state)
