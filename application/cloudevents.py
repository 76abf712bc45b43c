"""The one public format of OneStop's events: CloudEvents 1.0, structured JSON.

Pure mapping, no I/O: it takes an event as the log holds it (the plain document of
``infrastructure.views.read_models.stored_event_document``) and the organisation responsible for its
aggregate, and returns the CloudEvent. Published events carry as little personal data as the
integrations need: each event type names the fields its ``data`` carries (``PUBLISHED_FIELDS``),
so names, birth dates, bank accounts and request hashes are never among them; national IDs are
masked, and so are national IDs and phone numbers in free text, however they are written.

The public contract is the CloudEvents type (``th.onestop.<aggregate>.<event>.v1``) and the
shape of ``data``. When an event's class_version changes, the mapping keeps v1 data as it is
and a new ``.v2`` type is added beside it; ``data`` is never reshaped in place.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Iterable, Mapping
from uuid import UUID

from application.errors import InvalidCursor
from domain.appointments import Appointment
from domain.national_id import mask_national_id
from domain.allowance import AllowanceRun, DisbursementBatch, Recipient
from domain.payment import Payment, UnmatchedPayment
from domain.service_request import ServiceRequest

SPECVERSION = "1.0"
TYPE_PREFIX = "th.onestop."
TYPE_VERSION = "v1"
SOURCE_PREFIX = "/onestop/"
DATACONTENTTYPE = "application/json"

# -- what each published event carries ---------------------------------------------------------
#
# An allowlist: each event type names the fields its ``data`` carries, and how each is treated;
# every other field (names, birth dates, bank accounts, request hashes, whatever an outside
# system or a later event class adds) is left out. A nested dict is the allowlist of a nested
# object. Lists and objects under a scalar rule are left out too.

KEEP = "keep"            # a scalar OneStop made itself (codes, amounts, timestamps): as it is
TEXT = "text"            # a scalar someone typed or an outside system sent: IDs and phones masked
NATIONAL_ID = "national_id"  # a national ID: first digit and last four only
UUID_HEX = "uuid"        # kept by the event store as 32 hex digits; published dashed, so it joins
                         # with the ``subject`` of the aggregate it names

FieldRules = Mapping[str, "str | FieldRules"]

# What a citizen may put in ``details``, over every service of the catalogue (each service's
# schema allows no other key). ``bank_account`` is personal and is not published.
_DETAILS: FieldRules = {
    key: TEXT for key in (
        "to_house_id", "move_date", "building_permit_no", "address", "document", "copies", "service", "slot",
        "description", "area", "start_date", "end_date", "quantity", "month", "room_revenue_satang",
        "parcel_id", "tax_year", "subject", "location",
    )
}

PUBLISHED_FIELDS: dict[str, FieldRules] = {
    "ServiceRequest.Submitted": {
        "reference": KEEP, "service": KEEP, "organization": KEEP, "filed_at": KEEP, "due_at": KEEP,
        "applicant": {"national_id": NATIONAL_ID}, "details": _DETAILS,
    },
    "ServiceRequest.VerificationStarted": {},
    # The registry's answer: the verdict and the organisations only, never the person.
    "ServiceRequest.ApplicantVerified": {
        "registry": {
            "found": TEXT, "alive": TEXT, "reason": TEXT, "organization": TEXT, "monthly_allowance_satang": KEEP,
            "to_house": {"house_id": TEXT, "organization": TEXT},
        },
    },
    "ServiceRequest.FeeAssessed": {"amount_satang": KEEP, "payment_id": UUID_HEX},
    "ServiceRequest.PaymentSettled": {"payment_id": UUID_HEX},
    "ServiceRequest.ReviewStarted": {},
    "ServiceRequest.Assigned": {"officer": TEXT},
    "ServiceRequest.InfoRequested": {"message": TEXT},
    "ServiceRequest.InfoProvided": {"message": TEXT},
    "ServiceRequest.Approved": {"note": TEXT},
    "ServiceRequest.Rejected": {"reason": TEXT},
    "ServiceRequest.Completed": {
        "result": {"note": TEXT, "move_id": TEXT, "to_house_id": TEXT, "house_id": TEXT, "document_ref": TEXT},
    },
    "ServiceRequest.Withdrawn": {"reason": TEXT},
    "ServiceRequest.ActionRequired": {"job": KEEP, "job_id": KEEP, "reason": TEXT},
    "ServiceRequest.RetryRequested": {"job": KEEP, "job_id": KEEP},
    "Payment.Opened": {
        "request_id": UUID_HEX, "reference": KEEP, "organization": KEEP, "amount_satang": KEEP,
        "promptpay_payload": KEEP, "expires_at": KEEP, "notice_id": UUID_HEX, "instalment": KEEP,
    },
    "Payment.Received": {"amount_satang": KEEP, "method": KEEP, "provider_payment_id": TEXT},
    "Payment.Discrepancy": {"amount_satang": KEEP, "provider_payment_id": TEXT, "reason": TEXT},
    "Payment.ChargeCreated": {"charge_id": TEXT},
    "Payment.ReceivedAfterExpiry": {"amount_satang": KEEP, "provider_payment_id": TEXT},
    "Payment.Expired": {"reason": TEXT},
    "Payment.Refunded": {"amount_satang": KEEP, "refund_id": TEXT, "reason": TEXT},
    # Counter appointments: times and links only, never the applicant (integrators that send
    # reminders look the person up in their own systems by the appointment's id).
    "Appointment.Booked": {"organization": KEEP, "service": KEEP, "start": KEEP, "end": KEEP},
    "Appointment.Cancelled": {},
    "Appointment.Rescheduled": {"previous_start": KEEP, "start": KEEP, "end": KEEP},
    "Appointment.CheckedIn": {"request_id": UUID_HEX},
    "Appointment.MarkedNoShow": {},
    "Appointment.ReminderDue": {"start": KEEP},
    "Payment.ReceiptIssued": {"receipt_id": UUID_HEX, "receipt_number": KEEP},
    "UnmatchedPayment.Recorded": {"provider": TEXT, "provider_payment_id": TEXT, "reference": TEXT, "amount_satang": KEEP},
    # The elderly allowance: never birth dates or payout accounts, and no batch's lines.
    "Recipient.Registered": {"organization": KEEP, "start_month": KEEP, "band_amount_satang": KEEP},
    "Recipient.Suspended": {"reason": TEXT},
    "Recipient.Resumed": {"reason": TEXT},
    "Recipient.Ended": {"reason": TEXT, "last_month": KEEP},
    "Recipient.BandChanged": {"band_amount_satang": KEEP, "month": KEEP},
    "AllowanceRun.Started": {"organization": KEEP, "month": KEEP, "value_date": KEEP},
    "AllowanceRun.Planned": {"attempt": KEEP, "total": KEEP, "suspended": KEEP, "ended": KEEP},
    "AllowanceRun.RetryRequested": {"attempt": KEEP},
    "AllowanceRun.Failed": {"reason": TEXT},
    "DisbursementBatch.Prepared": {"run_id": KEEP, "organization": KEEP, "month": KEEP, "value_date": KEEP, "attempt": KEEP, "number": KEEP},
    "DisbursementBatch.Settled": {},
}

# -- masking free text ---------------------------------------------------------------------------
#
# A run of digits (any script: ``\d`` also matches Thai ๐-๙ and full-width digits) with up to
# three separators between any two of them: spaces (and the zero-width spaces Thai text uses),
# dashes, dots, commas, slashes, brackets. Letters end a run but need not be separated from it
# by anything (``\b`` would miss ``เลขบัตร3100600445635ครับ``: Thai letters are word characters).
_SEPARATORS = r"[\s\-.,/()_\u00ad\u2010-\u2015\u2212\u200b-\u200d\u2060\ufeff]"
_DIGIT_RUN = re.compile(rf"[+(]{{0,2}}\d(?:{_SEPARATORS}{{0,3}}\d)*")
_PHONE_MIN_DIGITS = 9  # 02-123-4567; mobiles have 10 (081-234-5678), +66 81 234 5678 has 11
_NATIONAL_ID_DIGITS = 13

_AGGREGATES = (ServiceRequest, Payment, UnmatchedPayment, Recipient, AllowanceRun, DisbursementBatch, Appointment)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


@lru_cache(maxsize=256)
def cloudevent_type(event_type: str) -> str:
    """``ServiceRequest.Submitted`` (or the topic ``onestop:ServiceRequest.Submitted``) →
    ``th.onestop.service-request.submitted.v1``."""
    name = event_type.partition(":")[2] or event_type
    aggregate, _, event = name.partition(".")
    return f"{TYPE_PREFIX}{_kebab(aggregate)}.{_kebab(event)}.{TYPE_VERSION}"


# Aggregates that only hold capacity for others: their events are never published.
UNPUBLISHED_AGGREGATES = frozenset({"Slot", "BookingLedger", "ReceiptBook"})  # internal counters


def is_published(event_type: str) -> bool:
    """Whether events of ``event_type`` (``Slot.SeatHeld`` or its topic) go to the feed."""
    name = event_type.partition(":")[2] or event_type
    return name.partition(".")[0] not in UNPUBLISHED_AGGREGATES


def _event_topics() -> dict[str, str]:
    topics: dict[str, str] = {}
    for aggregate in _AGGREGATES:
        for value in vars(aggregate).values():
            topic = getattr(value, "TOPIC", None)
            if isinstance(value, type) and issubclass(value, aggregate.Event) and isinstance(topic, str) and "." in topic:
                topics[cloudevent_type(topic)] = topic
    return topics


# Every published type and the event-store topic it comes from.
TOPIC_OF_TYPE: dict[str, str] = _event_topics()
PUBLISHED_TYPES: tuple[str, ...] = tuple(sorted(TOPIC_OF_TYPE))


def topics_for(types: Iterable[str]) -> list[str]:
    """The event-store topics of some CloudEvents types; KeyError names an unknown one."""
    return [TOPIC_OF_TYPE[t] for t in types]


def cursor_of(position: int) -> str:
    """A feed cursor: the log position, zero-padded so that cursors sort as the log does
    (clients treat it as opaque)."""
    return f"{position:020d}"


def position_of(cursor: str) -> int:
    """The log position a cursor stands for; InvalidCursor (a ValueError) when it is not one of ours."""
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 20:
        raise InvalidCursor("not a cursor")
    return int(cursor)


def mask_text(text: str) -> str:
    """``text`` with every Thai national ID and phone number in it masked, however written.

    A run of 13 digits is a national ID: it keeps its first digit and last four
    (``3XXXXXXXX5635``). A longer run may hide one, so all its digits become ``X``; so do those
    of a run of 9 to 12 digits that starts with ``0`` or ``66`` (a Thai phone number, national
    or international). Other numbers (dates, amounts, house numbers) are left as they are.
    """
    if len(text) < _PHONE_MIN_DIGITS:
        return text
    return _DIGIT_RUN.sub(_mask_run, text)


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    digits = "".join(str(unicodedata.digit(c)) for c in run if c.isdigit())
    if len(digits) == _NATIONAL_ID_DIGITS:
        return mask_national_id(digits)
    if len(digits) > _NATIONAL_ID_DIGITS or (len(digits) >= _PHONE_MIN_DIGITS and digits.startswith(("0", "66"))):
        return "".join("X" if c.isdigit() else c for c in run)
    return run


_LEFT_OUT = object()


def _scalar(value: Any, rule: str) -> Any:
    """``value`` under a scalar rule, or ``_LEFT_OUT``."""
    kind = type(value)
    if kind is dict or kind is list:
        return _LEFT_OUT
    if kind is not str:
        return value
    if rule == TEXT:
        return mask_text(value)
    if rule == NATIONAL_ID:
        return mask_national_id(value) if len(value) == _NATIONAL_ID_DIGITS else mask_text(value)
    if rule == UUID_HEX:
        try:
            return str(UUID(hex=value))
        except ValueError:
            return mask_text(value)  # never expected; but the feed must publish whatever was logged
    return value


def published_data(data: Mapping[str, Any], rules: FieldRules) -> dict[str, Any]:
    """The fields of ``data`` that ``rules`` names, each treated as its rule says."""
    result: dict[str, Any] = {}
    for key, rule in rules.items():
        if key not in data:
            continue
        value = data[key]
        if isinstance(rule, str):
            value = _scalar(value, rule)
        elif value is None:
            pass
        elif type(value) is dict:
            value = published_data(value, rule)
        else:
            value = _LEFT_OUT
        if value is not _LEFT_OUT:
            result[key] = value
    return result


def minimise(event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The published ``data`` of an event of ``event_type`` (``ServiceRequest.Submitted``): only
    the fields its type names; nothing at all for a type that names none."""
    return published_data(data, PUBLISHED_FIELDS.get(event_type, {}))


