"""Data subjects over HTTP (PDPA): erasure of a person's personal data by the DPO or an admin."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.consistency import position_headers
from api.http import json_response, read_json
from api.problems import HttpProblem
from application.erasure import EraseCommand, check_erase_command, erase_data_subject

ERASERS = ("dpo", "admin")
ERASURE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["basis"], "additionalProperties": False,
    "properties": {"basis": {"type": "string", "minLength": 1, "maxLength": 500,
                             "description": "the legal basis of the erasure, such as 'PDPA s.33(1): request of the data subject'"}},
}

routes = web.RouteTableDef()


@routes.post("/v1/data-subjects/{national_id}/erasure")
async def erase(request: web.Request) -> web.Response:
    """Erase a person's personal data: 200 with the erasure, 404 when OneStop holds none, 409
    while a request of theirs is open."""
    actor = authenticate(request, *ERASERS)
    national_id = request.match_info["national_id"]
    # The strict reader every body goes through: no control characters, no deep nesting, NFC.
    body = await read_json(request)
    if not isinstance(body, dict):
        raise HttpProblem(400, "Bad request body", "the body must be a JSON object", [("body", "must be a JSON object")])
    unknown = sorted(set(body) - {"basis"})
    if unknown:
        raise HttpProblem(400, "Bad request body", f"unknown field {unknown[0]!r}", [(unknown[0], "is not a field of an erasure")])
    # Checked here too, so that a bad request costs no thread and writes nothing.
    check_erase_command(national_id, body.get("basis"))
    ctx = request.app[CTX]
    command = EraseCommand(national_id=national_id, basis=body["basis"], actor=actor)
    result = await ctx.bus.call(lambda: erase_data_subject(ctx.app, command))
    return json_response(result, headers=position_headers(result))
