"""The OpenAPI 3.1 document, built from the same schemas the handlers and the domain check with."""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from application.commands import ACTION_SCHEMAS, RECORD_CASH_SCHEMA
from domain.catalogue import SERVICES
from domain.service_request import STATUSES
from domain.submission import SUBMISSION_SCHEMA

_TS = {"type": "string", "format": "date-time"}
_NULLABLE_STR = {"type": ["string", "null"]}

REQUEST_STATE = {
    "type": "object",
    "required": ["id", "reference", "service", "organization", "filed_at", "status", "version", "position", "payment"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "reference": {"type": "string", "pattern": "^[0-9A-Z]{1,20}$|^OS[0-9]{2}-[0-9]{7}$",
                      "description": "bank-safe ([0-9A-Z], at most 20), e.g. OS690000042; references issued before that rule keep their hyphen (OS69-0000042)"},
        "service": {"type": "string", "enum": sorted(SERVICES)},
        "organization": {"type": "string"},
        "filed_at": {"type": "string"},
        "channel": {"type": "string", "enum": ["web", "mobile", "counter"]},
        "status": {"type": "string", "enum": list(STATUSES)},
        "version": {"type": "integer"},
        "position": {"type": ["integer", "null"], "description": "log position of the last event; pass as min_position to read your write"},
        "applicant": {"type": "object", "properties": {"national_id": {"type": "string"}, "name": {"type": "string"}}},
        "details": {"type": "object"},
        "assigned_to": _NULLABLE_STR,
        "submitted_at": _TS,
        "updated_at": _TS,
        "due_at": _TS,
        "outcome": _NULLABLE_STR,
        "result": {"type": ["object", "null"]},
        "action_required": {"type": ["object", "null"], "properties": {"job": {"type": "string"}, "reason": {"type": "string"}}},
        "payment": {
            "type": ["object", "null"],
            "properties": {"id": {"type": "string", "format": "uuid"}, "amount_satang": {"type": "integer"}, "status": {"type": "string"}},
        },
    },
}
PAYMENT = {
    "type": "object",
    "required": ["id", "request_id", "amount_satang", "status", "promptpay_payload", "expires_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "request_id": {"type": "string", "format": "uuid"},
        "reference": {"type": "string", "pattern": "^[0-9A-Z]{1,20}$|^OS[0-9]{2}-[0-9]{7}$", "description": "the bill-payment Ref1"},
        "organization": {"type": "string"},
        "amount_satang": {"type": "integer"},
        "status": {"type": "string", "enum": ["awaiting_payment", "paid", "expired", "refunded"]},
        "promptpay_payload": {"type": "string", "description": "EMVCo PromptPay bill payment (tag 30), Ref1 = reference"},
        "expires_at": _TS,
        "version": {"type": "integer"},
        "method": _NULLABLE_STR,
        "receipt": {"type": ["object", "null"], "description": "the official receipt, once the money is received",
                    "properties": {"id": {"type": "string", "format": "uuid"}, "number": {"type": "string", "pattern": "^[0-9A-Z]{1,20}$"}}},
    },
}
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
    },
}
EVENT = {
    "type": "object",
    "properties": {
        "position": {"type": "integer"}, "version": {"type": "integer"}, "type": {"type": "string"},
        "occurred_at": _TS, "actor": {"type": "object"}, "data": {"type": "object"},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _problems(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "problem", "content": {"application/problem+json": {"schema": _ref("Problem")}}} for s in statuses}


BEARER = [{"bearer": []}]


def _add_operations(paths: dict[str, Any]) -> None:
    """Officers' views, outside work and the bank's notices."""
    code = {"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}
    page = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}}]
    paths["/v1/organizations/{code}/work-queue"] = {"get": {
        "summary": "Open requests the organisation is responsible for, oldest first, with due dates",
        "parameters": [code, *page], "responses": {"200": {"description": "a page"}, **_problems(400, 401, 403, 404)},
    }}
    paths["/v1/organizations/{code}/daily-counts"] = {"get": {
        "summary": "Requests filed, decided and paid per Bangkok day and service",
        "parameters": [code, {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                       {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}}],
        "responses": {"200": {"description": "counts"}, **_problems(400, 401, 403, 404)},
    }}
    paths["/v1/jobs"] = {"get": {
        "summary": "Outstanding or failed outside work (officers of the organisation, admins)",
        "parameters": [{"name": "status", "in": "query", "schema": {"type": "string", "enum": ["pending", "failed"]}},
                       {"name": "organization", "in": "query", "schema": {"type": "string"}}, *page],
        "responses": {"200": {"description": "jobs with attempts and the last error"}, **_problems(400, 401, 403)},
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
                      "202": {"description": "matches no payment; kept as unmatched"}, **_problems(400, 401, 404, 422, 503)},
    }}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    submission = copy.deepcopy(SUBMISSION_SCHEMA)
    submission["properties"]["details"] = {
        "description": "checked per service; see the Details* schemas",
        "oneOf": [_ref(f"Details.{code}") for code in SERVICES],
    }
    schemas: dict[str, Any] = {
        "Submission": submission,
        "RequestState": REQUEST_STATE,
        "Payment": PAYMENT,
        "Problem": PROBLEM,
        "Event": EVENT,
        "RecordCash": RECORD_CASH_SCHEMA,
    }
    for code, service in SERVICES.items():
        schemas[f"Details.{code}"] = service.details_schema
    for action, schema in ACTION_SCHEMAS.items():
        schemas[f"Action.{action}"] = schema
    id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    idem = {"name": "Idempotency-Key", "in": "header", "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": "1 to 255 printable ASCII characters, unique per intended creation (a UUID is a good choice); the same key and body replay the first answer, the same key with another body is refused with 422"}
    if_match = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string", "pattern": '^(W/)?"[0-9]{1,18}"$|^\\*$'},
                "description": 'the ETag of the state the change is based on, such as "3"; a stale one gets 412'}
    min_position = {"name": "min_position", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}
    paths: dict[str, Any] = {
        "/v1/health": {"get": {"summary": "ok, degraded or down, with each dependency and follower of the log", "security": [], "operationId": "getHealth", "responses": {"200": {"description": "ok or degraded"}, "503": {"description": "down"}}}},
        "/v1/health/live": {"get": {"summary": "The process answers", "security": [], "responses": {"200": {"description": "live"}}}},
        "/v1/health/ready": {"get": {"summary": "The database answers", "security": [], "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
        "/v1/services": {"get": {"summary": "The service catalogue", "security": [], "responses": {"200": {"description": "services"}}}},
        "/v1/services/{code}": {"get": {"summary": "One service with the JSON Schema of its details", "security": [],
                                        "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string", "enum": sorted(SERVICES)}}],
                                        "responses": {"200": {"description": "service"}, **_problems(404)}}},
        "/v1/organizations": {"get": {"summary": "Organisations", "security": [], "responses": {"200": {"description": "organisations"}}}},
        "/v1/service-requests": {
            "post": {
                "summary": "File a request (a citizen for themself, an officer at a counter on a citizen's behalf)",
                "parameters": [idem],
                "requestBody": {"required": True, **_json(_ref("Submission"))},
                "responses": {"201": {"description": "filed", **_json(_ref("RequestState"))}, **_problems(400, 401, 403, 413, 422)},
            },
            "get": {
                "summary": "Requests the caller may see, newest first",
                "parameters": [
                    {"name": "status", "in": "query", "required": False, "schema": {"type": "string", "enum": list(STATUSES)}},
                    {"name": "service", "in": "query", "required": False, "schema": {"type": "string", "enum": sorted(SERVICES)}},
                    *({"name": n, "in": "query", "required": False, "schema": {"type": "string", "maxLength": 40}} for n in ("organization", "filed_at")),
                    {"name": "applicant", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[0-9]{13}$"}, "description": "the applicant's national ID (staff)"},
                    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}, "description": "opaque: the next_cursor of an earlier page; anything else is refused with 400"},
                    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                    min_position,
                ],
                "responses": {"200": {"description": "a page", **_json({"type": "object", "properties": {"items": {"type": "array", "items": _ref("RequestState")}, "next_cursor": _NULLABLE_STR}})}, **_problems(400, 401)},
            },
        },
        "/v1/service-requests/{id}": {"get": {
            "summary": "One request (as_of=<RFC 3339> replays its history to that moment)",
            "parameters": [id_param, min_position, {"name": "as_of", "in": "query", "required": False, "schema": _TS}],
            "responses": {"200": {"description": "the request", **_json(_ref("RequestState"))}, **_problems(401, 404, 503)},
        }},
        "/v1/service-requests/{id}/events": {"get": {
            "summary": "The request's events (and its payment's), in log order",
            "parameters": [id_param],
            "responses": {"200": {"description": "events", **_json({"type": "object", "properties": {"items": {"type": "array", "items": _ref("Event")}}})}, **_problems(401, 404)},
        }},
        "/v1/payments/{id}": {"get": {"summary": "A payment", "parameters": [id_param], "responses": {"200": {"description": "payment", **_json(_ref("Payment"))}, **_problems(401, 404)}}},
        "/v1/payments/{id}/qr": {"get": {
            "summary": "The PromptPay QR code", "parameters": [id_param, {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["png", "svg"]}}],
            "responses": {"200": {"description": "image", "content": {"image/png": {}, "image/svg+xml": {}}}, **_problems(401, 404, 409)},
        }},
        "/v1/payments/{id}/record-cash": {"post": {
            "summary": "Cash taken at a counter", "parameters": [id_param, if_match],
            "requestBody": {"required": True, **_json(_ref("RecordCash"))},
            "responses": {"200": {"description": "paid", **_json(_ref("Payment"))}, **_problems(401, 403, 404, 409, 412, 422)},
        }},
    }
    _add_operations(paths)
    _add_money_trail(paths, schemas, id_param, if_match)
    _add_audit_and_integrations(paths, schemas, id_param, idem)
    for action in ACTION_SCHEMAS:
        paths[f"/v1/service-requests/{{id}}/{action}"] = {"post": {
            "summary": f"{action.replace('-', ' ').capitalize()}",
            "parameters": [id_param, if_match],
            "requestBody": {"required": False, **_json(_ref(f"Action.{action}"))},
            "responses": {"200": {"description": "the new state", **_json(_ref("RequestState"))}, **_problems(400, 401, 403, 404, 409, 412, 422)},
        }}
    _complete(paths)
    from api.limits import add_edge_responses

    add_edge_responses(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "OneStop back office", "version": "1.0.0",
                 "description": "Event-sourced back office for One Stop Service centres of Thai local administrative organisations."},
        "servers": [{"url": "/"}],
        "security": BEARER,
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
    }


