"""OpenAPI paths: Land and building tax."""

from __future__ import annotations

from typing import Any

from api.openapi_paths.common import NULLABLE_STRING, json_content, problems, schema_ref


def add_land_tax(paths: dict[str, Any], schemas: dict[str, Any], id_param: dict[str, Any], if_match: dict[str, Any],
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
        "responses": {"200": {"description": "what was accepted, unchanged and rejected", **json_content(import_result)},
                      **problems(400, 401, 403, 404, 408, 412, 413, 415, 422)},
    }}
    paths["/v1/land-tax/{tax_year}/notices"] = {"post": {
        "operationId": "issueLandTaxNotices",
        "summary": "Issue one notice per owner who has none yet (idempotent)", "parameters": [year],
        "responses": {"200": {"description": "counts", **json_content({"type": "object", "properties": {
            "issued": {"type": "integer"}, "already_issued": {"type": "integer"}, "exempt": {"type": "integer"}}})},
                      **problems(400, 401, 403, 404, 409, 412)},
    }}
    paths["/v1/land-tax/notices"] = {"get": {
        "operationId": "listLandTaxNotices",
        "summary": "Notices: a citizen's own, an officer's organisation's", "parameters": [
            {"name": "owner_id", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[0-9]{13}$"}},
            {"name": "tax_year", "in": "query", "required": False, "schema": {"type": "integer", "minimum": TAX_YEARS[0], "maximum": TAX_YEARS[1]}},
            {"name": "organization", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 40}},
            {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100}}, on, min_position],
        "responses": {"200": {"description": "a page", **json_content({"type": "object", "properties": {
            "items": {"type": "array", "items": schema_ref("TaxNotice")}, "next_cursor": NULLABLE_STRING}})}, **problems(400, 401, 403, 503)},
    }}
    paths["/v1/land-tax/notices/{id}"] = {"get": {
        "operationId": "getLandTaxNotice",
        "summary": "One notice, with the amount due on `on`", "parameters": [id_param, on, min_position],
        "responses": {"200": {"description": "the notice", **json_content(schema_ref("TaxNotice"))}, **problems(400, 401, 403, 404, 503)},
    }}
    paths["/v1/land-tax/notices/{id}/payments"] = {"post": {
        "operationId": "openLandTaxNoticePayment",
        "summary": "Open a PromptPay payment of what is due today (an instalment, or everything with instalment null); valid to the end of the Bangkok day",
        "parameters": [id_param], "requestBody": {"required": False, **json_content(schema_ref("NoticePayment"))},
        "responses": {"201": {"description": "the payment, as GET /v1/payments/{id}", **json_content(schema_ref("Payment"))},
                      **problems(400, 401, 403, 404, 409, 412, 422)},
    }}
    paths["/v1/land-tax/notices/{id}/warnings"] = {"post": {
        "operationId": "recordLandTaxNoticeWarning",
        "summary": "Record a warning notice (s.61) served on the owner, with its payment deadline",
        "parameters": [id_param, if_match], "requestBody": {"required": True, **json_content(schema_ref("Warning"))},
        "responses": {"201": {"description": "the notice", **json_content(schema_ref("TaxNotice"))}, **problems(400, 401, 403, 404, 409, 412, 422)},
    }}
