"""The event log as readers outside eventsourcing see it: the table, a stored event as the plain
JSON document the API, the audit log and the feed serve, and the batch read of the log that the
projector (and its followers) share."""

from __future__ import annotations

from typing import Any

import asyncpg
import psycopg
from eventsourcing.persistence import Notification
from psycopg.rows import tuple_row

from infrastructure.json_codec import loads

EVENTS_TABLE = "onestop_events"
_EVENT_ENVELOPE = frozenset({"timestamp", "originator_topic", "actor", "channel"})
_READ_AFTER = (
    f"SELECT notification_id, originator_id, originator_version, topic, state FROM {EVENTS_TABLE}"
    f" WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
)


def read_notifications(source: Any, after: int, limit: int) -> list[Notification]:
    """Up to ``limit`` events of the log after position ``after``, in log order, as
    eventsourcing's notifications (what its mapper decodes), from ``source``: an eventsourcing
    ``PostgresDatastore`` or a psycopg connection. The same rows as the recorder's
    ``select_notifications``, read with a binary cursor into tuples: ids arrive as UUIDs and
    states as bytes, with no text parsing or dict per row."""
    if not isinstance(source, psycopg.Connection):
        # The datastore's connections are in autocommit: one SELECT, one round trip (a
        # transaction would add BEGIN and ROLLBACK to every turn of the projector).
        with source.get_connection() as conn:
            return read_notifications(conn, after, limit)
    with source.cursor(binary=True, row_factory=tuple_row) as binary:
        binary.execute(_READ_AFTER, (after, limit))
        rows = binary.fetchall()
    # A frozen dataclass's __init__ costs more than the read itself; the fields are set as
    # eventsourcing's mapper sets a domain event's.
    new, set_dict = object.__new__, object.__setattr__
    notifications = []
    for position, originator_id, version, topic, state in rows:
        notification = new(Notification)
        set_dict(notification, "__dict__", {"originator_id": originator_id, "originator_version": version, "topic": topic,
                                             "state": state, "id": position})
        notifications.append(notification)
    return notifications


def plain(value: Any) -> Any:
    """Turn the event store's typed JSON (``{"_type_": ..., "_data_": ...}``) into plain JSON."""
    if isinstance(value, dict):
        if "_type_" in value and "_data_" in value and len(value) == 2:
            return plain(value["_data_"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def event_type(topic: str) -> str:
    return topic.partition(":")[2] or topic


def stored_event_document(row: asyncpg.Record) -> dict[str, Any]:
    """A row of the log (``notification_id``, ``aggregate_id``, ``originator_version``, ``topic``,
    ``state``) as the document served: its envelope lifted out, its data in plain JSON."""
    state = plain(loads(row["state"]))
    return {
        "position": row["notification_id"],
        "aggregate_id": row["aggregate_id"],
        "version": row["originator_version"],
        "type": event_type(row["topic"]),
        "occurred_at": state.get("timestamp"),
        "actor": state.get("actor"),
        "channel": state.get("channel"),
        "data": {k: v for k, v in state.items() if k not in _EVENT_ENVELOPE},
    }
