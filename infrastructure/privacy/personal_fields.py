"""Which fields of which stored events hold personal data, and whose.

Data, not code: every stored event topic is listed (a unit test walks the domain and fails on an
unlisted one), with how its data subject is found and which of its fields are personal.

Subject:
- ``APPLICANT``: the event names the person (``applicant.national_id``): a request's first event.
- ``PERSON``: the event names the person by their national ID in the field ``person``
  (a recipient, a tax notice's owner): their key set is found by its blind index.
- ``REQUEST``: the event names another aggregate of the person (``via``: ``request_id``, a
  payment, a notice), whose subject it shares.
- ``AGGREGATE``: the subject of the event's aggregate, known from its first event.
- ``ELEMENTS``: a batch event naming many people (a disbursement batch's lines, a tax roll's
  rows): each element of its personal fields is encrypted with the key of its own person
  (``Elements``), so that erasing one person leaves the others readable.
- ``None``: the event concerns no person (nothing in it is encrypted).

On every event with a subject, ``actor.sub`` is personal too when the actor is a citizen (their
national ID, or their ThaiD subject).
"""

from __future__ import annotations

from dataclasses import dataclass

APPLICANT = "applicant"
PERSON = "person"
REQUEST = "request"
AGGREGATE = "aggregate"
ELEMENTS = "elements"


@dataclass(frozen=True)
class Elements:
    """Where the person of one element (a list) of a batch event is found, and which of its
    positions are personal: ``national_id_at`` (their national ID) or ``aggregate_at`` (the id of
    an aggregate of theirs, e.g. a recipient)."""

    personal: tuple[int, ...]
    national_id_at: int | None = None
    aggregate_at: int | None = None


@dataclass(frozen=True)
class Classification:
    subject: str | None
    fields: tuple[str, ...] = ()
    person: str = "applicant.national_id"  # PERSON, APPLICANT: the field holding the national ID
    via: tuple[str, ...] = ("request_id",)  # REQUEST: fields naming aggregates, the first with a subject wins
    elements: Elements | None = None  # ELEMENTS


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
    # A land-tax payment has no request: it shares the subject of its notice's owner.
    _P + "Opened": Classification(REQUEST, via=("request_id", "notice_id")),
    _P + "Received": Classification(AGGREGATE),
    _P + "Discrepancy": Classification(AGGREGATE),
    _P + "ChargeCreated": Classification(AGGREGATE),
    _P + "ReceivedAfterExpiry": Classification(AGGREGATE),
    _P + "Expired": Classification(AGGREGATE),
    _P + "Refunded": Classification(AGGREGATE),
    _P + "ReceiptIssued": Classification(AGGREGATE),
    # Money for an unknown reference: no person is known.
    "onestop:UnmatchedPayment.Recorded": Classification(None),
    # A person as the erasure knows them (a keyed blind index), and the erasure itself (the legal
    # basis, the random ids of their key sets): no personal field.
    "onestop:DataSubject.Registered": Classification(None),
    "onestop:DataSubject.Erased": Classification(None),
}

_A = "onestop:Recipient."
_T = "onestop:TaxNotice."
_AP = "onestop:Appointment."
PERSONAL_FIELDS.update({
    # The elderly allowance register: the recipient (national ID, birth date, payout account) and
    # the reasons officers gave for suspending, resuming or ending their allowance. The amounts,
    # months and statuses are the disbursement record the law requires to be kept.
    _A + "Registered": Classification(PERSON, ("national_id", "birth_date", "payout"), person="national_id"),
    _A + "Suspended": Classification(AGGREGATE, ("reason",)),
    _A + "Resumed": Classification(AGGREGATE, ("reason",)),
    _A + "Ended": Classification(AGGREGATE, ("reason",)),
    _A + "BandChanged": Classification(AGGREGATE),
    # A run names no one: counts, batch ids, the month.
    "onestop:AllowanceRun.Started": Classification(None),
    "onestop:AllowanceRun.Planned": Classification(None),
    "onestop:AllowanceRun.RetryRequested": Classification(None),
    "onestop:AllowanceRun.Failed": Classification(None),
    # A batch holds many people: each line (LINE_FIELDS) is encrypted with the key of the person
    # it pays (national ID, payout account), each result (RESULT_FIELDS) with the key of its
    # recipient (the bank's reason); recipient ids, bands, amounts and transfer ids stay plain.
    "onestop:DisbursementBatch.Prepared": Classification(ELEMENTS, ("lines",), elements=Elements(national_id_at=1, personal=(1, 5))),
    "onestop:DisbursementBatch.Settled": Classification(ELEMENTS, ("results",), elements=Elements(aggregate_at=0, personal=(2,))),
    # The land-and-building tax: a notice names its owner (ID, name) and their parcels; the
    # number, the tax, reduction, instalments and payments are the tax record that is kept.
    _T + "Issued": Classification(PERSON, ("owner_id", "owner_name", "parcels"), person="owner_id"),
    _T + "PaymentOpened": Classification(AGGREGATE),
    _T + "PaymentReceived": Classification(AGGREGATE),
    _T + "WarningRecorded": Classification(AGGREGATE),
    # The roll holds every owner of an organisation: each recorded row ([parcel_id, owner_id,
    # owner_kind, owner_name, land_use, value_satang, vacant_years]) has its owner's ID and name
    # encrypted with that owner's key, each [owner_id, notice_id] pair its owner's ID. Parcel
    # ids, uses and assessed values are the tax record (kept), and a revaluation
    # ([parcel_id, old, new]) names no owner.
    "onestop:TaxRoll.Opened": Classification(None),
    "onestop:TaxRoll.ParcelsRecorded": Classification(ELEMENTS, ("rows",), elements=Elements(national_id_at=1, personal=(1, 3))),
    "onestop:TaxRoll.ParcelsRevalued": Classification(None),
    "onestop:TaxRoll.NoticesIssued": Classification(ELEMENTS, ("owners",), elements=Elements(national_id_at=0, personal=(0,))),
    # Counter appointments: the applicant who booked (ID, name), why they cancelled; times,
    # services and the request a check-in started are not personal.
    _AP + "Booked": Classification(APPLICANT, ("applicant",)),
    _AP + "Cancelled": Classification(AGGREGATE, ("reason",)),
    _AP + "Rescheduled": Classification(AGGREGATE),
    _AP + "CheckedIn": Classification(AGGREGATE),
    _AP + "MarkedNoShow": Classification(AGGREGATE),
    _AP + "ReminderDue": Classification(AGGREGATE),
    # A slot counts seats, and a person's booking ledger holds appointment ids only.
    "onestop:Slot.Opened": Classification(None), "onestop:Slot.SeatHeld": Classification(None),
    "onestop:Slot.SeatReleased": Classification(None),
    "onestop:BookingLedger.Opened": Classification(None), "onestop:BookingLedger.Added": Classification(None),
    "onestop:BookingLedger.Removed": Classification(None),
    # The money trail: a receipt's payer is the applicant of its request, or the owner of the tax
    # notice its payment was for; the number, items, amount and method are kept (the
    # organisation's accounts). A void's reason is staff's.
    "onestop:Receipt.Issued": Classification(REQUEST, ("payer",), via=("request_id", "payment_id")),
    "onestop:Receipt.Voided": Classification(AGGREGATE),
    "onestop:ReceiptBook.Opened": Classification(None), "onestop:ReceiptBook.NumberTaken": Classification(None),
    "onestop:Reconciliation.Opened": Classification(None), "onestop:Reconciliation.Recorded": Classification(None),
})
