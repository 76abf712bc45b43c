"""The OpenAPI 3.1 document, built from the same schemas the handlers and the domain check with."""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

from application.commands import ACTION_SCHEMAS, RECORD_CASH_SCHEMA
from domain.catalogue import SERVICES
from domain.payment import PAYMENT_STATUSES
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
        "appointment_id": {"type": ["string", "null"], "description": "the counter appointment whose check-in started it"},
    },
}
PAYMENT = {
    "type": "object",
    "required": ["id", "request_id", "amount_satang", "status", "promptpay_payload", "expires_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "request_id": {"type": ["string", "null"], "format": "uuid", "description": "the request the fee is for; null for land tax"},
        "notice_id": {"type": ["string", "null"], "format": "uuid", "description": "the land-tax notice the payment is for"},
        "instalment": {"type": ["integer", "null"], "description": "the instalment paid; null: everything due"},
        "reference": {"type": "string", "pattern": "^[0-9A-Z]{1,20}$|^OS[0-9]{2}-[0-9]{7}$", "description": "the bill-payment Ref1"},
        "organization": {"type": "string"},
        "amount_satang": {"type": "integer"},
        "status": {"type": "string", "enum": list(PAYMENT_STATUSES)},
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
        "/v1/organizations": {"get": {"summary": "Organisations", "security": [], "parameters": [
            {"name": "kind", "in": "query", "required": False, "schema": {"type": "string", "enum": ["pao", "municipality", "sao"]}},
            {"name": "province", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 100}}],
            "responses": {"200": {"description": "organisations"}}}},
        "/v1/service-requests": {
            "post": {
                "summary": "File a request (a citizen for themself, an officer at a counter on a citizen's behalf); civil.appointment is no longer taken: book with POST /v1/appointments",
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
                    {"name": "applicant", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[0-9]{13}$"}, "description": "the applicant's national ID (staff); matched by its keyed blind index"},
                    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}, "description": "opaque: the next_cursor of an earlier page; anything else is refused with 400"},
                    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                    min_position,
                ],
                "responses": {"200": {"description": "a page", **_json({"type": "object", "properties": {"items": {"type": "array", "items": _ref("RequestState")}, "next_cursor": _NULLABLE_STR}})}, **_problems(400, 401, 503)},
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
    _add_land_tax(paths, schemas, id_param, if_match, min_position)
    _add_allowances(paths)
    _add_appointments(paths, schemas, id_param, idem, if_match, min_position)
    _add_money_trail(paths, schemas, id_param, if_match)
    _add_audit_and_integrations(paths, schemas, id_param, idem)
    _add_personal_data(paths)
    _add_sign_in(paths)
    for action in ACTION_SCHEMAS:
        paths[f"/v1/service-requests/{{id}}/{action}"] = {"post": {
            "summary": f"{action.replace('-', ' ').capitalize()}",
            "parameters": [id_param, if_match],
            "requestBody": {"required": False, **_json(_ref(f"Action.{action}"))},
            "responses": {"200": {"description": "the new state", **_json(_ref("RequestState"))}, **_problems(400, 401, 403, 404, 409, 412, 422)},
        }}
    _add_browser_operations(paths)
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
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}, **SESSION_SCHEME}},
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
    }


