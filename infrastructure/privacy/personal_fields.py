"""Which fields of which stored events hold personal data, and whose.

Data, not code: every stored event topic is listed (a unit test walks the domain and fails on an
unlisted one), with how its data subject is found and which of its fields are personal.

Subject:
- ``APPLICANT``: the event names the person (``applicant.national_id``): a request's first event.
- ``REQUEST``: the event names the request (``request_id``) whose applicant it concerns.
- ``AGGREGATE``: the subject of the event's aggregate, known from its first event.
- ``None``: the event concerns no person (nothing in it is encrypted).

On every event with a subject, ``actor.sub`` is personal too when the actor is a citizen (their
national ID, or their ThaiD subject).
"""

from __future__ import annotations

from dataclasses import dataclass

APPLICANT = "applicant"
REQUEST = "request"
AGGREGATE = "aggregate"


@dataclass(frozen=True)
class Classification:
    subject: str | None
    fields: tuple[str, ...] = ()


_R = "onestop:ServiceRequest."
_P = "onestop:Payment."

PERSONAL_FIELDS: dict[str, Classification] = {
    # The applicant's national ID and name; details: what the citizen typed (complaint subject
    # and description, addresses, a bank account for the allowance, parcel IDs).
    _R + "Submitted": Classification(APPLICANT, ("applicant", "details")),
    _R + "VerificationStarted": Classification(AGGREGATE),
    # The registry's answer about the person (name, birth date, house, residence).
    _R + "ApplicantVerified": Classification(AGGREGATE, ("registry",)),
    _R + "FeeAssessed": Classification(AGGREGATE),
    _R + "PaymentSettled": Classification(AGGREGATE),
    _R + "ReviewStarted": Classification(AGGREGATE),
    _R + "Assigned": Classification(AGGREGATE),
    # Free text between officers and the citizen about the citizen's case.
    _R + "InfoRequested": Classification(AGGREGATE, ("message",)),
    _R + "InfoProvided": Classification(AGGREGATE, ("message",)),
    _R + "Approved": Classification(AGGREGATE, ("note",)),
    _R + "Rejected": Classification(AGGREGATE, ("reason",)),
    # The registry's result (house number, move, document reference of the person).
    _R + "Completed": Classification(AGGREGATE, ("result",)),
    _R + "Withdrawn": Classification(AGGREGATE, ("reason",)),
    # Job names and error texts OneStop wrote itself.
    _R + "ActionRequired": Classification(AGGREGATE),
    _R + "RetryRequested": Classification(AGGREGATE),
    # Payments: amounts, references and the bank's ids are kept plain (records the law requires
    # to be kept, see README "Personal data"); only a citizen actor is personal.
    _P + "Opened": Classification(REQUEST),
    _P + "Received": Classification(AGGREGATE),
    _P + "Discrepancy": Classification(AGGREGATE),
    _P + "ChargeCreated": Classification(AGGREGATE),
    _P + "ReceivedAfterExpiry": Classification(AGGREGATE),
    _P + "Expired": Classification(AGGREGATE),
    _P + "Refunded": Classification(AGGREGATE),
    # Money for an unknown reference: no person is known.
    "onestop:UnmatchedPayment.Recorded": Classification(None),
    # A person as the erasure knows them (a keyed blind index), and the erasure itself (the legal
    # basis, the random ids of their key sets): no personal field.
    "onestop:DataSubject.Registered": Classification(None),
    "onestop:DataSubject.Erased": Classification(None),
}

# The aggregates' first events, which tie the aggregate to its subject.
FIRST_EVENTS = frozenset({_R + "Submitted", _P + "Opened"})
