"""Webhook subscriptions over HTTP: create (the signing secret is shown once), list, read,
delete, the deliveries with their attempts, and replay from a cursor."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.http import json_response, parse_uuid, query_int, query_position, next_link, read_idempotent
from api.pagination import keyset_page
from api.problems import HttpProblem
from application.access import INTEGRATORS
from application.cloudevents import PUBLISHED_TYPES, cursor_of
from application.json_schema import check
from application.ports import SubscriptionPolicy, SubscriptionStore
from domain.actors import Actor
from domain.errors import InvalidCommand

SUBSCRIPTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "^https?://",
                "description": "where deliveries are POSTed; loopback and private addresses are refused"},
        "types": {"type": "array", "maxItems": len(PUBLISHED_TYPES), "items": {"type": "string", "enum": list(PUBLISHED_TYPES)},
                  "description": "CloudEvents types to deliver; empty or absent: every type"},
        "organization": {"type": ["string", "null"], "maxLength": 100, "description": "only this organisation's events"},
    },
    "required": ["url"],
    "additionalProperties": False,
}


class SubscriptionsApi:
    def __init__(self, store: SubscriptionStore, settings: SubscriptionPolicy, check_target: Any) -> None:
        self.store = store
        self.settings = settings
        # async (url, allow_private) -> reason the URL is refused, or None
        self.check_target = check_target

    def routes(self) -> web.RouteTableDef:
        routes = web.RouteTableDef()
        routes.post("/v1/subscriptions")(self.create)
        routes.get("/v1/subscriptions")(self.list)
        routes.get("/v1/subscriptions/{id}")(self.get)
        routes.delete("/v1/subscriptions/{id}")(self.delete)
        routes.get("/v1/subscriptions/{id}/deliveries")(self.deliveries)
        routes.post("/v1/subscriptions/{id}/replay")(self.replay)
        return routes

    @staticmethod
    def _owner(actor: Actor) -> str | None:
        # Integrators manage their own subscriptions; admins see everyone's.
        return None if actor.role == "admin" else actor.sub

    async def create(self, request: web.Request) -> web.Response:
        actor = authenticate(request, *INTEGRATORS)
        key, body, body_hash = await read_idempotent(request)
        errors = check(SUBSCRIPTION_SCHEMA, body)
        if errors:
            raise InvalidCommand("the body does not fit a subscription", errors)
        organization = body.get("organization")
        if organization is not None and organization not in request.app[CTX].app.directory:
            raise InvalidCommand("unknown organisation", [("organization", f"{organization} is not a known organisation")])
        if actor.role == "integrator" and actor.org and organization != actor.org:
            raise InvalidCommand("this token subscribes to its own organisation's events only", [("organization", f"must be {actor.org}")])
        refused = await self.check_target(body["url"], self.settings.allow_private)
        if refused is not None:
            raise InvalidCommand(f"the url {refused}", [("url", refused)])
        subscription, replayed = await self.store.create(
            owner=actor.sub, url=body["url"], types=sorted(set(body.get("types") or [])), organization=organization,
            idempotency_key=key, request_hash=body_hash,
        )
        headers = {"Location": f"/v1/subscriptions/{subscription['id']}"}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return json_response(subscription, status=201, headers=headers)

    async def list(self, request: web.Request) -> web.Response:
        actor = authenticate(request, *INTEGRATORS)
        owner = self._owner(actor)
        return await keyset_page(request, lambda limit, after: self.store.list(owner, limit, after[0] if after else None),
                                 lambda row: [row["id"]], kinds=("uuid",), from_views=False)

    async def _found(self, request: web.Request, actor: Actor) -> str:
        subscription_id = parse_uuid(request.match_info["id"])
        if await self.store.get(subscription_id, self._owner(actor)) is None:
            raise HttpProblem(404, "Not found", "no such subscription")
        return subscription_id

    async def get(self, request: web.Request) -> web.Response:
        actor = authenticate(request, *INTEGRATORS)
        subscription = await self.store.get(parse_uuid(request.match_info["id"]), self._owner(actor))
        if subscription is None:
            raise HttpProblem(404, "Not found", "no such subscription")
        return json_response(subscription)

    async def delete(self, request: web.Request) -> web.Response:
        actor = authenticate(request, *INTEGRATORS)
        if not await self.store.delete(parse_uuid(request.match_info["id"]), self._owner(actor)):
            raise HttpProblem(404, "Not found", "no such subscription")
        return web.Response(status=204)

    async def deliveries(self, request: web.Request) -> web.Response:
        """Deliveries in log order, each with every attempt (time, HTTP status, error)."""
        actor = authenticate(request, *INTEGRATORS)
        subscription_id = await self._found(request, actor)
        after = query_position(request, "after")
        limit = query_int(request, "limit", 50, 1, 500)
        items = await self.store.deliveries(subscription_id, after, limit)
        for item in items:
            item["cursor"] = cursor_of(item.pop("position"))
        next_cursor = items[-1]["cursor"] if len(items) == limit else None
        return json_response({"items": items, "next_cursor": next_cursor}, headers=next_link(request, next_cursor, "after"))

    async def replay(self, request: web.Request) -> web.Response:
        """Send again every matching event after the cursor ``from`` (a feed ``sequence``);
        the subscription becomes active again. The dispatcher does the work: 202."""
        actor = authenticate(request, *INTEGRATORS)
        if "from" not in request.query:
            raise HttpProblem(400, "Bad query parameter", "from is required: a cursor (an event's sequence)", [("from", "is required")])
        from_position = query_position(request, "from")
        replay = await self.store.replay(parse_uuid(request.match_info["id"]), self._owner(actor), from_position, actor.sub)
        if replay is None:
            raise HttpProblem(404, "Not found", "no such subscription")
        return json_response({"id": replay["id"], "from": cursor_of(replay["from_position"]), "requested_at": replay["requested_at"]}, status=202)
