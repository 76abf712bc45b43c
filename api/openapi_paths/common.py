"""What every part of the OpenAPI document uses: references, JSON bodies, problem answers."""

from __future__ import annotations

from typing import Any

TIMESTAMP = {"type": "string", "format": "date-time"}
NULLABLE_STRING = {"type": ["string", "null"]}
BEARER = [{"bearer": []}]


def schema_ref(name: str) -> dict[str, str]:
    """A reference to a schema of the document's components."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON body of ``schema``."""
    return {"content": {"application/json": {"schema": schema}}}


def problems(*statuses: int) -> dict[str, Any]:
    """problem+json answers for ``statuses``."""
    return {str(s): {"description": "problem", "content": {"application/problem+json": {"schema": schema_ref("Problem")}}} for s in statuses}
