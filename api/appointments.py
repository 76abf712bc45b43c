"""Counter appointments over HTTP: free slots, booking, cancel, reschedule, check-in, reads.
They replace the ``civil.appointment`` service (README "Appointments")."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.consistency import MAX_WAIT_SECONDS, min_position, position_headers, wait_for_views
from api.pagination import keyset_page, time_and_id
from api.http import etag, if_match, json_response, parse_uuid, query_date, read_idempotent, read_json
from api.problems import HttpProblem
from application.appointments import BOOKABLE_SERVICES, check_appointment_access
from application.access import AUDITORS, FILERS, STAFF
from application.errors import NotFound
from application.ports import AppointmentViews
from domain.appointments import APPOINTMENT_STATUSES, days, slots_on
from domain.calendar import BANGKOK, bangkok_day
from domain.catalogue import SERVICES

MAX_RANGE_DAYS = 31
# Who reads appointments: those who book them (citizens, officers, admins) and auditors.
READERS = tuple(dict.fromkeys((*FILERS, *AUDITORS)))


def _written(state: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(state, status=status, headers={"ETag": etag(state["version"]), **position_headers(state), **(headers or {})})


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), BANGKOK)


class AppointmentsApi:
    def __init__(self, views: AppointmentViews) -> None:
        self.views = views

    def routes(self) -> web.RouteTableDef:
        routes = web.RouteTableDef()
        routes.get("/v1/appointments/slots")(self.slots)
        routes.get("/v1/appointments/closed-days")(self.closed_days)
        routes.post("/v1/appointments")(self.book)
        routes.get("/v1/appointments")(self.list)
        routes.get("/v1/appointments/{id}")(self.get)
        routes.post("/v1/appointments/{id}/cancel")(self.cancel)
        routes.post("/v1/appointments/{id}/reschedule")(self.reschedule)
        routes.post("/v1/appointments/{id}/check-in")(self.check_in)
        return routes

    def _counter(self, request: web.Request) -> tuple[Any, date, date]:
        """The organisation and the Bangkok days ``from``..``to`` a calendar query asks about."""
        office = request.app[CTX].app
        organization = request.query.get("organization")
        org = office.directory.get(organization) if organization else None
        if org is None:
            raise HttpProblem(400, "Bad query parameter", "organization must be a known organisation code", [("organization", "is not a known organisation")])
        first = query_date(request, "from", bangkok_day(office.clock.now()))
        last = query_date(request, "to", first)
        # Well-formed but not acceptable: 422, as for bodies.
        if last < first:
            raise HttpProblem(422, "Invalid request", "to must not be before from", [("to", "is before from")])
        if (last - first).days >= MAX_RANGE_DAYS:
            raise HttpProblem(422, "Invalid request", f"ask for at most {MAX_RANGE_DAYS} days at once", [("to", f"is more than {MAX_RANGE_DAYS - 1} days after from")])
        return org, first, last

    async def slots(self, request: web.Request) -> web.Response:
        """``[{start, end, seats, booked, available}]`` for one counter service; closed days have no slots."""
        authenticate(request, *READERS)
        office = request.app[CTX].app
        org, first, last = self._counter(request)
        service = request.query.get("service")
        if service not in BOOKABLE_SERVICES:
            raise HttpProblem(400, "Bad query parameter", "service must be a service taken at the counter",
                              [("service", "must be one of " + ", ".join(BOOKABLE_SERVICES))])
        if not SERVICES[service].offered_at(org):
            raise HttpProblem(422, "Invalid request", f"{org.code} does not offer {service}", [("service", f"is not offered by {org.code}")])
        await wait_for_views(request)
        now = office.clock.now()
        rules = office.appointment_rules
        closed = rules.closed(org.code, first, last)
        taken = await self.views.seats_taken(org.code, service, _day_start(first), _day_start(last + timedelta(days=1)))
        items = []
        for day in days(first, last):
            if day in closed:
                continue
            calendar = rules.calendar(org.code, service, day)
            for slot in slots_on(calendar, day):
                booked = taken.get(slot.start, 0)
                available = 0 if slot.start <= now else max(0, calendar.seats - booked)
                items.append({"start": slot.start, "end": slot.end, "seats": calendar.seats, "booked": booked, "available": available})
        return json_response(items)

    async def closed_days(self, request: web.Request) -> web.Response:
        """``[{date, name}]``: the organisation's closed days (public holidays and its own closures)."""
        authenticate(request, *READERS)
        org, first, last = self._counter(request)
        closed = request.app[CTX].app.appointment_rules.closed(org.code, first, last)
        return json_response([{"date": d.isoformat(), "name": n} for d, n in sorted(closed.items())])

    async def book(self, request: web.Request) -> web.Response:
        actor = authenticate(request, *FILERS)
        key, body, body_hash = await read_idempotent(request)
        ctx = request.app[CTX]
        outcome = await ctx.bus.call(ctx.app.book_appointment, body, actor, key, body_hash)
        headers = {"Location": f"/v1/appointments/{outcome.state['id']}"}
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        return _written(outcome.state, 201, headers)

    async def list(self, request: web.Request) -> web.Response:
        actor = authenticate(request, *READERS)
        organization = request.query.get("organization")
        applicant = None
        if actor.role == "citizen":
            applicant, organization = actor.pid, organization
        elif actor.role == "officer":
            if organization is not None and organization != actor.org:
                raise HttpProblem(403, "Forbidden", "officers list their own organisation's appointments", [("organization", f"must be {actor.org}")])
            organization = actor.org
        service = request.query.get("service")
        if service is not None and service not in BOOKABLE_SERVICES:
            raise HttpProblem(400, "Bad query parameter", f"unknown service {service!r}", [("service", "must be a bookable service")])
        status = request.query.get("status")
        if status is not None and status not in APPOINTMENT_STATUSES:
            raise HttpProblem(400, "Bad query parameter", f"unknown status {status!r}", [("status", "must be one of " + ", ".join(APPOINTMENT_STATUSES))])
        since = until = None
        if "day" in request.query:
            day = query_date(request, "day", date.today())
            since, until = _day_start(day), _day_start(day + timedelta(days=1))

        async def fetch(limit: int, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
            return await self.views.list(organization=organization, applicant=applicant, service=service, status=status,
                                         since=since, until=until, limit=limit, after=after)

        return await keyset_page(request, fetch, time_and_id("start", "id"))

    async def get(self, request: web.Request) -> web.Response:
        actor = authenticate(request, *READERS)
        appointment_id = parse_uuid(request.match_info["id"])
        ctx = request.app[CTX]
        wanted = min_position(request)
        found = None
        if wanted is None or await ctx.read_model.wait_for_position(wanted, MAX_WAIT_SECONDS):
            found = await self.views.get(appointment_id)
        if found is not None:
            state, access = found
            check_appointment_access(actor, "read", access)
        else:  # reads see their writes: the views may not have it yet
            try:
                state = (await ctx.bus.call(ctx.app.read_appointment, UUID(appointment_id), actor)).state
            except NotFound:
                raise HttpProblem(404, "Not found", "no such appointment") from None
        return json_response(state, headers={"ETag": etag(state["version"])})

    async def _act(self, request: web.Request, use_case: str, roles: tuple[str, ...], empty: Any = None) -> Any:
        actor = authenticate(request, *roles)
        appointment_id = UUID(parse_uuid(request.match_info["id"]))
        version = if_match(request)
        body = await read_json(request, empty=empty)
        ctx = request.app[CTX]
        use = getattr(ctx.app, use_case)
        if use_case == "check_in_appointment":
            return await ctx.bus.call(use, appointment_id, body, actor)
        return await ctx.bus.call(use, appointment_id, body, actor, version)

    async def cancel(self, request: web.Request) -> web.Response:
        outcome = await self._act(request, "cancel_appointment", FILERS, empty={})
        return _written(outcome.state)

    async def reschedule(self, request: web.Request) -> web.Response:
        outcome = await self._act(request, "reschedule_appointment", FILERS)
        return _written(outcome.state)

    async def check_in(self, request: web.Request) -> web.Response:
        outcome = await self._act(request, "check_in_appointment", STAFF, empty={})
        state = {**outcome.state, "request": outcome.related}
        return _written(state, 201, {"Location": f"/v1/service-requests/{outcome.related['id']}"})
