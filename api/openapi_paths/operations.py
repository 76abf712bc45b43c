"""OpenAPI paths: Officers' views, outside work and the bank's notices."""

from __future__ import annotations

from typing import Any

from api.openapi_paths.common import problems


def add_operations(paths: dict[str, Any]) -> None:
    """Officers' views, outside work and the bank's notices."""
    code = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
    page = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}}]
    paths["/v1/organizations/{code}/work-queue"] = {"get": {
        "summary": "Open requests the organisation is responsible for, oldest first, with due dates",
        "parameters": [code, *page], "responses": {"200": {"description": "a page"}, **problems(400, 401, 403, 404)},
    }}
    paths["/v1/organizations/{code}/daily-counts"] = {"get": {
        "summary": "Requests filed, decided and paid per Bangkok day and service",
        "parameters": [code, {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                       {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}}],
        "responses": {"200": {"description": "counts"}, **problems(400, 401, 403, 404)},
    }}
    paths["/v1/jobs"] = {"get": {
        "summary": "Outstanding or failed outside work (officers of the organisation, admins)",
        "parameters": [{"name": "status", "in": "query", "schema": {"type": "string", "enum": ["pending", "failed"]}},
                       {"name": "organization", "in": "query", "schema": {"type": "string"}}, *page],
        "responses": {"200": {"description": "jobs with attempts and the last error"}, **problems(400, 401, 403)},
    }}
    paths["/v1/payment-notifications/{provider}"] = {"post": {
        "summary": "The bank's payment notice, signed: X-Bank-Signature = hex HMAC-SHA256 of timestamp + \".\" + provider + \".\" + body",
        "security": [],
        "parameters": [{"name": "provider", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"}},
                       {"name": "X-Bank-Timestamp", "in": "header", "required": True,
                        "description": "Unix seconds at signing; refused when more than 300 s from now",
                        "schema": {"type": "string", "pattern": "^[0-9]{1,15}$"}},
                       {"name": "X-Bank-Signature", "in": "header", "required": True,
                        "schema": {"type": "string", "pattern": "^(sha256=)?[0-9a-f]{64}$"}}],
        "responses": {"200": {"description": "recorded, duplicate, discrepancy or refund_due"},
                      "202": {"description": "matches no payment; kept as unmatched"}, **problems(400, 401, 404, 422, 503)},
    }}