def _actor(actor: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if actor is None:
        return None
    if actor.get("role") == "citizen":
        # A citizen's subject is their national ID.
        return {"role": "citizen", "org": actor.get("org")}
    sub = actor.get("sub")
    return {"sub": mask_text(sub) if type(sub) is str else None, "role": actor.get("role"), "org": actor.get("org")}


def to_cloudevent(document: Mapping[str, Any], organization: str | None) -> dict[str, Any]:
    """The CloudEvent of one logged event.

    ``document`` has ``position``, ``aggregate_id``, ``version``, ``type``, ``occurred_at``,
    ``actor``, ``channel`` and ``data``; ``organization`` is the organisation responsible for
    the aggregate (a request's, or the request's that a payment is for).
    """
    name = document["type"].partition(":")[2] or document["type"]
    data = minimise(name, document["data"])
    data["actor"] = _actor(document.get("actor"))
    data["channel"] = document.get("channel")
    return {
        "specversion": SPECVERSION,
        # Stable: the same event always has the same id, so receivers can deduplicate.
        "id": f"{document['aggregate_id']}.{document['version']}",
        "source": SOURCE_PREFIX + organization if organization else SOURCE_PREFIX.rstrip("/"),
        "type": cloudevent_type(document["type"]),
        "subject": document["aggregate_id"],
        "time": document["occurred_at"],
        "datacontenttype": DATACONTENTTYPE,
        "sequence": cursor_of(document["position"]),
        "data": data,
    }