def _add_money_trail(paths: dict[str, Any], schemas: dict[str, Any], id_param: dict[str, Any], if_match: dict[str, Any]) -> None:
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
            "method": {"type": "string", "enum": ["cash", "promptpay"]}, "issued_at": _TS, "issued_on": {"type": "string", "format": "date"},
            "status": {"type": "string", "enum": ["issued", "void"]}, "void_reason": _NULLABLE_STR,
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
                                                "runs": {"type": "integer"}, "recorded_at": _TS}}
    paths["/v1/receipts"] = {"get": {
        "summary": "An organisation's receipts of a fiscal year, in number order (staff)",
        "parameters": [organization,
                       {"name": "fiscal_year", "in": "query", "schema": {"type": "integer", "minimum": 2500, "maximum": 2700},
                        "description": "Buddhist era (October to September); default the current one"},
                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                       {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": {"description": "a page", **_json({"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("Receipt")}, "next_cursor": _NULLABLE_STR}})}, **_problems(400, 401, 403, 503)},
    }}
    paths["/v1/receipts/{id}"] = {"get": {
        "summary": "A receipt as JSON, or as PDF with Accept: application/pdf (Thai, with a QR to its verification)",
        "parameters": [id_param],
        "responses": {"200": {"description": "the receipt", "content": {"application/json": {"schema": _ref("Receipt")}, "application/pdf": {}}},
                      **_problems(401, 403, 404, 406)},
    }}
    paths["/v1/receipts/{id}/verify"] = {"get": {
        "summary": "Public: a receipt's number, amount, day and status (no personal data): where its QR leads",
        "security": [], "parameters": [id_param],
        "responses": {"200": {"description": "the receipt as issued", **_json(_ref("ReceiptVerification"))}, **_problems(404)},
    }}
    paths["/v1/receipts/{id}/void"] = {"post": {
        "summary": "Void a receipt with a reason; it keeps its number (officers of the organisation)",
        "parameters": [id_param, if_match], "requestBody": {"required": True, **_json(_ref("VoidReceipt"))},
        "responses": {"200": {"description": "the void receipt", **_json(_ref("Receipt"))}, **_problems(401, 403, 404, 409, 412, 422)},
    }}
    paths["/v1/reconciliations"] = {"get": {
        "summary": "The reconciliation of an organisation's day with the bank's settlement file: matched, missing, unknown",
        "parameters": [organization, day],
        "responses": {"200": {"description": "the latest run", **_json(_ref("Reconciliation"))}, **_problems(400, 401, 403, 404)},
    }}
    paths["/v1/revenue"] = {"get": {
        "summary": "The day's receipts as CSV, one line per item with its revenue code, for the accounting system",
        "parameters": [organization, day],
        "responses": {"200": {"description": "CSV with a header line", "content": {"text/csv": {}}}, **_problems(400, 401, 403, 503)},
    }}


