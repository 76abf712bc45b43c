"""OpenAPI paths: Counter appointments."""

from __future__ import annotations

from typing import Any

from api.openapi_paths.common import NULLABLE_STRING, TIMESTAMP, json_content, problems, schema_ref


def add_appointments(paths: dict[str, Any], schemas: dict[str, Any], id_param: dict[str, Any], idem: dict[str, Any],
                      if_match: dict[str, Any], min_position: dict[str, Any]) -> None:
    """Counter appointments (they replace the civil.appointment service)."""
    from application.appointments import BOOK_SCHEMA, BOOKABLE_SERVICES, CANCEL_SCHEMA, CHECK_IN_SCHEMA, RESCHEDULE_SCHEMA
    from domain.appointments import APPOINTMENT_STATUSES
    from domain.organizations import SEED_ORGANIZATIONS

    bangkok_time = {"type": "string", "format": "date-time", "description": "Asia/Bangkok, with its offset (+07:00)"}
    schemas["Appointment"] = {
        "type": "object",
        "required": ["id", "organization", "service", "start", "end", "status", "version"],
        "properties": {
            "id": {"type": "string", "format": "uuid"}, "organization": {"type": "string"}, "service": {"type": "string"},
            "start": bangkok_time, "end": bangkok_time, "status": {"type": "string", "enum": list(APPOINTMENT_STATUSES)},
            "applicant": {"type": "object", "properties": {"national_id": {"type": "string"}, "name": {"type": "string"}}},
            "request_id": {"type": ["string", "null"], "description": "the service request a check-in started"},
            "reminded": {"type": "boolean"}, "version": {"type": "integer"}, "position": {"type": ["integer", "null"]},
            "booked_at": TIMESTAMP, "updated_at": TIMESTAMP,
        },
    }
    schemas["Booking"] = BOOK_SCHEMA
    schemas["Appointment.cancel"] = CANCEL_SCHEMA
    schemas["Appointment.reschedule"] = RESCHEDULE_SCHEMA
    schemas["Appointment.check-in"] = CHECK_IN_SCHEMA
    orgs = {"type": "string", "enum": [o.code for o in SEED_ORGANIZATIONS]}
    services = {"type": "string", "enum": list(BOOKABLE_SERVICES)}
    day = {"type": "string", "format": "date"}

    def query(name: str, schema: dict[str, Any], required: bool = False, description: str = "") -> dict[str, Any]:
        return {"name": name, "in": "query", "required": required, "schema": schema, **({"description": description} if description else {})}

    state = {"description": "the appointment", **json_content(schema_ref("Appointment"))}
    span = [query("from", day, False, "first Bangkok day (default today)"),
            query("to", day, False, "last Bangkok day (default from); at most 30 days after from, else 422")]
    paths["/v1/appointments/slots"] = {"get": {
        "summary": "A counter's slots with seats, booked and available, Bangkok time (closed days have none); at most 31 days",
        "parameters": [query("organization", orgs, True), query("service", services, True), *span, min_position],
        "responses": {"200": {"description": "slots, in time order", **json_content({"type": "array", "items": {
            "type": "object", "required": ["start", "end", "seats", "booked", "available"], "properties": {
                "start": bangkok_time, "end": bangkok_time, "seats": {"type": "integer"}, "booked": {"type": "integer"},
                "available": {"type": "integer", "description": "0 for a slot that has begun"}}}})},
            **problems(400, 401, 422, 503)},
    }}
    paths["/v1/appointments/closed-days"] = {"get": {
        "summary": "An organisation's closed days (Thai public holidays and its own closures) between from and to; at most 31 days",
        "parameters": [query("organization", orgs, True), *span],
        "responses": {"200": {"description": "closed days, in date order", **json_content({"type": "array", "items": {
            "type": "object", "required": ["date", "name"], "properties": {"date": day, "name": {"type": "string"}}}})},
            **problems(400, 401, 422)},
    }}
    paths["/v1/appointments"] = {
        "post": {
            "summary": "Book a counter slot (a citizen for themself, an officer of the organisation for a caller); replaces the civil.appointment service",
            "parameters": [idem], "requestBody": {"required": True, **json_content(schema_ref("Booking"))},
            "responses": {"201": {"description": "booked", **json_content(schema_ref("Appointment"))},
                          "409": {"description": "problem: slot-full (every seat taken) or too-many-bookings (the applicant's limit for the service)",
                                  "content": {"application/problem+json": {"schema": schema_ref("Problem")}}},
                          **problems(400, 401, 403, 422)},
        },
        "get": {
            "summary": "Appointments by start time: officers their organisation's, citizens their own",
            "parameters": [query("organization", orgs), query("day", day, False, "a Bangkok day"), query("service", services),
                           query("status", {"type": "string", "enum": list(APPOINTMENT_STATUSES)}),
                           query("limit", {"type": "integer", "minimum": 1, "maximum": 200}), query("cursor", {"type": "string"}), min_position],
            "responses": {"200": {"description": "a page", **json_content({"type": "object", "properties": {
                "items": {"type": "array", "items": schema_ref("Appointment")}, "next_cursor": NULLABLE_STRING}})}, **problems(400, 401, 403, 503)},
        },
    }
    paths["/v1/appointments/{id}"] = {"get": {
        "summary": "One appointment", "parameters": [id_param, min_position],
        "responses": {"200": state, **problems(401, 403, 404)},
    }}
    for action, summary, code in (("cancel", "Cancel a booking and free its seat", "200"),
                                  ("reschedule", "Move a booking to another slot (the new seat is taken and the old freed at once)", "200"),
                                  ("check-in", "The applicant is at the counter: start the service request (channel counter), linked both ways", "201")):
        paths[f"/v1/appointments/{{id}}/{action}"] = {"post": {
            "summary": summary, "parameters": [id_param, if_match],
            "requestBody": {"required": action == "reschedule", **json_content(schema_ref(f"Appointment.{action}"))},
            "responses": {code: state, **problems(400, 401, 403, 404, 409, 412, 422)},
        }}