def _add_land_tax(paths: dict[str, Any], schemas: dict[str, Any], id_param: dict[str, Any], if_match: dict[str, Any],
                  min_position: dict[str, Any]) -> None:
    """The land-and-building tax year: roll import, notices, self-check, payments, warnings."""
    from application.land_tax import PAYMENT_SCHEMA, TAX_YEARS, WARNING_SCHEMA
    from domain.land_tax import LAND_USES, OWNER_KINDS
    from domain.tax_notice import NOTICE_STATUSES

    year = {"name": "tax_year", "in": "path", "required": True, "description": "Buddhist era, e.g. 2569",
            "schema": {"type": "integer", "minimum": TAX_YEARS[0], "maximum": TAX_YEARS[1]}}
    on = {"name": "on", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
          "description": "the day statuses and the amount due are computed for (default: today in Bangkok)"}
    amount = {"type": "object", "properties": {k: {"type": "integer"} for k in ("tax_satang", "surcharge_satang", "interest_satang", "total_satang")}}
    schemas["ParcelRow"] = {"type": "object", "required": ["parcel_id", "owner_id", "owner_kind", "owner_name", "land_use", "value_satang"],
                            "properties": {"parcel_id": {"type": "string", "maxLength": 40}, "owner_id": {"type": "string", "pattern": "^[0-9]{13}$"},
                                           "owner_kind": {"enum": list(OWNER_KINDS)}, "owner_name": {"type": "string", "maxLength": 200},
                                           "land_use": {"enum": list(LAND_USES)}, "value_satang": {"type": "integer", "minimum": 0},
                                           "vacant_years": {"type": "integer", "minimum": 0, "maximum": 100}}}
    schemas["TaxNotice"] = {"type": "object", "required": ["id", "number", "tax_year", "organization", "owner_id", "parcels", "tax_satang",
                                                            "reduction_satang", "due_date", "instalments", "status"], "properties": {
        "id": {"type": "string", "format": "uuid"}, "number": {"type": "string", "pattern": "^[0-9A-Z]{1,20}$", "description": "the bill-payment Ref1"},
        "tax_year": {"type": "integer"}, "organization": {"type": "string"},
        "owner_id": {"type": "string", "description": "masked in staff lists"}, "owner_kind": {"enum": list(OWNER_KINDS)},
        "parcels": {"type": "array", "items": {"type": "object", "properties": {"parcel_id": {"type": "string"}, "land_use": {"type": "string"},
                                                                              "value_satang": {"type": "integer"}, "tax_satang": {"type": "integer"}}}},
        "tax_satang": {"type": "integer", "description": "to pay: the parcels' tax less the reduction"}, "reduction_satang": {"type": "integer"},
        "due_date": {"type": "string", "format": "date"},
        "instalments": {"type": ["array", "null"], "items": {"type": "object", "properties": {
            "n": {"type": "integer"}, "amount_satang": {"type": "integer"}, "due_date": {"type": "string", "format": "date"},
            "status": {"enum": ["paid", "unpaid", "overdue"]}}}},
        "status": {"enum": list(NOTICE_STATUSES)}, "paid_satang": {"type": "integer"},
        "amount_due": {**amount, "description": "in the answer for one notice: what settles what is due on `on`"}}}
    schemas["NoticePayment"] = PAYMENT_SCHEMA
    schemas["Warning"] = WARNING_SCHEMA
    import_result = {"type": "object", "properties": {"accepted": {"type": "integer"}, "unchanged": {"type": "integer"},
                     "rejected": {"type": "array", "items": {"type": "object", "properties": {"line": {"type": "integer"}, "field": {"type": "string"}, "message": {"type": "string"}}}},
                     "rejected_count": {"type": "integer"}}}
    paths["/v1/land-tax/{tax_year}/parcels"] = {"post": {
        "operationId": "importLandTaxParcels",
        "summary": "Import the year's tax roll (officers of a municipality or SAO): CSV with a header line, or NDJSON; up to 100,000 rows, streamed",
        "parameters": [year],
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}},
                                                      "application/x-ndjson": {"schema": {"type": "string"}}}},
        "responses": {"200": {"description": "what was accepted, unchanged and rejected", **_json(import_result)},
                      **_problems(400, 401, 403, 404, 408, 412, 413, 415, 422)},
    }}
    paths["/v1/land-tax/{tax_year}/notices"] = {"post": {
        "operationId": "issueLandTaxNotices",
        "summary": "Issue one notice per owner who has none yet (idempotent)", "parameters": [year],
        "responses": {"200": {"description": "counts", **_json({"type": "object", "properties": {
            "issued": {"type": "integer"}, "already_issued": {"type": "integer"}, "exempt": {"type": "integer"}}})},
                      **_problems(400, 401, 403, 404, 409, 412)},
    }}
    paths["/v1/land-tax/notices"] = {"get": {
        "operationId": "listLandTaxNotices",
        "summary": "Notices: a citizen's own, an officer's organisation's", "parameters": [
            {"name": "owner_id", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[0-9]{13}$"}},
            {"name": "tax_year", "in": "query", "required": False, "schema": {"type": "integer", "minimum": TAX_YEARS[0], "maximum": TAX_YEARS[1]}},
            {"name": "organization", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 40}},
            {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100}}, on, min_position],
        "responses": {"200": {"description": "a page", **_json({"type": "object", "properties": {
            "items": {"type": "array", "items": _ref("TaxNotice")}, "next_cursor": _NULLABLE_STR}})}, **_problems(400, 401, 403, 503)},
    }}
    paths["/v1/land-tax/notices/{id}"] = {"get": {
        "operationId": "getLandTaxNotice",
        "summary": "One notice, with the amount due on `on`", "parameters": [id_param, on, min_position],
        "responses": {"200": {"description": "the notice", **_json(_ref("TaxNotice"))}, **_problems(400, 401, 403, 404, 503)},
    }}
    paths["/v1/land-tax/notices/{id}/payments"] = {"post": {
        "operationId": "openLandTaxNoticePayment",
        "summary": "Open a PromptPay payment of what is due today (an instalment, or everything with instalment null); valid to the end of the Bangkok day",
        "parameters": [id_param], "requestBody": {"required": False, **_json(_ref("NoticePayment"))},
        "responses": {"201": {"description": "the payment, as GET /v1/payments/{id}", **_json(_ref("Payment"))},
                      **_problems(400, 401, 403, 404, 409, 412, 422)},
    }}
    paths["/v1/land-tax/notices/{id}/warnings"] = {"post": {
        "operationId": "recordLandTaxNoticeWarning",
        "summary": "Record a warning notice (s.61) served on the owner, with its payment deadline",
        "parameters": [id_param, if_match], "requestBody": {"required": True, **_json(_ref("Warning"))},
        "responses": {"201": {"description": "the notice", **_json(_ref("TaxNotice"))}, **_problems(400, 401, 403, 404, 409, 412, 422)},
    }}


