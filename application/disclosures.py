"""Who looked: every read of a person's data by someone other than the person is recorded in
the access log (actor, subject reference, what was read, purpose, time).

A citizen reads only their own data (the access table grants them nothing else), so a citizen's
reads are not recorded. Integrators are not recorded either: the feed they read carries no
names and only masked national IDs.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Iterable

from application.ports import AccessEntry, AccessLog, Clock, SubjectIndex, SubjectLookup
from domain.actors import Actor

PURPOSE_MAX = 200
# The kinds of read (``what``), as the access log names them.
REQUEST = "service-request"
REQUEST_LIST = "service-request-list"
REQUEST_EVENTS = "service-request-events"
REQUEST_AS_OF = "service-request-as-of"
SUBJECT_EXPORT = "data-subject-export"
AUDIT_EVENTS = "audit-events"
AUDIT_EXPORT = "audit-export"
KINDS = (REQUEST, REQUEST_LIST, REQUEST_EVENTS, REQUEST_AS_OF, SUBJECT_EXPORT, AUDIT_EVENTS, AUDIT_EXPORT)
UNRECORDED_ROLES = frozenset({"citizen", "integrator", "system"})


def purpose_problem(text: str) -> str | None:
    """Why ``text`` is not an acceptable purpose, or None: at most 200 characters, none of them a
    control character (C0, DEL, C1) or a lone surrogate."""
    if len(text) > PURPOSE_MAX:
        return f"must be at most {PURPOSE_MAX} characters"
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in text):
        return "must be printable text (no control characters)"
    return None


class Disclosures:
    """Records reads of personal data in the access log."""

    def __init__(self, log: AccessLog, index: SubjectIndex, lookup: SubjectLookup, clock: Clock) -> None:
        self.log = log
        self.index = index
        self.lookup = lookup
        self.clock = clock

    @staticmethod
    def recorded(actor: Actor) -> bool:
        """Whether this actor's reads are recorded (staff, auditors, the DPO)."""
        return actor.role not in UNRECORDED_ROLES

    def note(self, actor: Actor, what: str, resource: str | None, national_ids: Iterable[str | None], purpose: str | None) -> None:
        """Record that ``actor`` read the data of the people with ``national_ids``."""
        if not self.recorded(actor):
            return
        at = self.clock.now()
        # An erased person's ID reads "[erased]": there is nobody left to record the read against.
        refs = {self.index.reference(n) for n in national_ids if n and n.isdigit()}
        if refs:
            self.log.record([
                AccessEntry(at=at, subject_ref=ref, actor_sub=actor.sub, actor_role=actor.role, actor_org=actor.org,
                            what=what, resource=resource, purpose=purpose)
                for ref in sorted(refs)
            ])

    async def note_events(self, actor: Actor, what: str, resource: str | None, events: list[dict[str, Any]], purpose: str | None) -> None:
        """Record a read of stored events (audit pages and exports): one row per person whose
        requests or payments the events belong to."""
        if not self.recorded(actor) or not events:
            return
        found: dict[str, str] = {}
        for event in events:
            applicant = (event.get("data") or {}).get("applicant")
            # Read in the clear only: an export without ``plain`` carries ciphertext, and the
            # person is then found through the views.
            national_id = applicant.get("national_id") if isinstance(applicant, dict) else None
            if event.get("type") == "ServiceRequest.Submitted" and isinstance(national_id, str) and national_id.isdigit():
                found[event["aggregate_id"]] = applicant["national_id"]
        missing = sorted({e["aggregate_id"] for e in events if e.get("aggregate_id") and e["aggregate_id"] not in found})
        if missing:
            found.update(await self.lookup.national_ids(missing))
        self.note(actor, what, resource, found.values(), purpose)
