"""OpenAPI paths: Personal data (PDPA)."""

from __future__ import annotations

from typing import Any

from api.openapi_paths.common import NULLABLE_STRING, TIMESTAMP, json_content, problems


def add_personal_data(paths: dict[str, Any]) -> None:
    """A person's own data, the DPO's export and access log, and ``X-Purpose`` on every read
    the access log records."""
    purpose = {"name": "X-Purpose", "in": "header", "required": False,
               "description": "why staff read this person's data; kept in the access log (at most 200 characters, no control characters);"
                              " required with plain=1 on the audit reads",
               "schema": {"type": "string", "maxLength": 200, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}}
    for path, method in (("/v1/service-requests/{id}", "get"), ("/v1/service-requests/{id}/events", "get"), ("/v1/service-requests", "get"),
                         ("/v1/audit/events", "get"), ("/v1/audit/export", "get")):
        operation = paths[path][method]
        operation["parameters"] = [*operation.get("parameters", []), purpose]
        operation["responses"].update(problems(400, 503))
    national_id = {"name": "national_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]{13}$"},
                   "description": "the person's Thai national ID; a bad check digit gets 400"}
    min_position = {"name": "min_position", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}
    records = {"type": "array", "items": {"type": "object"}}
    export = {"type": "object",
              "description": "national_id, generated_at, sections, and one array per section, in the order sections names them:"
                             " requests; payments (of requests and tax notices); allowances (register rows, payout masked, each with"
                             " disbursements: month, amounts, the bank's status and reason); tax_notices (parcels, tax, instalments,"
                             " status, amount_due with surcharge and interest, payments); receipts; appointments; events (as stored, in log"
                             " order; batch events holding the person's element among others' by reference only, \"by_reference\": true)."
                             " Personal fields of an erased person read \"[erased]\"",
              "required": ["national_id", "generated_at", "sections"],
              "properties": {"national_id": {"type": "string"}, "generated_at": TIMESTAMP, "sections": {"type": "array", "items": {"type": "string"}},
                             **{name: records for name in ("requests", "payments", "allowances", "tax_notices", "receipts", "appointments",
                                                           "events")}}}
    paths["/v1/me/data"] = {"get": {
        "summary": "Everything OneStop holds about the caller (a citizen, from the token's national ID), streamed as JSON",
        "operationId": "getMyData", "tags": ["personal-data"], "parameters": [min_position],
        "responses": {"200": {"description": "the caller's data", **json_content(export)}, **problems(400, 401, 403, 503)},
    }}
    paths["/v1/data-subjects/{national_id}/export"] = {"get": {
        "summary": "Everything OneStop holds about a person, streamed as JSON (the DPO, admins); recorded in the access log",
        "operationId": "exportDataSubject", "tags": ["personal-data"], "parameters": [national_id, min_position, purpose],
        "responses": {"200": {"description": "the person's data", **json_content(export)}, **problems(400, 401, 403, 503)},
    }}
    entry = {"type": "object", "properties": {
        "cursor": {"type": "string"}, "at": TIMESTAMP, "actor": {"type": "object"}, "what": {"type": "string"},
        "resource": NULLABLE_STRING, "purpose": NULLABLE_STRING}}
    paths["/v1/data-subjects/{national_id}/access-log"] = {"get": {
        "summary": "Who read the person's data, oldest first (the DPO, admins)",
        "operationId": "getDataSubjectAccessLog", "tags": ["personal-data"],
        "parameters": [national_id, {"name": "after", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"},
                                     "description": "the next_cursor of an earlier page"},
                       {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
        "responses": {"200": {"description": "a page", **json_content({"type": "object", "properties": {
            "items": {"type": "array", "items": entry}, "next_cursor": NULLABLE_STRING}})}, **problems(400, 401, 403)},
    }}
