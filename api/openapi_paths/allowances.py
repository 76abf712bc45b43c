"""OpenAPI paths: The elderly allowance."""

from __future__ import annotations

from typing import Any

from api.openapi_paths.common import json_content, problems


def add_allowances(paths: dict[str, Any]) -> None:
    """The elderly allowance: the register of recipients and the monthly runs (officers, admins)."""
    id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    recipient = json_content({"type": "object", "required": ["id", "national_id", "organization", "status", "band_amount_satang"]})
    run = json_content({"type": "object", "required": ["id", "organization", "month", "status", "progress", "paid", "refused", "suspended",
                                                "total_satang", "by_band"]})
    paths["/v1/allowances/recipients"] = {"get": {
        "summary": "Elderly-allowance recipients in id order (an officer's own organisation; admins any)",
        "parameters": [
            {"name": "organization", "in": "query", "schema": {"type": "string"}},
            {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["active", "suspended", "ended"]}},
            {"name": "band", "in": "query", "description": "the monthly amount in baht: 600, 700, 800 or 1000",
             "schema": {"type": "integer", "minimum": 1, "maximum": 100000}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            {"name": "min_position", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0},
             "description": "wait (at most 5 s, else 503) until the views include this log position, such as a suspend's OneStop-Position"},
        ],
        "responses": {"200": {"description": "a page: items and next_cursor",
                              **json_content({"type": "object", "required": ["items", "next_cursor"]})}, **problems(400, 401, 403)},
    }}
    paths["/v1/allowances/recipients/{id}"] = {"get": {
        "summary": "One recipient: national ID, birth date, payout (masked), start month, band, status and reasons",
        "parameters": [id_param], "responses": {"200": {"description": "the recipient", **recipient}, **problems(401, 403, 404)},
    }}
    reason_body = {"required": True, **json_content({"type": "object", "required": ["reason"], "additionalProperties": False,
                                             "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}}})}
    for action, what in (("suspend", "Suspend an active recipient (not paid until resumed)"), ("resume", "Resume a suspended recipient")):
        paths[f"/v1/allowances/recipients/{{id}}/{action}"] = {"post": {
            "summary": what, "parameters": [id_param], "requestBody": reason_body,
            "responses": {"200": {"description": "the recipient", **recipient}, **problems(401, 403, 404, 409, 422)},
        }}
    paths["/v1/allowances/runs"] = {"post": {
        "summary": "Start an organisation's monthly run (the current or a later month); the same organisation and month "
                   "answers with the run already started, and sends again only the lines the bank refused",
        "parameters": [{"name": "Idempotency-Key", "in": "header", "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"}}],
        "requestBody": {"required": True, **json_content({
            "type": "object", "required": ["organization", "month"], "additionalProperties": False,
            "properties": {"organization": {"type": "string", "minLength": 1, "maxLength": 40},
                           "month": {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}}})},
        "responses": {"202": {"description": "started", **run}, "200": {"description": "the run already started", **run},
                      **problems(400, 401, 403, 422)},
    }}
    paths["/v1/allowances/runs/{id}"] = {"get": {
        "summary": "A run's progress and figures; with Accept: text/csv, its report for the Department of Local Administration",
        "parameters": [id_param],
        "responses": {"200": {"description": "the run", "content": {
            "application/json": run["content"]["application/json"],
            "text/csv": {"schema": {"type": "string"}}}}, **problems(401, 403, 404)},
    }}