SESSION_SCHEME = {"session": {"type": "apiKey", "in": "cookie", "name": "onestop_session",
                              "description": "a browser's session after GET /v1/auth/{issuer}/login; writes also need X-CSRF-Token"}}


def _add_sign_in(paths: dict[str, Any]) -> None:
    """Browser sign-in (backend-for-frontend) at a trusted issuer, and the session it leaves."""
    issuer = {"name": "issuer", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
              "description": "the name of a trusted issuer in ONESTOP_OIDC_ISSUERS"}
    location = {"Location": {"description": "where the browser goes next", "schema": {"type": "string"}}}
    paths["/v1/auth/{issuer}/login"] = {"get": {
        "summary": "Start a browser sign-in: redirects to the issuer (authorization code flow with PKCE, state and nonce)",
        "operationId": "signIn", "tags": ["sign-in"], "security": [],
        "parameters": [issuer, {"name": "return_to", "in": "query", "schema": {"type": "string", "maxLength": 2000},
                                "description": "an absolute URL on an allowed origin (ONESTOP_SIGN_IN_ORIGINS) to return to"},
                       {"name": "login_hint", "in": "query", "schema": {"type": "string", "maxLength": 200}}],
        "responses": {"302": {"description": "to the issuer's sign-in", "headers": location}, **_problems(400, 404, 503)},
    }}
    paths["/v1/auth/{issuer}/callback"] = {"get": {
        "summary": "Where the issuer sends the browser back: redeems the code, sets the session cookie, returns to return_to",
        "operationId": "signInCallback", "tags": ["sign-in"], "security": [],
        "parameters": [issuer, *({"name": name, "in": "query", "schema": {"type": "string", "maxLength": 2000}} for name in ("code", "state", "error"))],
        "responses": {"303": {"description": "signed in; the session cookie is set", "headers": location}, **_problems(400, 401, 404, 503)},
    }}
    paths["/v1/auth/session"] = {"get": {
        "summary": "The signed-in browser: its actor and the CSRF token its writes send as X-CSRF-Token",
        "operationId": "getSession", "tags": ["sign-in"], "security": [{"session": []}],
        "responses": {"200": {"description": "the session", **_json({"type": "object", "required": ["actor", "csrf_token", "expires_at"], "properties": {
            "actor": {"type": "object"}, "csrf_token": {"type": "string"}, "expires_at": _TS}})}, **_problems(401)},
    }}
    paths["/v1/auth/logout"] = {"post": {
        "summary": "Sign the browser out: the session ends and its cookie stops working (needs X-CSRF-Token)",
        "operationId": "signOut", "tags": ["sign-in"], "security": [{"session": []}],
        "parameters": [{"name": "X-CSRF-Token", "in": "header", "schema": {"type": "string"}}],
        "responses": {"204": {"description": "signed out"}, **_problems(401, 403)},
    }}


