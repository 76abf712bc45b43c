"""Retention: people whose every request closed longer ago than its service's retention period
(rules file, ``[[retention]]``) are erased, as if they had asked (``DataSubject.Erased`` with
reason "retention"). The report lists them without erasing anyone.

People are found in the views by the blind index of their national ID; a request counts as
closed at the time of its last event, once it is completed, rejected or withdrawn. A person
with any open request, or any request of a service without a retention period, is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.calendar import bangkok_day
from domain.catalogue import SERVICES
from domain.rules import RuleBook
from domain.service_request import FINAL


@dataclass(frozen=True)
class Expired:
    subject: str  # the blind index
    references: list[str]
    services: list[str]
    last_closed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "references": self.references, "services": self.services,
                "last_closed_at": self.last_closed_at.isoformat()}


_EXPIRED = """
WITH r(service, years) AS (SELECT * FROM unnest(%s::text[], %s::int[]))
SELECT s.applicant_index AS subject, array_agg(s.reference ORDER BY s.submitted_at) AS refs,
       array_agg(DISTINCT s.service) AS services, max(s.updated_at) AS last_closed_at
FROM request_summaries s LEFT JOIN r ON r.service = s.service
WHERE s.applicant_index IS NOT NULL
GROUP BY s.applicant_index
HAVING bool_and(s.status = ANY(%s) AND r.years IS NOT NULL AND s.updated_at + make_interval(years => r.years) <= %s)
ORDER BY max(s.updated_at), s.applicant_index
LIMIT %s
"""


def expired_subjects(datastore: Any, rules: RuleBook, now: datetime, *, limit: int = 10_000) -> list[Expired]:
    """The people retention would erase now (at most ``limit``, longest closed first)."""
    today = bangkok_day(now)
    periods = {code: rules.retention_years(code, today) for code in SERVICES}
    kept = {code: years for code, years in periods.items() if years is not None}
    with datastore.transaction(commit=False) as curs:
        curs.execute(_EXPIRED, (list(kept), list(kept.values()), sorted(FINAL), now, limit))
        rows = curs.fetchall()
    return [Expired(r["subject"], list(r["refs"]), sorted(r["services"]), r["last_closed_at"]) for r in rows]
