"""OpenAPI paths: Receipts, reconciliation and revenue."""

from __future__ import annotations

from typing import Any

from api.openapi_paths.common import NULLABLE_STRING, TIMESTAMP, json_content, problems, schema_ref


def add_money_trail(paths: dict[str, Any], schemas: dict[str, Any], id_param: dict[str, Any], if_match: dict[str, Any]) -> None:
    """Receipts, reconciliations with the bank, and the revenue export."""
    from application.receipts import VOID_SCHEMA
    from domain.organizations import SEED_ORGANIZATIONS

    codes = sorted(o.code for o in SEED_ORGANIZATIONS) + ["UNASSIGNED"]
    organization = {"name": "organization", "in": "query", "required": True, "schema": {"type": "string", "enum": codes},
                    "description": "an organisation's code (officers: their own); UNASSIGNED for settlement lines of no known organisation"}
    day = {"name": "day", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}, "description": "a Bangkok day"}
    money = {"type": "integer", "minimum": 0}
    schemas["Receipt"] = {
        "type": "object",
        "required": ["id", "number", "organization", "fiscal_year", "sequence", "payment_id", "amount_satang", "amount_words", "status"],
        "properties": {
            "id": {"type": "string", "format": "uuid"}, "number": {"type": "string", "pattern": "^[0-9A-Z]{1,20}$"},
            "organization": {"type": "string"}, "fiscal_year": {"type": "integer", "description": "Buddhist era, October to September"},
            "sequence": {"type": "integer", "minimum": 1}, "payment_id": {"type": "string", "format": "uuid"},
            "request_id": {"type": ["string", "null"], "format": "uuid"}, "reference": {"type": "string"},
            "payer": {"type": "object", "properties": {"name": {"type": "string"}}},
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "description": {"type": "string"}, "revenue_code": {"type": "string"}, "revenue_code_confirmed": {"type": "boolean"},
                "amount_satang": money}}},
            "amount_satang": money, "amount_words": {"type": "string", "description": "the amount in Thai words"},
            "method": {"type": "string", "enum": ["cash", "promptpay"]}, "issued_at": TIMESTAMP, "issued_on": {"type": "string", "format": "date"},
            "status": {"type": "string", "enum": ["issued", "void"]}, "void_reason": NULLABLE_STRING,
            "voided_at": {"type": ["string", "null"], "format": "date-time"}, "version": {"type": "integer"},
        },
    }
    schemas["ReceiptVerification"] = {"type": "object", "required": ["number", "organization", "amount_satang", "issued_on", "status"],
                                      "properties": {"number": {"type": "string"}, "organization": {"type": "string"},
                                                     "fiscal_year": {"type": "integer"}, "amount_satang": money,
                                                     "issued_on": {"type": "string", "format": "date"},
                                                     "status": {"type": "string", "enum": ["issued", "void"]}}}
    schemas["VoidReceipt"] = VOID_SCHEMA
    line = {"type": "object", "properties": {"reference": {"type": "string"}, "amount_satang": money,
                                             "receipt_number": {"type": "string"}, "bank_payment_id": {"type": "string"}}}
    schemas["Reconciliation"] = {"type": "object", "required": ["organization", "day", "matched", "missing", "unknown", "mismatched", "balanced"],
                                 "properties": {"organization": {"type": "string"}, "day": {"type": "string", "format": "date"},
                                                "settlement_lines": {"type": "integer"}, "settled_satang": money,
                                                "matched": {"type": "object", "properties": {"count": {"type": "integer"}, "amount_satang": money}},
                                                "missing": {"type": "array", "items": line}, "unknown": {"type": "array", "items": line},
                                                "mismatched": {"type": "array", "items": line}, "balanced": {"type": "boolean"},
                                                "runs": {"type": "integer"}, "recorded_at": TIMESTAMP}}
    paths["/v1/receipts"] = {"get": {
        "summary": "An organisation's receipts of a fiscal year, in number order (staff)",
        "parameters": [organization,
                       {"name": "fiscal_year", "in": "query", "schema": {"type": "integer", "minimum": 2500, "maximum": 2700},
                        "description": "Buddhist era (October to September); default the current one"},
                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                       {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "a page", **json_content({"type": "object", "properties": {
            "items": {"type": "array", "items": schema_ref("Receipt")}, "next_cursor": NULLABLE_STRING}})}, **problems(400, 401, 403, 503)},
    }}
    paths["/v1/receipts/{id}"] = {"get": {
        "summary": "A receipt as JSON, or as PDF with Accept: application/pdf (Thai, with a QR to its verification)",
        "parameters": [id_param],
        "responses": {"200": {"description": "the receipt", "content": {"application/json": {"schema": schema_ref("Receipt")}, "application/pdf": {}}},
                      **problems(401, 403, 404, 406)},
    }}
    paths["/v1/receipts/{id}/verify"] = {"get": {
        "summary": "Public: a receipt's number, amount, day and status (no personal data): where its QR leads",
        "security": [], "parameters": [id_param],
        "responses": {"200": {"description": "the receipt as issued", **json_content(schema_ref("ReceiptVerification"))}, **problems(404)},
    }}
    paths["/v1/receipts/{id}/void"] = {"post": {
        "summary": "Void a receipt with a reason; it keeps its number (officers of the organisation)",
        "parameters": [id_param, if_match], "requestBody": {"required": True, **json_content(schema_ref("VoidReceipt"))},
        "responses": {"200": {"description": "the void receipt", **json_content(schema_ref("Receipt"))}, **problems(401, 403, 404, 409, 412, 422)},
    }}
    paths["/v1/reconciliations"] = {"get": {
        "summary": "The reconciliation of an organisation's day with the bank's settlement file: matched, missing, unknown",
        "parameters": [organization, day],
        "responses": {"200": {"description": "the latest run", **json_content(schema_ref("Reconciliation"))}, **problems(400, 401, 403, 404)},
    }}
    paths["/v1/revenue"] = {"get": {
        "summary": "The day's receipts as CSV, one line per item with its revenue code, for the accounting system",
        "parameters": [organization, day],
        "responses": {"200": {"description": "CSV with a header line", "content": {"text/csv": {}}}, **problems(400, 401, 403, 503)},
    }}
