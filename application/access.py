"""Who may see and do what. One policy, used by commands (on aggregates) and reads (on views)."""

from __future__ import annotations

from typing import Any, Mapping

from application.errors import Forbidden, NotFound
from domain.actors import Actor

READERS = frozenset({"citizen", "officer", "auditor", "admin"})
# Actions an officer of the responsible organisation takes; others are the applicant's.
DECISIONS = frozenset({"assign", "request-info", "approve", "reject", "complete", "assess-fee", "retry"})
APPLICANT_ACTIONS = frozenset({"provide-info", "withdraw"})


def can_see(actor: Actor, request: Mapping[str, Any]) -> bool:
    """``request`` has ``organization``, ``filed_at`` and ``applicant_national_id``."""
    if actor.role in ("auditor", "admin"):
        return True
    if actor.role == "officer":
        return actor.org in (request["organization"], request["filed_at"])
    if actor.role == "citizen":
        return actor.pid == request["applicant_national_id"]
    return False


def check_can_see(actor: Actor, request: Mapping[str, Any]) -> None:
    # Someone else's request is "not found", so that its existence does not leak.
    if not can_see(actor, request):
        raise NotFound("no such service request")


def check_can_act(actor: Actor, action: str, request: Mapping[str, Any]) -> None:
    check_can_see(actor, request)
    if actor.role == "admin":
        return
    if actor.role == "officer":
        if action in DECISIONS and actor.org != request["organization"]:
            raise Forbidden(f"only officers of {request['organization']} decide this request")
        return
    if actor.role == "citizen" and action in APPLICANT_ACTIONS:
        return
    raise Forbidden(f"the {actor.role} role may not {action} a request")


def check_can_submit(actor: Actor, national_id: str, filed_at: str | None, channel: str) -> None:
    if actor.role == "citizen":
        if actor.pid != national_id:
            raise Forbidden("a citizen files requests only for themself")
        if channel == "counter":
            raise Forbidden("the counter channel is for officers filing on a citizen's behalf")
        return
    if actor.role == "officer":
        if filed_at != actor.org:
            raise Forbidden(f"an officer of {actor.org} files requests at {actor.org} only")
        return
    if actor.role == "admin":
        return
    raise Forbidden(f"the {actor.role} role may not file requests")
