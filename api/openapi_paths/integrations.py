"""OpenAPI paths: Auditors' and integrators' paths."""

from __future__ import annotations

from typing import Any

from api.openapi_paths.common import NULLABLE_STRING, TIMESTAMP, json_content, problems, schema_ref


def add_audit_and_integrations(paths: dict[str, Any], schemas: dict[str, Any], id_param: dict[str, Any], idem: dict[str, Any]) -> None:
    """Auditors' and integrators' paths: the audit log, as_of, the event feed, SSE, webhooks."""
    from api.subscriptions import SUBSCRIPTION_SCHEMA
    from application.cloudevents import PUBLISHED_TYPES

    def query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}

    cursor = {"type": "string", "pattern": "^[0-9]{1,20}$"}
    after = query("after", cursor, "cursor: the next_cursor (or an event's sequence) of an earlier answer; events after it")
    page = {"type": "object", "properties": {"items": {"type": "array"}, "next_cursor": NULLABLE_STRING}}
    schemas["CloudEvent"] = {
        "type": "object", "description": "CloudEvents 1.0, structured JSON; national IDs masked, names left out",
        "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "sequence", "data"],
        "properties": {
            "specversion": {"const": "1.0"}, "id": {"type": "string", "description": "stable: <aggregate id>.<version>"},
            "source": {"type": "string", "description": "/onestop/<organization responsible>"},
            "type": {"type": "string", "enum": list(PUBLISHED_TYPES)}, "subject": {"type": "string", "format": "uuid"},
            "time": TIMESTAMP, "datacontenttype": {"const": "application/json"},
            "sequence": {**cursor, "description": "the event's cursor; sorts as the log does"}, "data": {"type": "object"},
        },
    }
    schemas["SubscriptionCreate"] = SUBSCRIPTION_SCHEMA
    schemas["Subscription"] = {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"}, "url": {"type": "string"}, "types": {"type": "array", "items": {"type": "string"}},
        "organization": NULLABLE_STRING, "status": {"type": "string", "enum": ["active", "disabled"]}, "disabled_reason": NULLABLE_STRING,
        "created_at": TIMESTAMP, "secret": {"type": "string", "description": "whsec_...: only in the answer to the create"}}}
    schemas["ChainVerdict"] = {"type": "object", "required": ["status", "checked"], "properties": {
        "status": {"type": "string", "enum": ["intact", "broken"]}, "checked": {"type": "integer"},
        "first_broken_position": {"type": "integer"}, "reason": {"type": "string"}, "log_position": {"type": "integer"},
        "head": {"type": ["object", "null"], "properties": {"position": {"type": "integer"}, "link": {"type": "string"}, "count": {"type": "integer"}}}}}
    time_range = [query("from", TIMESTAMP, "events that happened at or after this time"), query("to", TIMESTAMP, "events that happened at or before this time")]
    organization = query("organization", {"type": "string"}, "only events of this organisation's requests and payments")
    as_of = query("as_of", TIMESTAMP, "auditors and admins: the state at this moment, replayed from the events (404 before it existed)")
    paths["/v1/service-requests/{id}"]["get"]["responses"].update(problems(400, 403))
    paths["/v1/payments/{id}"]["get"]["parameters"] = [id_param, as_of, {"name": "min_position", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}]
    paths["/v1/payments/{id}"]["get"]["responses"].update(problems(400, 403))
    plain = [query("plain", {"type": "string", "enum": ["1", "0", "true", "false"]},
                   "1: personal fields in the clear (needs X-Purpose, added with the access log's reads; the read is logged);"
                   " else ciphertext with the subject reference")]
    paths["/v1/audit/events"] = {"get": {
        "summary": "The global event log, in order, as stored (auditors)",
        "parameters": [after, query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
                       query("type", {"type": "string"}, "event types such as ServiceRequest.Submitted, comma-separated"),
                       organization, *time_range, *plain],
        "responses": {"200": {"description": "a page; next_cursor is null at the end of the log", **json_content(page)}, **problems(400, 401, 403)},
    }}
    paths["/v1/audit/export"] = {"get": {
        "summary": "The log (or a time range) as NDJSON, streamed, with each event's chain link (auditors)",
        "parameters": [organization, *time_range, *plain],
        "responses": {"200": {"description": "one event per line", "content": {"application/x-ndjson": {}}}, **problems(400, 401, 403)},
    }}
    paths["/v1/audit/verify"] = {"get": {
        "summary": "Recompute the hash chain over the log and report the first break (auditors)",
        "responses": {"200": {"description": "the verdict", **json_content(schema_ref("ChainVerdict"))}, **problems(401, 403)},
    }}
    from api.data_subjects import ERASURE_SCHEMA

    schemas["ErasureRequest"] = ERASURE_SCHEMA
    schemas["Erasure"] = {"type": "object", "required": ["subject", "status"], "properties": {
        "subject": {"type": "string", "description": "the keyed blind index of the national ID"},
        "status": {"const": "erased"}, "erased_at": {"type": ["string", "null"], "format": "date-time"},
        "basis": NULLABLE_STRING, "reason": NULLABLE_STRING, "erasures": {"type": "integer"},
        "position": {"type": ["integer", "null"]}, "purged": {"type": "object"}}}
    paths["/v1/data-subjects/{national_id}/erasure"] = {"post": {
        "summary": "Erase a person's personal data by deleting their keys (dpo, admin); events stay, their fields read [erased]",
        "operationId": "eraseDataSubject", "tags": ["personal-data"],
        "parameters": [{"name": "national_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]{13}$"}}],
        "requestBody": {"required": True, **json_content(schema_ref("ErasureRequest"))},
        "responses": {"200": {"description": "erased (again: the erasure recorded before)", **json_content(schema_ref("Erasure"))},
                      **problems(400, 401, 403, 404, 409, 422)},
    }}
    types = query("types", {"type": "string"}, "CloudEvents types, comma-separated")
    paths["/v1/streams/events"] = {"get": {
        "summary": "The catch-up feed of CloudEvents in log order (integrators)",
        "parameters": [after, types, organization, query("limit", {"type": "integer", "minimum": 1, "maximum": 5000}, "page size")],
        "responses": {"200": {"description": "a page; next_cursor is where to continue (the same cursor when nothing is new)",
                              **json_content({"type": "object", "properties": {"items": {"type": "array", "items": schema_ref("CloudEvent")}, "next_cursor": {"type": "string"}}})},
                      **problems(400, 401, 403)},
    }}
    paths["/v1/streams/events/live"] = {"get": {
        "summary": "Server-Sent Events: one CloudEvent per event (id = its sequence), comment heartbeats; resumes from Last-Event-ID",
        "parameters": [after, types, organization, {"name": "Last-Event-ID", "in": "header", "required": False, "schema": cursor}],
        "responses": {"200": {"description": "an event stream", "content": {"text/event-stream": {}}}, **problems(400, 401, 403)},
    }}
    subscription = json_content(schema_ref("Subscription"))
    paths["/v1/subscriptions"] = {
        "post": {"summary": "Subscribe a URL to webhooks (Standard Webhooks signatures; the secret is shown once)", "parameters": [idem],
                 "requestBody": {"required": True, **json_content(schema_ref("SubscriptionCreate"))},
                 "responses": {"201": {"description": "subscribed", **subscription}, **problems(400, 401, 403, 422)}},
        "get": {"summary": "The caller's subscriptions", "parameters": [query("cursor", {"type": "string"}, "next_cursor of an earlier page"),
                                                                       query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size")],
                "responses": {"200": {"description": "a page", **json_content(page)}, **problems(401, 403)}},
    }
    paths["/v1/subscriptions/{id}"] = {
        "get": {"summary": "A subscription, with its deliveries counted by status", "parameters": [id_param],
                "responses": {"200": {"description": "the subscription", **subscription}, **problems(401, 403, 404)}},
        "delete": {"summary": "Unsubscribe", "parameters": [id_param], "responses": {"204": {"description": "gone"}, **problems(401, 403, 404)}},
    }
    paths["/v1/subscriptions/{id}/deliveries"] = {"get": {
        "summary": "Deliveries in log order, each with its attempts",
        "parameters": [id_param, after, query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size")],
        "responses": {"200": {"description": "a page", **json_content(page)}, **problems(400, 401, 403, 404)},
    }}
    paths["/v1/subscriptions/{id}/replay"] = {"post": {
        "summary": "Send again every matching event after a cursor; re-enables a disabled subscription",
        "parameters": [id_param, query("from", cursor, "an event's sequence: events after it are sent again", required=True)],
        "responses": {"202": {"description": "the replay is under way"}, **problems(400, 401, 403, 404)},
    }}