def _add_appointments(paths: dict[str, Any], schemas: dict[str, Any], id_param: dict[str, Any], idem: dict[str, Any],
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
            "booked_at": _TS, "updated_at": _TS,
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

    state = {"description": "the appointment", **_json(_ref("Appointment"))}
    span = [query("from", day, False, "first Bangkok day (default today)"),
            query("to", day, False, "last Bangkok day (default from); at most 30 days after from, else 422")]
    paths["/v1/appointments/slots"] = {"get": {
        "summary": "A counter's slots with seats, booked and available, Bangkok time (closed days have none); at most 31 days",
        "parameters": [query("organization", orgs, True), query("service", services, True), *span, min_position],
        "responses": {"200": {"description": "slots, in time order", **_json({"type": "array", "items": {
            "type": "object", "required": ["start", "end", "seats", "booked", "available"], "properties": {
                "start": bangkok_time, "end": bangkok_time, "seats": {"type": "integer"}, "booked": {"type": "integer"},
                "available": {"type": "integer", "description": "0 for a slot that has begun"}}}})},
            **_problems(400, 401, 422, 503)},
    }}
    paths["/v1/appointments/closed-days"] = {"get": {
        "summary": "An organisation's closed days (Thai public holidays and its own closures) between from and to; at most 31 days",
        "parameters": [query("organization", orgs, True), *span],
        "responses": {"200": {"description": "closed days, in date order", **_json({"type": "array", "items": {
            "type": "object", "required": ["date", "name"], "properties": {"date": day, "name": {"type": "string"}}}})},
            **_problems(400, 401, 422)},
    }}
    paths["/v1/appointments"] = {
        "post": {
            "summary": "Book a counter slot (a citizen for themself, an officer of the organisation for a caller); replaces the civil.appointment service",
            "parameters": [idem], "requestBody": {"required": True, **_json(_ref("Booking"))},
            "responses": {"201": {"description": "booked", **_json(_ref("Appointment"))},
                          "409": {"description": "problem: slot-full (every seat taken) or too-many-bookings (the applicant's limit for the service)",
                                  "content": {"application/problem+json": {"schema": _ref("Problem")}}},
                          **_problems(400, 401, 403, 422)},
        },
        "get": {
            "summary": "Appointments by start time: officers their organisation's, citizens their own",
            "parameters": [query("organization", orgs), query("day", day, False, "a Bangkok day"), query("service", services),
                           query("status", {"type": "string", "enum": list(APPOINTMENT_STATUSES)}),
                           query("limit", {"type": "integer", "minimum": 1, "maximum": 200}), query("cursor", {"type": "string"}), min_position],
            "responses": {"200": {"description": "a page", **_json({"type": "object", "properties": {
                "items": {"type": "array", "items": _ref("Appointment")}, "next_cursor": _NULLABLE_STR}})}, **_problems(400, 401, 403, 503)},
        },
    }
    paths["/v1/appointments/{id}"] = {"get": {
        "summary": "One appointment", "parameters": [id_param, min_position],
        "responses": {"200": state, **_problems(401, 403, 404)},
    }}
    for action, summary, code in (("cancel", "Cancel a booking and free its seat", "200"),
                                  ("reschedule", "Move a booking to another slot (the new seat is taken and the old freed at once)", "200"),
                                  ("check-in", "The applicant is at the counter: start the service request (channel counter), linked both ways", "201")):
        paths[f"/v1/appointments/{{id}}/{action}"] = {"post": {
            "summary": summary, "parameters": [id_param, if_match],
            "requestBody": {"required": action == "reschedule", **_json(_ref(f"Appointment.{action}"))},
            "responses": {code: state, **_problems(400, 401, 403, 404, 409, 412, 422)},
        }}


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
    paths["/v1/payments/{id}"]["get"]["parameters"] = [id_param, as_of, {"name": "min_position", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}]
    paths["/v1/payments/{id}"]["get"]["responses"].update(_problems(400, 403))
    plain = [query("plain", {"type": "string", "enum": ["1", "0", "true", "false"]},
                   "1: personal fields in the clear (needs X-Purpose, added with the access log's reads; the read is logged);"
                   " else ciphertext with the subject reference")]
    paths["/v1/audit/events"] = {"get": {
        "summary": "The global event log, in order, as stored (auditors)",
        "parameters": [after, query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
                       query("type", {"type": "string"}, "event types such as ServiceRequest.Submitted, comma-separated"),
                       organization, *time_range, *plain],
        "responses": {"200": {"description": "a page; next_cursor is null at the end of the log", **_json(page)}, **_problems(400, 401, 403)},
    }}
    paths["/v1/audit/export"] = {"get": {
        "summary": "The log (or a time range) as NDJSON, streamed, with each event's chain link (auditors)",
        "parameters": [organization, *time_range, *plain],
        "responses": {"200": {"description": "one event per line", "content": {"application/x-ndjson": {}}}, **_problems(400, 401, 403)},
    }}
    paths["/v1/audit/verify"] = {"get": {
        "summary": "Recompute the hash chain over the log and report the first break (auditors)",
        "responses": {"200": {"description": "the verdict", **_json(_ref("ChainVerdict"))}, **_problems(401, 403)},
    }}
    from api.data_subjects import ERASURE_SCHEMA

    schemas["ErasureRequest"] = ERASURE_SCHEMA
    schemas["Erasure"] = {"type": "object", "required": ["subject", "status"], "properties": {
        "subject": {"type": "string", "description": "the keyed blind index of the national ID"},
        "status": {"const": "erased"}, "erased_at": {"type": ["string", "null"], "format": "date-time"},
        "basis": _NULLABLE_STR, "reason": _NULLABLE_STR, "erasures": {"type": "integer"},
        "position": {"type": ["integer", "null"]}, "purged": {"type": "object"}}}
    paths["/v1/data-subjects/{national_id}/erasure"] = {"post": {
        "summary": "Erase a person's personal data by deleting their keys (dpo, admin); events stay, their fields read [erased]",
        "operationId": "eraseDataSubject", "tags": ["personal-data"],
        "parameters": [{"name": "national_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]{13}$"}}],
        "requestBody": {"required": True, **_json(_ref("ErasureRequest"))},
        "responses": {"200": {"description": "erased (again: the erasure recorded before)", **_json(_ref("Erasure"))},
                      **_problems(400, 401, 403, 404, 409, 422)},
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
        "get": {"summary": "The caller's subscriptions", "parameters": [query("cursor", {"type": "string"}, "next_cursor of an earlier page"),
                                                                       query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size")],
                "responses": {"200": {"description": "a page", **_json(page)}, **_problems(401, 403)}},
    }
    paths["/v1/subscriptions/{id}"] = {
        "get": {"summary": "A subscription, with its deliveries counted by status", "parameters": [id_param],
                "responses": {"200": {"description": "the subscription", **subscription}, **_problems(401, 403, 404)}},
        "delete": {"summary": "Unsubscribe", "parameters": [id_param], "responses": {"204": {"description": "gone"}, **_problems(401, 403, 404)}},
    }
    paths["/v1/subscriptions/{id}/deliveries"] = {"get": {
        "summary": "Deliveries in log order, each with its attempts",
        "parameters": [id_param, after, query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size")],
        "responses": {"200": {"description": "a page", **_json(page)}, **_problems(400, 401, 403, 404)},
    }}
    paths["/v1/subscriptions/{id}/replay"] = {"post": {
        "summary": "Send again every matching event after a cursor; re-enables a disabled subscription",
        "parameters": [id_param, query("from", cursor, "an event's sequence: events after it are sent again", required=True)],
        "responses": {"202": {"description": "the replay is under way"}, **_problems(400, 401, 403, 404)},
    }}


def _add_personal_data(paths: dict[str, Any]) -> None:
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
        operation["responses"].update(_problems(400, 503))
    national_id = {"name": "national_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]{13}$"},
                   "description": "the person's Thai national ID; a bad check digit gets 400"}
    min_position = {"name": "min_position", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}
    export = {"type": "object", "description": "national_id, generated_at, sections, and one array per section (requests, payments, events, ...)",
              "required": ["national_id", "generated_at", "sections"],
              "properties": {"national_id": {"type": "string"}, "generated_at": _TS, "sections": {"type": "array", "items": {"type": "string"}}}}
    paths["/v1/me/data"] = {"get": {
        "summary": "Everything OneStop holds about the caller (a citizen, from the token's national ID), streamed as JSON",
        "operationId": "getMyData", "tags": ["personal-data"], "parameters": [min_position],
        "responses": {"200": {"description": "the caller's data", **_json(export)}, **_problems(400, 401, 403, 503)},
    }}
    paths["/v1/data-subjects/{national_id}/export"] = {"get": {
        "summary": "Everything OneStop holds about a person, streamed as JSON (the DPO, admins); recorded in the access log",
        "operationId": "exportDataSubject", "tags": ["personal-data"], "parameters": [national_id, min_position, purpose],
        "responses": {"200": {"description": "the person's data", **_json(export)}, **_problems(400, 401, 403, 503)},
    }}
    entry = {"type": "object", "properties": {
        "cursor": {"type": "string"}, "at": _TS, "actor": {"type": "object"}, "what": {"type": "string"},
        "resource": _NULLABLE_STR, "purpose": _NULLABLE_STR}}
    paths["/v1/data-subjects/{national_id}/access-log"] = {"get": {
        "summary": "Who read the person's data, oldest first (the DPO, admins)",
        "operationId": "getDataSubjectAccessLog", "tags": ["personal-data"],
        "parameters": [national_id, {"name": "after", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"},
                                     "description": "the next_cursor of an earlier page"},
                       {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
        "responses": {"200": {"description": "a page", **_json({"type": "object", "properties": {
            "items": {"type": "array", "items": entry}, "next_cursor": _NULLABLE_STR}})}, **_problems(400, 401, 403)},
    }}


def _add_allowances(paths: dict[str, Any]) -> None:
    """The elderly allowance: the register of recipients and the monthly runs (officers, admins)."""
    id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    recipient = _json({"type": "object", "required": ["id", "national_id", "organization", "status", "band_amount_satang"]})
    run = _json({"type": "object", "required": ["id", "organization", "month", "status", "progress", "paid", "refused", "suspended",
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
                              **_json({"type": "object", "required": ["items", "next_cursor"]})}, **_problems(400, 401, 403)},
    }}
    paths["/v1/allowances/recipients/{id}"] = {"get": {
        "summary": "One recipient: national ID, birth date, payout (masked), start month, band, status and reasons",
        "parameters": [id_param], "responses": {"200": {"description": "the recipient", **recipient}, **_problems(401, 403, 404)},
    }}
    reason_body = {"required": True, **_json({"type": "object", "required": ["reason"], "additionalProperties": False,
                                             "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}}})}
    for action, what in (("suspend", "Suspend an active recipient (not paid until resumed)"), ("resume", "Resume a suspended recipient")):
        paths[f"/v1/allowances/recipients/{{id}}/{action}"] = {"post": {
            "summary": what, "parameters": [id_param], "requestBody": reason_body,
            "responses": {"200": {"description": "the recipient", **recipient}, **_problems(401, 403, 404, 409, 422)},
        }}
    paths["/v1/allowances/runs"] = {"post": {
        "summary": "Start an organisation's monthly run (the current or a later month); the same organisation and month "
                   "answers with the run already started, and sends again only the lines the bank refused",
        "parameters": [{"name": "Idempotency-Key", "in": "header", "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"}}],
        "requestBody": {"required": True, **_json({
            "type": "object", "required": ["organization", "month"], "additionalProperties": False,
            "properties": {"organization": {"type": "string", "minLength": 1, "maxLength": 40},
                           "month": {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}}})},
        "responses": {"202": {"description": "started", **run}, "200": {"description": "the run already started", **run},
                      **_problems(400, 401, 403, 422)},
    }}
    paths["/v1/allowances/runs/{id}"] = {"get": {
        "summary": "A run's progress and figures; with Accept: text/csv, its report for the Department of Local Administration",
        "parameters": [id_param],
        "responses": {"200": {"description": "the run", "content": {
            "application/json": run["content"]["application/json"],
            "text/csv": {"schema": {"type": "string"}}}}, **_problems(401, 403, 404)},
    }}


TAGS = {
    "catalogue": "Services, organisations and the state of the system",
    "service-requests": "Citizens' requests: file, read, act",
    "payments": "PromptPay payments and cash at the counter",
    "officers": "Officers' work queues, counts and outside work",
    "bank": "The bank's signed payment notices",
    "audit": "Auditors: the log as stored, the hash chain, exports",
    "integrations": "Integrators: the CloudEvents feed, live stream and webhooks",
    "personal-data": "Personal data (PDPA): access, portability, who looked, and erasure",
    "documentation": "This document, and the interactive documentation over it",
    "land-tax": "Land and building tax: the tax roll, notices, the amount due, payments and warnings",
    "sign-in": "Browsers: sign in at a trusted issuer, the session, sign out",
    "allowances": "The elderly allowance: the register of recipients and the monthly runs",
    "appointments": "Counter appointments: slots, booking, cancel, reschedule, check-in (they replace the civil.appointment service)",
    "money": "Receipts, reconciliation with the bank, revenue for the accounts",
}
_TAG_OF_PREFIX = (
    ("/v1/service-requests", "service-requests"), ("/v1/payments", "payments"), ("/v1/payment-notifications", "bank"),
    ("/v1/organizations/{code}/", "officers"), ("/v1/jobs", "officers"), ("/v1/audit", "audit"),
    ("/v1/streams", "integrations"), ("/v1/subscriptions", "integrations"), ("/v1/docs", "documentation"),
    ("/v1/land-tax", "land-tax"), ("/v1/allowances", "allowances"), ("/v1/data-subjects", "personal-data"),
    ("/v1/appointments", "appointments"), ("/v1/receipts", "money"), ("/v1/reconciliations", "money"), ("/v1/revenue", "money"),
)
# Text a query value may hold: no control characters but tab, line feed and carriage return.
STORABLE_TEXT = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F]*$"
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "string", "pattern": "^[0-9]+$"}}}


# Lists that page with a cursor, and the query parameter that carries it.
PAGED_LISTS = {
    ("get", "/v1/service-requests"): "cursor", ("get", "/v1/organizations/{code}/work-queue"): "cursor",
    ("get", "/v1/jobs"): "cursor", ("get", "/v1/audit/events"): "after", ("get", "/v1/streams/events"): "after",
    ("get", "/v1/subscriptions"): "cursor", ("get", "/v1/subscriptions/{id}/deliveries"): "after",
    ("get", "/v1/data-subjects/{national_id}/access-log"): "after", ("get", "/v1/land-tax/notices"): "cursor",
    ("get", "/v1/appointments"): "cursor", ("get", "/v1/receipts"): "cursor", ("get", "/v1/allowances/recipients"): "cursor",
}
_LINK = {"Link": {"description": 'RFC 8288 `<...>; rel="next"`: this request\'s address with the cursor of the next page; absent on the last page',
                  "required": False, "schema": {"type": "string"}}}


def _add_browser_operations(paths: dict[str, Any]) -> None:
    """What browsers on other origins use: the Link header of every paged list, tickets for the
    live stream (``EventSource`` cannot send Authorization), and the interactive documentation.
    Cross-origin access itself (CORS preflights, ``OPTIONS``) is answered for every path when
    ONESTOP_CORS_ORIGINS lists the caller's origin; it is not an operation of its own."""
    from api.docs import ASSETS

    for (method, path), _parameter in PAGED_LISTS.items():
        ok = paths[path][method]["responses"]["200"]
        ok["headers"] = {**ok.get("headers", {}), **_LINK}
    paths["/v1/streams/tickets"] = {"post": {
        "operationId": "createStreamTicket",
        "summary": "A short-lived, single-use ticket for the live stream (`?ticket=` stands for the Authorization header, which EventSource cannot send)",
        "description": "Integrators and admins, by bearer token or session. No Idempotency-Key: a client that lost the answer asks for another ticket.",
        "responses": {"201": {
            "description": "the ticket; only its hash is kept",
            "headers": {"Location": {"description": "the live stream's address with this ticket", "schema": {"type": "string"}}},
            **_json({"type": "object", "required": ["ticket", "expires_at"], "properties": {
                "ticket": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$", "description": "256 random bits, base64url; good for one stream"},
                "expires_at": _TS}}),
        }, **_problems(401, 403)},
    }}
    live = paths["/v1/streams/events/live"]["get"]
    live["parameters"].append({"name": "ticket", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
                               "description": "a ticket from POST /v1/streams/tickets, instead of the Authorization header; used once: reconnect with a new ticket and after=<the last id>"})
    live["security"] = [{"bearer": []}, {}]
    live["responses"]["401"] = {"description": "no valid token, or the ticket is unknown, expired or already used",
                                "content": {"application/problem+json": {"schema": _ref("Problem")}}}
    paths["/v1/docs"] = {"get": {
        "operationId": "getDocs", "summary": "Interactive documentation (Swagger UI) of this document, served from the package, no CDN",
        "security": [], "responses": {"200": {"description": "the page", "content": {"text/html": {}}}},
    }}
    paths["/v1/docs/{asset}"] = {"get": {
        "operationId": "getDocsAsset", "summary": "A file of the interactive documentation", "security": [],
        "parameters": [{"name": "asset", "in": "path", "required": True, "schema": {"type": "string", "enum": list(ASSETS)}}],
        "responses": {"200": {"description": "the file", "content": {t: {} for t in sorted(set(ASSETS.values()))}}, **_problems(404)},
    }}


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
            for parameter in operation.get("parameters", ()):
                schema = parameter.get("schema", {})
                # The query check (api/http.py) refuses control characters in any query value.
                if parameter.get("in") == "query" and schema.get("type") == "string" and not ({"pattern", "enum", "format", "const"} & schema.keys()):
                    parameter["schema"] = {**schema, "pattern": STORABLE_TEXT}
            if any(p.get("name") == "min_position" for p in operation.get("parameters", ())):
                shared.append(503)  # the views did not reach min_position in time: retry after
            for status in shared:
                responses.setdefault(str(status), _problems(status)[str(status)])
            for status in ("429", "503"):
                if status in responses and "content" in responses[status]:
                    responses[status] = {**responses[status], "headers": _RETRY_AFTER}


class QueryParameters:
    """The query parameters each operation of the OpenAPI document takes, so that a call with one
    it does not take is refused (400 naming it) rather than silently ignored: a misspelt filter
    would otherwise widen a list without the caller knowing."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._operations: list[tuple[str, re.Pattern[str], frozenset[str]]] = []
        # By the path template as written in the document ("/v1/service-requests/{id}"), which
        # is the routed resource's canonical path (aiohttp's resource.canonical): one lookup.
        self._by_template: dict[tuple[str, str], frozenset[str]] = {}
        templates = sorted(document["paths"].items(), key=lambda item: item[0].count("{"))  # literal paths first
        for path, item in templates:
            pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
            for method, operation in item.items():
                names = frozenset(p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query")
                self._operations.append((method.upper(), pattern, names))
                self._by_template[(method.upper(), path)] = names

    def allowed(self, method: str, path: str, template: str | None = None) -> frozenset[str] | None:
        """The names ``method`` on ``path`` takes; None for a path the document does not describe.
        ``template``: the canonical path of the route that matched, when there is one; an
        operation documented under it answers without matching ``path`` against every path."""
        method = "GET" if method == "HEAD" else method
        if template is not None:
            names = self._by_template.get((method, template))
            if names is not None:
                return names
        for candidate, pattern, names in self._operations:
            if candidate == method and pattern.match(path):
                return names
        return None
