"""What the use cases take: the submit command, the body each action takes, and the hash that
tells a replayed request from another one under the same Idempotency-Key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from application.access import ON_BEHALF_FIELD
from domain.actors import Actor
from domain.land_tax import LAND_USES

_MESSAGE = {"type": "string", "minLength": 1, "maxLength": 2000}
# Staff taking an applicant's action (withdraw, provide-info) say so; the event records it.
_ON_BEHALF = {"type": "boolean", "description": "true when staff of the filing or responsible organisation act for the applicant"}


def _body(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


# The body each action takes; the API validates with these and publishes them in OpenAPI.
ACTION_SCHEMAS: dict[str, dict[str, Any]] = {
    "assign": _body({"officer": {"type": "string", "minLength": 1, "maxLength": 200}}, "officer"),
    "request-info": _body({"message": _MESSAGE}, "message"),
    "provide-info": _body({"message": _MESSAGE, ON_BEHALF_FIELD: _ON_BEHALF}, "message"),
    "approve": _body({"note": _MESSAGE}),
    "reject": _body({"reason": _MESSAGE}, "reason"),
    "complete": _body({"note": _MESSAGE}),
    "withdraw": _body({"reason": _MESSAGE, ON_BEHALF_FIELD: _ON_BEHALF}),
    # An officer gives the fee, or, for land and building tax, the assessed value and use.
    "assess-fee": _body({
        "amount_satang": {"type": "integer", "minimum": 1, "maximum": 10**13},
        "assessed_value_satang": {"type": "integer", "minimum": 0, "maximum": 10**15},
        "land_use": {"type": "string", "enum": list(LAND_USES)},
        "vacant_years": {"type": "integer", "minimum": 0, "maximum": 100},
        "note": _MESSAGE,
    }),
    "retry": _body({}),
}
RECORD_CASH_SCHEMA = _body({"amount_satang": {"type": "integer", "minimum": 1, "maximum": 10**13}}, "amount_satang")


@dataclass(frozen=True)
class SubmitCommand:
    body: Any
    actor: Actor
    request_hash: str
    idempotency_key: str | None = None


def request_hash(body: Any) -> str:
    """SHA-256 of the body's key-sorted JSON, so that key order does not make another request."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)).hexdigest()
