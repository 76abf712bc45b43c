"""Who may see and do what: one table, used by commands (on aggregates) and reads (on views).

The table is data: (role, relation to the request) → {action: permission}. A caller's relations
to a request are worked out once (``relations``); the best permission any of them grants wins.
The README prints the same table (``markdown_table``; ``python -m application.access``), and a
test keeps the two equal.
"""

from __future__ import annotations

from typing import Any, Mapping

from application.errors import Forbidden, NotFound, UnknownAction
from domain.actors import Actor, assurance_level, ROLES as ACTOR_ROLES
from domain.errors import InvalidCommand

# Relations of a caller to one request.
APPLICANT = "applicant"  # a citizen whose national ID is the applicant's
FILING_COUNTER = "filing_counter"  # an officer of the organisation where it was filed (`filed_at`)
RESPONSIBLE_ORG = "responsible_org"  # an officer of the organisation that decides it (`organization`)
ANY = "any"  # every request, whoever filed it
RELATIONS = (APPLICANT, FILING_COUNTER, RESPONSIBLE_ORG, ANY)

# Permissions.
YES = "yes"
ON_BEHALF = "on behalf"  # only with "on_behalf_of_applicant": true in the action's body, which the event records
ON_BEHALF_FIELD = "on_behalf_of_applicant"

DECISIONS = ("assign", "request-info", "approve", "reject", "complete", "assess-fee", "retry")
APPLICANT_ACTIONS = ("provide-info", "withdraw")
# Erasing a person's personal data (PDPA s.33): the data protection officer (`dpo`) or an admin.
ERASE_SUBJECT = "erase-subject"
ACTIONS = ("read", "submit", *DECISIONS, "record-cash", *APPLICANT_ACTIONS, ERASE_SUBJECT)

_ALL_DECISIONS = {action: YES for action in DECISIONS}
_FOR_THE_APPLICANT = {action: ON_BEHALF for action in APPLICANT_ACTIONS}

# Anything not listed is refused. Integrators and the system have no rows: they read the
# published feed, not requests.
ACCESS: dict[tuple[str, str], dict[str, str]] = {
    ("citizen", APPLICANT): {"read": YES, "submit": YES, "provide-info": YES, "withdraw": YES},
    ("officer", FILING_COUNTER): {"read": YES, "submit": YES, "record-cash": YES, **_FOR_THE_APPLICANT},
    ("officer", RESPONSIBLE_ORG): {"read": YES, **_ALL_DECISIONS, "record-cash": YES, **_FOR_THE_APPLICANT},
    ("auditor", ANY): {"read": YES},
    # The data protection officer: reads personal data to answer data subjects, and erases it
    # where the law allows; acts on nothing else.
    ("dpo", ANY): {"read": YES, ERASE_SUBJECT: YES},
    # Applicant-only actions are the applicant's, or a counter officer's on their behalf: an
    # admin, who belongs to no counter, takes neither.
    ("admin", ANY): {"read": YES, "submit": YES, **_ALL_DECISIONS, "record-cash": YES, ERASE_SUBJECT: YES},
}



def roles_that(action: str) -> tuple[str, ...]:
    """The roles the table lets ``action`` on some request, in ``ROLES`` order."""
    return tuple(role for role in ROLES if any(r == role and action in granted for (r, _), granted in ACCESS.items()))


# Roles, by what they may call; every handler's list of roles is one of these. The roles a
# caller's token may carry: every actor's but the system's, which acts only inside OneStop.
ROLES = tuple(role for role in ACTOR_ROLES if role != "system")
READERS = roles_that("read")  # read requests and payments
FILERS = roles_that("submit")  # file requests and act on them (the table decides which action)
STAFF = roles_that("record-cash")  # officers and admins: counters, jobs
AUDITORS = ("auditor", "admin")  # the log, its export and verification, past states
ORGANIZATION_VIEWERS = ("officer", "auditor", "admin")  # an organisation's work queue and counts
INTEGRATORS = ("integrator", "admin")  # the published feed and webhook subscriptions
ADMINS = ("admin",)

_RANK = {None: 0, ON_BEHALF: 1, YES: 2}
_RELATION_NAMES = {
    APPLICANT: "the applicant", FILING_COUNTER: "the filing counter",
    RESPONSIBLE_ORG: "the responsible organisation", ANY: "any request",
}