def _add_audit_and_integrations(paths: dict[str, Any], schemas: dict[str, Any], id_param: dict[str, Any], idem: dict[str, Any]) -> None:
    """Auditors' and integrators' paths: the audit log, as_of, the event feed, SSE, webhooks."""
    from api.subscriptions import SUBSCRIPTION_SCHEMA
    from application.cloudevents import PUBLISHED_TYPES

    def query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}

    cursor = {"type": "string", "pattern": "^[0-9]{1,20}$"}
    after = query("after", cursor, "cursor: the next_cursor (or an event's sequence) of an earlier answer; events after it")
    page = {"type": "object", "properties": {"items": {"type": "array"}, "next_cursor": _NULLABLE_STR}}
    schemas["CloudEvent"] = {
        "type": "object", "description": "CloudEvents 1.0, structured JSON; national IDs masked, names left out",
        "required": ["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "sequence", "data"],
        "properties": {
            "specversion": {"const": "1.0"}, "id": {"type": "string", "description": "stable: <aggregate id>.<version>"},
            "source": {"type": "string", "description": "/onestop/<organization responsible>"},
            "type": {"type": "string", "enum": list(PUBLISHED_TYPES)}, "subject": {"type": "string", "format": "uuid"},
            "time": _TS, "datacontenttype": {"const": "application/json"},
            "sequence": {**cursor, "description": "the event's cursor; sorts as the log does"}, "data": {"type": "object"},
        },
    }
    schemas["SubscriptionCreate"] = SUBSCRIPTION_SCHEMA
    schemas["Subscription"] = {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"}, "url": {"type": "string"}, "types": {"type": "array", "items": {"type": "string"}},
        "organization": _NULLABLE_STR, "status": {"type": "string", "enum": ["active", "disabled"]}, "disabled_reason": _NULLABLE_STR,
        "created_at": _TS, "secret": {"type": "string", "description": "whsec_...: only in the answer to the create"}}}
    schemas["ChainVerdict"] = {"type": "object", "required": ["status", "checked"], "properties": {
        "status": {"type": "string", "enum": ["intact", "broken"]}, "checked": {"type": "integer"},
        "first_broken_position": {"type": "integer"}, "reason": {"type": "string"}, "log_position": {"type": "integer"},
        "head": {"type": ["object", "null"], "properties": {"position": {"type": "integer"}, "link": {"type": "string"}, "count": {"type": "integer"}}}}}
    time_range = [query("from", _TS, "events that happened at or after this time"), query("to", _TS, "events that happened at or before this time")]
    organization = query("organization", {"type": "string"}, "only events of this organisation's requests and payments")
    as_of = query("as_of", _TS, "auditors and admins: the state at this moment, replayed from the events (404 before it existed)")
    paths["/v1/service-requests/{id}"]["get"]["responses"].update(_problems(400, 403))
    paths["/v1/payments/{id}"]["get"]["parameters"] = [id_param, as_of]
    paths["/v1/payments/{id}"]["get"]["responses"].update(_problems(400, 403))
    paths["/v1/audit/events"] = {"get": {
        "summary": "The global event log, in order, as stored (auditors)",
        "parameters": [after, query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
                       query("type", {"type": "string"}, "event types such as ServiceRequest.Submitted, comma-separated"),
                       organization, *time_range],
        "responses": {"200": {"description": "a page; next_cursor is null at the end of the log", **_json(page)}, **_problems(400, 401, 403)},
    }}
    paths["/v1/audit/export"] = {"get": {
        "summary": "The log (or a time range) as NDJSON, streamed, with each event's chain link (auditors)",
        "parameters": [organization, *time_range],
        "responses": {"200": {"description": "one event per line", "content": {"application/x-ndjson": {}}}, **_problems(400, 401, 403)},
    }}
    paths["/v1/audit/verify"] = {"get": {
        "summary": "Recompute the hash chain over the log and report the first break (auditors)",
        "responses": {"200": {"description": "the verdict", **_json(_ref("ChainVerdict"))}, **_problems(401, 403)},
    }}
    types = query("types", {"type": "string"}, "CloudEvents types, comma-separated")
    paths["/v1/streams/events"] = {"get": {
        "summary": "The catch-up feed of CloudEvents in log order (integrators)",
        "parameters": [after, types, organization, query("limit", {"type": "integer", "minimum": 1, "maximum": 5000}, "page size")],
        "responses": {"200": {"description": "a page; next_cursor is where to continue (the same cursor when nothing is new)",
                              **_json({"type": "object", "properties": {"items": {"type": "array", "items": _ref("CloudEvent")}, "next_cursor": {"type": "string"}}})},
                      **_problems(400, 401, 403)},
    }}
    paths["/v1/streams/events/live"] = {"get": {
        "summary": "Server-Sent Events: one CloudEvent per event (id = its sequence), comment heartbeats; resumes from Last-Event-ID",
        "parameters": [after, types, organization, {"name": "Last-Event-ID", "in": "header", "required": False, "schema": cursor}],
        "responses": {"200": {"description": "an event stream", "content": {"text/event-stream": {}}}, **_problems(400, 401, 403)},
    }}
    subscription = _json(_ref("Subscription"))
    paths["/v1/subscriptions"] = {
        "post": {"summary": "Subscribe a URL to webhooks (Standard Webhooks signatures; the secret is shown once)", "parameters": [idem],
                 "requestBody": {"required": True, **_json(_ref("SubscriptionCreate"))},
                 "responses": {"201": {"description": "subscribed", **subscription}, **_problems(400, 401, 403, 422)}},
        "get": {"summary": "The caller's subscriptions", "parameters": [query("cursor", {"type": "string"}, "next_cursor of an earlier page")],
                "responses": {"200": {"description": "a page", **_json(page)}, **_problems(401, 403)}},
    }
    paths["/v1/subscriptions/{id}"] = {
        "get": {"summary": "A subscription, with its deliveries counted by status", "parameters": [id_param],
                "responses": {"200": {"description": "the subscription", **subscription}, **_problems(401, 403, 404)}},
        "delete": {"summary": "Unsubscribe", "parameters": [id_param], "responses": {"204": {"description": "gone"}, **_problems(401, 403, 404)}},
    }
    paths["/v1/subscriptions/{id}/deliveries"] = {"get": {
        "summary": "Deliveries in log order, each with its attempts", "parameters": [id_param, after],
        "responses": {"200": {"description": "a page", **_json(page)}, **_problems(400, 401, 403, 404)},
    }}
    paths["/v1/subscriptions/{id}/replay"] = {"post": {
        "summary": "Send again every matching event after a cursor; re-enables a disabled subscription",
        "parameters": [id_param, query("from", cursor, "an event's sequence: events after it are sent again", required=True)],
        "responses": {"202": {"description": "the replay is under way"}, **_problems(400, 401, 403, 404)},
    }}


