"""The event log's write path: eventsourcing's PostgreSQL application recorder, with its INSERT
sending the batch's events as four binary arrays instead of one array of a composite type.

eventsourcing 9.5.6 sends a transaction's events as ``unnest(%s::stored_event[])``, and psycopg
dumps an array of a composite type as text, in Python, element by element (about a tenth of
the API's CPU under load). Four arrays of plain types (``uuid[]``, ``bigint[]``, ``text[]``,
``bytea[]``) are dumped in binary by psycopg's C dumpers. Everything else is the recorder's
own: the same transaction, the same ``LOCK TABLE ... IN EXCLUSIVE MODE`` (so that readers
tailing the log never pass over a gap filled in later), the same NOTIFY, one INSERT for the
whole batch, and the notification IDs returned in the events' order.

The application uses it through eventsourcing's APPLICATION_RECORDER_TOPIC (see
onestop.bootstrap.eventsourcing_env).
"""

from __future__ import annotations

from typing import Any, Sequence

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier


class ArrayInsertRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_arrays_statement = SQL(
            "INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::{originator_id_type}[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            originator_id_type=SQL(self.datastore.originator_id_type),
        )
        self.notify_statement: Composed = SQL("NOTIFY {0}").format(Identifier(self.channel_name))

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        self._lock_table(curs)
        curs.execute(self.notify_statement)
        curs.execute(
            self.insert_arrays_statement,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            prepare=True,
        )