def relations(actor: Actor, request: Mapping[str, Any]) -> frozenset[str]:
    """The actor's relations to ``request`` (which has ``organization``, ``filed_at`` and
    ``applicant_national_id``)."""
    found = {ANY}
    if actor.pid is not None and actor.pid == request.get("applicant_national_id"):
        found.add(APPLICANT)
    if actor.org is not None and actor.org == request.get("filed_at"):
        found.add(FILING_COUNTER)
    if actor.org is not None and actor.org == request.get("organization"):
        found.add(RESPONSIBLE_ORG)
    return frozenset(found)


def permission(actor: Actor, action: str, request: Mapping[str, Any]) -> str | None:
    """``YES``, ``ON_BEHALF`` or ``None`` (refused): the best that any relation grants."""
    if action not in ACTIONS:
        raise UnknownAction(f"unknown action {action!r}")
    best: str | None = None
    for relation in relations(actor, request):
        granted = ACCESS.get((actor.role, relation), {}).get(action)
        if _RANK[granted] > _RANK[best]:
            best = granted
    return best


def can_see(actor: Actor, request: Mapping[str, Any]) -> bool:
    return permission(actor, "read", request) is not None


def check_can_see(actor: Actor, request: Mapping[str, Any]) -> None:
    # Someone else's request is "not found", so that its existence does not leak.
    if not can_see(actor, request):
        raise NotFound("no such service request")


def check_can_act(actor: Actor, action: str, request: Mapping[str, Any], *, on_behalf_of_applicant: bool = False) -> None:
    """Refuse unless the table lets ``actor`` take ``action`` on ``request``. An applicant's
    action taken by staff needs ``on_behalf_of_applicant``; the applicant themself must not
    send it."""
    check_can_see(actor, request)
    granted = permission(actor, action, request)
    if granted is None:
        raise Forbidden(f"the {actor.role} role may {action} a request only as {_who_may(actor.role, action)}")
    if granted == ON_BEHALF and not on_behalf_of_applicant:
        raise Forbidden(
            f"{action} is the applicant's action: staff take it only for the applicant, saying so",
            [(ON_BEHALF_FIELD, "must be true when staff act for the applicant")],
        )
    if granted == YES and on_behalf_of_applicant:
        raise InvalidCommand("only staff act on the applicant's behalf", [(ON_BEHALF_FIELD, "is for staff acting for the applicant")])


def check_can_submit(actor: Actor, national_id: str, filed_at: str | None, channel: str) -> None:
    request = {"applicant_national_id": national_id, "filed_at": filed_at, "organization": None}
    if permission(actor, "submit", request) is None:
        raise Forbidden(f"the {actor.role} role may file a request only as {_who_may(actor.role, 'submit')}")
    if actor.role == "citizen" and channel == "counter":
        raise Forbidden("the counter channel is for officers filing on a citizen's behalf")


def check_assurance(actor: Actor, service_code: str, min_ial: str) -> None:
    """A citizen acting on a service needs a token whose identity assurance level is at least the
    service's ``min_ial``. Tokens that carry no level (development tokens) are not checked."""
    if actor.role != "citizen" or actor.ial is None:
        return
    level, needed = assurance_level(actor.ial), assurance_level(min_ial)
    if level is None or needed is None or level < needed:
        raise Forbidden(
            f"{service_code} needs identity assurance level {min_ial} or higher; this sign-in has {actor.ial}",
            [("ial", f"must be at least {min_ial}: sign in again with a stronger identity proofing")],
        )
def check_can_erase(actor: Actor) -> None:
    """Refuse unless the table lets ``actor`` erase a person's data."""
    if permission(actor, ERASE_SUBJECT, {}) is None:
        raise Forbidden(f"the {actor.role} role may not erase personal data (the dpo and admin roles may)")


def _who_may(role: str, action: str) -> str:
    allowed = [_RELATION_NAMES[relation] for (r, relation), actions in ACCESS.items() if r == role and action in actions]
    return " or ".join(allowed) if allowed else "nobody: this role may not"


def markdown_table() -> str:
    """The access table as the README prints it."""
    columns = list(ACCESS)
    header = "| action | " + " | ".join(f"{role} ({relation.replace('_', ' ')})" for role, relation in columns) + " |"
    rule = "|---|" + "---|" * len(columns)
    rows = [f"| `{action}` | " + " | ".join(ACCESS[column].get(action, "no") for column in columns) + " |" for action in ACTIONS]
    return "\n".join([header, rule, *rows])


if __name__ == "__main__":
    print(markdown_table())