TAGS = {
    "catalogue": "Services, organisations and the state of the system",
    "service-requests": "Citizens' requests: file, read, act",
    "payments": "PromptPay payments and cash at the counter",
    "officers": "Officers' work queues, counts and outside work",
    "bank": "The bank's signed payment notices",
    "audit": "Auditors: the log as stored, the hash chain, exports",
    "integrations": "Integrators: the CloudEvents feed, live stream and webhooks",
    "money": "Receipts, reconciliation with the bank, revenue for the accounts",
}
_TAG_OF_PREFIX = (
    ("/v1/service-requests", "service-requests"), ("/v1/payments", "payments"), ("/v1/payment-notifications", "bank"),
    ("/v1/organizations/{code}/", "officers"), ("/v1/jobs", "officers"), ("/v1/audit", "audit"),
    ("/v1/streams", "integrations"), ("/v1/subscriptions", "integrations"),
    ("/v1/receipts", "money"), ("/v1/reconciliations", "money"), ("/v1/revenue", "money"),
)
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "string", "pattern": "^[0-9]+$"}}}


def _operation_id(method: str, path: str) -> str:
    """A stable operationId from the method and the path: ``GET /v1/service-requests/{id}/events``
    → ``getServiceRequestsEvents``, ``GET /v1/service-requests`` → ``listServiceRequests``; generated once here so that client generators keep their names."""
    words: list[str] = []
    parts = path.removeprefix("/v1/").split("/")
    for part in parts:
        if not part.startswith("{"):
            words.extend(part.replace("_", "-").split("-"))
    name = "".join(word.capitalize() for word in words if word)
    last = parts[-1]
    if last.startswith("{"):
        return f"{method.lower()}{name}By{last.strip('{}').capitalize()}"
    if method.lower() == "get" and len(parts) == 1:
        return f"list{name}"
    return method.lower() + name


def _complete(paths: dict[str, Any]) -> None:
    """What every operation shares: a stable operationId and a tag, and every status code the
    server itself can answer — 400 for malformed requests (bad JSON, headers or parameters, an
    oversize header), 401 without a valid token, 403 for a role that may not call it, 413 for
    an oversize body, 429 over the rate limit (with Retry-After), 503 with Retry-After where a
    read waits for the views."""
    for path, item in paths.items():
        for method, operation in item.items():
            operation.setdefault("operationId", _operation_id(method, path))
            tag = next((t for prefix, t in _TAG_OF_PREFIX if path.startswith(prefix)), "catalogue")
            operation.setdefault("tags", [tag])
            responses = operation["responses"]
            shared = [400, 429]
            if operation.get("security") != []:
                shared += [401, 403]
            if "requestBody" in operation:
                shared += [413, 415, 422]
            for status in shared:
                responses.setdefault(str(status), _problems(status)[str(status)])
            for status in ("429", "503"):
                if status in responses and "content" in responses[status]:
                    responses[status] = {**responses[status], "headers": _RETRY_AFTER}
