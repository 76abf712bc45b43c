"""The one public format of OneStop's events: CloudEvents 1.0, structured JSON.

Pure mapping, no I/O: it takes an event as the log holds it (the plain document of
``infrastructure.views.read_models.stored_event_document``) and the organisation responsible for its
aggregate, and returns the CloudEvent. Published events carry as little personal data as the
integrations need: national IDs are masked and names, birth dates and request hashes left out.

The public contract is the CloudEvents type (``th.onestop.<aggregate>.<event>.v1``) and the
shape of ``data``. When an event's class_version changes, the mapping keeps v1 data as it is
and a new ``.v2`` type is added beside it; ``data`` is never reshaped in place.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterable, Mapping
from uuid import UUID

from domain.national_id import mask_national_id
from domain.payment import Payment, UnmatchedPayment
from domain.service_request import ServiceRequest

SPECVERSION = "1.0"
TYPE_PREFIX = "th.onestop."
TYPE_VERSION = "v1"
SOURCE_PREFIX = "/onestop/"
DATACONTENTTYPE = "application/json"

# Keys whose values are personal data no integration needs.
DROPPED_KEYS = frozenset({
    "name", "name_th", "name_en", "first_name", "last_name", "full_name",
    "birth_date", "birthdate", "date_of_birth", "request_hash",
})
# Fields the event store keeps as hex UUIDs; published in the usual dashed form, so they join
# with the ``subject`` of the aggregate they name.
UUID_KEYS = frozenset({"payment_id", "request_id"})
# A national ID written as 13 digits or as 1-2345-67890-12-3, anywhere in a string; the
# cheaper pattern first rules out the strings (most of them) that cannot hold one.
_NATIONAL_ID = re.compile(r"\b(\d{13}|\d-\d{4}-\d{5}-\d{2}-\d)\b")
_MAYBE_NATIONAL_ID = re.compile(r"\d[\d-]{12}")

_AGGREGATES = (ServiceRequest, Payment, UnmatchedPayment)


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


@lru_cache(maxsize=256)
def cloudevent_type(event_type: str) -> str:
    """``ServiceRequest.Submitted`` (or the topic ``onestop:ServiceRequest.Submitted``) →
    ``th.onestop.service-request.submitted.v1``."""
    name = event_type.partition(":")[2] or event_type
    aggregate, _, event = name.partition(".")
    return f"{TYPE_PREFIX}{_kebab(aggregate)}.{_kebab(event)}.{TYPE_VERSION}"


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
    """The log position a cursor stands for; ValueError when it is not one of ours."""
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 20:
        raise ValueError("not a cursor")
    return int(cursor)


def minimise(value: Any) -> Any:
    """The value without names and birth dates, with every national ID masked."""
    kind = type(value)
    if kind is str:
        if len(value) >= 13 and _MAYBE_NATIONAL_ID.search(value):
            return _NATIONAL_ID.sub(_mask, value)
        return value
    if kind is dict:
        result = {}
        for key, item in value.items():
            if key in DROPPED_KEYS:
                continue
            if key in UUID_KEYS and type(item) is str and len(item) == 32:
                result[key] = str(UUID(item))
            elif type(item) in (dict, list, str):
                result[key] = minimise(item)
            else:
                result[key] = item
        return result
    if kind is list:
        return [minimise(v) for v in value]
    return value


def _mask(match: re.Match[str]) -> str:
    return mask_national_id(match.group(0).replace("-", ""))


def _actor(actor: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if actor is None:
        return None
    if actor.get("role") == "citizen":
        # A citizen's subject is their national ID.
        return {"role": "citizen", "org": actor.get("org")}
    return {"sub": actor.get("sub"), "role": actor.get("role"), "org": actor.get("org")}


def to_cloudevent(document: Mapping[str, Any], organization: str | None) -> dict[str, Any]:
    """The CloudEvent of one logged event.

    ``document`` has ``position``, ``aggregate_id``, ``version``, ``type``, ``occurred_at``,
    ``actor``, ``channel`` and ``data``; ``organization`` is the organisation responsible for
    the aggregate (a request's, or the request's that a payment is for).
    """
    data = minimise(document["data"])
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
