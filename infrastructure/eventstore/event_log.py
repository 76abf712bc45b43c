"""The event log as readers outside eventsourcing see it: the table, and a stored event as the
plain JSON document the API, the audit log and the feed serve."""

from __future__ import annotations

from typing import Any

import asyncpg

from infrastructure.json_codec import loads

EVENTS_TABLE = "onestop_events"
_EVENT_ENVELOPE = frozenset({"timestamp", "originator_topic", "actor", "channel"})


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
