"""The OpenAPI 3.1 document, built from the same schemas the handlers and the domain check with."""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

from api.openapi_paths.common import BEARER, NULLABLE_STRING, TIMESTAMP, json_content, problems, schema_ref
from api.openapi_paths.allowances import add_allowances
from api.openapi_paths.appointments import add_appointments
from api.openapi_paths.integrations import add_audit_and_integrations
from api.openapi_paths.land_tax import add_land_tax
from api.openapi_paths.money_trail import add_money_trail
from api.openapi_paths.operations import add_operations
from api.openapi_paths.personal_data import add_personal_data
from api.openapi_paths.sign_in import SESSION_SCHEME, add_sign_in
from application.commands import ACTION_SCHEMAS, RECORD_CASH_SCHEMA
from domain.catalogue import SERVICES
from domain.payment import PAYMENT_STATUSES
from domain.service_request import STATUSES
from domain.submission import SUBMISSION_SCHEMA

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
        "assigned_to": NULLABLE_STRING,
        "submitted_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "due_at": TIMESTAMP,
        "outcome": NULLABLE_STRING,
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
        "expires_at": TIMESTAMP,
        "version": {"type": "integer"},
        "method": NULLABLE_STRING,
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
        "occurred_at": TIMESTAMP, "actor": {"type": "object"}, "data": {"type": "object"},
    },
}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    submission = copy.deepcopy(SUBMISSION_SCHEMA)
    submission["properties"]["details"] = {
        "description": "checked per service; see the Details* schemas",
        "oneOf": [schema_ref(f"Details.{code}") for code in SERVICES],
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
                                        "responses": {"200": {"description": "service"}, **problems(404)}}},
        "/v1/organizations": {"get": {"summary": "Organisations", "security": [], "parameters": [
            {"name": "kind", "in": "query", "required": False, "schema": {"type": "string", "enum": ["pao", "municipality", "sao"]}},
            {"name": "province", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 100}}],
            "responses": {"200": {"description": "organisations"}}}},
        "/v1/service-requests": {
            "post": {
                "summary": "File a request (a citizen for themself, an officer at a counter on a citizen's behalf); civil.appointment is no longer taken: book with POST /v1/appointments",
                "parameters": [idem],
                "requestBody": {"required": True, **json_content(schema_ref("Submission"))},
                "responses": {"201": {"description": "filed", **json_content(schema_ref("RequestState"))}, **problems(400, 401, 403, 413, 422)},
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
                "responses": {"200": {"description": "a page", **json_content({"type": "object", "properties": {"items": {"type": "array", "items": schema_ref("RequestState")}, "next_cursor": NULLABLE_STRING}})}, **problems(400, 401, 503)},
            },
        },
        "/v1/service-requests/{id}": {"get": {
            "summary": "One request (as_of=<RFC 3339> replays its history to that moment)",
            "parameters": [id_param, min_position, {"name": "as_of", "in": "query", "required": False, "schema": TIMESTAMP}],
            "responses": {"200": {"description": "the request", **json_content(schema_ref("RequestState"))}, **problems(401, 404, 503)},
        }},
        "/v1/service-requests/{id}/events": {"get": {
            "summary": "The request's events (and its payment's), in log order",
            "parameters": [id_param],
            "responses": {"200": {"description": "events", **json_content({"type": "object", "properties": {"items": {"type": "array", "items": schema_ref("Event")}}})}, **problems(401, 404)},
        }},
        "/v1/payments/{id}": {"get": {"summary": "A payment", "parameters": [id_param], "responses": {"200": {"description": "payment", **json_content(schema_ref("Payment"))}, **problems(401, 404)}}},
        "/v1/payments/{id}/qr": {"get": {
            "summary": "The PromptPay QR code", "parameters": [id_param, {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["png", "svg"]}}],
            "responses": {"200": {"description": "image", "content": {"image/png": {}, "image/svg+xml": {}}}, **problems(401, 404, 409)},
        }},
        "/v1/payments/{id}/record-cash": {"post": {
            "summary": "Cash taken at a counter", "parameters": [id_param, if_match],
            "requestBody": {"required": True, **json_content(schema_ref("RecordCash"))},
            "responses": {"200": {"description": "paid", **json_content(schema_ref("Payment"))}, **problems(401, 403, 404, 409, 412, 422)},
        }},
    }
    add_operations(paths)
    add_land_tax(paths, schemas, id_param, if_match, min_position)
    add_allowances(paths)
    add_appointments(paths, schemas, id_param, idem, if_match, min_position)
    add_money_trail(paths, schemas, id_param, if_match)
    add_audit_and_integrations(paths, schemas, id_param, idem)
    add_personal_data(paths)
    add_sign_in(paths)
    for action in ACTION_SCHEMAS:
        paths[f"/v1/service-requests/{{id}}/{action}"] = {"post": {
            "summary": f"{action.replace('-', ' ').capitalize()}",
            "parameters": [id_param, if_match],
            "requestBody": {"required": False, **json_content(schema_ref(f"Action.{action}"))},
            "responses": {"200": {"description": "the new state", **json_content(schema_ref("RequestState"))}, **problems(400, 401, 403, 404, 409, 412, 422)},
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
            **json_content({"type": "object", "required": ["ticket", "expires_at"], "properties": {
                "ticket": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$", "description": "256 random bits, base64url; good for one stream"},
                "expires_at": TIMESTAMP}}),
        }, **problems(401, 403)},
    }}
    live = paths["/v1/streams/events/live"]["get"]
    live["parameters"].append({"name": "ticket", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
                               "description": "a ticket from POST /v1/streams/tickets, instead of the Authorization header; used once: reconnect with a new ticket and after=<the last id>"})
    live["security"] = [{"bearer": []}, {}]
    live["responses"]["401"] = {"description": "no valid token, or the ticket is unknown, expired or already used",
                                "content": {"application/problem+json": {"schema": schema_ref("Problem")}}}
    paths["/v1/docs"] = {"get": {
        "operationId": "getDocs", "summary": "Interactive documentation (Swagger UI) of this document, served from the package, no CDN",
        "security": [], "responses": {"200": {"description": "the page", "content": {"text/html": {}}}},
    }}
    paths["/v1/docs/{asset}"] = {"get": {
        "operationId": "getDocsAsset", "summary": "A file of the interactive documentation", "security": [],
        "parameters": [{"name": "asset", "in": "path", "required": True, "schema": {"type": "string", "enum": list(ASSETS)}}],
        "responses": {"200": {"description": "the file", "content": {t: {} for t in sorted(set(ASSETS.values()))}}, **problems(404)},
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
                responses.setdefault(str(status), problems(status)[str(status)])
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
