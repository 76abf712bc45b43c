"""The event log's write path: eventsourcing's PostgreSQL application recorder, with two
changes that make a save cheaper and shorten the time the log's table lock is held.

* eventsourcing 9.5.6 sends a transaction's events as ``unnest(%s::stored_event[])``, and
  psycopg dumps an array of a composite type as text, in Python, element by element (about a
  tenth of the API's CPU under load). Here they go as four arrays of plain types (``uuid[]``,
  ``bigint[]``, ``text[]``, ``bytea[]``), dumped in binary by psycopg's C dumpers.
* eventsourcing sends COMMIT only after the INSERT's answer came back, so the table lock is
  held across a round trip to the client process (which, on a busy machine, waits for a core
  and for its GIL), and every other writer waits for that too. Here BEGIN, the lock, NOTIFY,
  the INSERT and COMMIT go out in one pipeline and one round trip; the notification IDs are
  read after the commit.

A layer above may add rows to every save (the personal-data keys, ``infrastructure/privacy``):
a save passes ``added_rows=AddedRows(...)`` to ``insert_events``: data-modifying CTEs and a check
(a value computed from them that must be read, so that a failed check aborts the save). They ride on the
statement that sets the save's lock timeout, which becomes ``WITH ... SELECT set_config(...)``:
no statement more in the pipeline (each costs the saving thread about as much Python in psycopg
as the rows it sends), and they run before the table lock is taken, not while it is held.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier


class AddedRows(NamedTuple):
    """What a save adds before it takes the table lock: ``ctes`` (``name AS (...)`` parts,
    joined by commas, with ``%b`` placeholders), their ``params`` in order, and a ``check``
    (an SQL expression over them, evaluated with the statement, or None)."""

    ctes: bytes
    params: Sequence[Any]
    check: bytes | None = None


_BEGIN = SQL("BEGIN")
_COMMIT = SQL("COMMIT")
_ROLLBACK = SQL("ROLLBACK")


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
        self._with_added: dict[tuple[bytes, bytes | None], bytes] = {}
        self._lock_timeout = f"{self.datastore.lock_timeout}s"
        # The statements of every save as bytes, rendered once with the first connection:
        # psycopg renders a Composed statement (quoting each identifier through libpq) on
        # every execute, and caches the parsing of bytes.
        self._rendered: tuple[bytes, bytes, list[bytes]] | None = None

    def _statements(self, curs: Cursor[DictRow]) -> tuple[bytes, bytes, list[bytes]]:
        rendered = self._rendered
        if rendered is None:
            rendered = self._rendered = (
                self.insert_arrays_statement.as_bytes(curs),
                self.notify_statement.as_bytes(curs),
                [s.as_bytes(curs) if not isinstance(s, bytes) else s for s in self.lock_table_statements],  # type: ignore[union-attr]
            )
        return rendered

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The batch in one transaction and one round trip (see the module's docstring)."""
        if not stored_events:
            return super().insert_events(stored_events, **kwargs)
        failure: Exception | None = None
        with self.datastore.get_connection() as conn:
            assert conn.autocommit
            insert = conn.cursor()
            try:
                # Everything is sent when the pipeline closes, in one Sync: one round trip.
                with conn.pipeline():
                    with conn.cursor() as curs:
                        curs.execute(_BEGIN)
                        self._insert_events(curs, stored_events, **kwargs)
                    self._insert_stored_events(insert, stored_events, **kwargs)
                    conn.execute(_COMMIT)
            except Exception as error:
                failure = error
            try:
                if failure is not None:
                    # A statement failed: the server skipped the rest, and the transaction is aborted.
                    if conn.info.transaction_status != TransactionStatus.IDLE:
                        conn.execute(_ROLLBACK)
                    raise failure
                return self._fetch_ids_after_insert_events(insert, stored_events, **kwargs)
            finally:
                insert.close()

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        insert, notify, lock = self._statements(curs)
        # The library's _lock_table: SET LOCAL lock_timeout, then LOCK TABLE ... IN EXCLUSIVE MODE.
        added: AddedRows | None = kwargs.get("added_rows")
        if added is None:
            curs.execute(lock[0], prepare=True)
        else:
            curs.execute(self._with_added_rows(added), (*added.params, self._lock_timeout), prepare=True)
        for statement in lock[1:]:
            curs.execute(statement, prepare=True)
        curs.execute(notify)
        curs.execute(
            insert,
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events],
            ),
            prepare=True,
        )

    def _with_added_rows(self, added: AddedRows) -> bytes:
        """SET LOCAL lock_timeout as a SELECT carrying a save's added rows (rendered once per shape)."""
        statement = self._with_added.get((added.ctes, added.check))
        if statement is None:
            check = added.check + b", " if added.check else b""  # its parameters follow the CTEs'
            statement = b"WITH " + added.ctes + b" SELECT " + check + b"set_config('lock_timeout', %b, true)"
            self._with_added[(added.ctes, added.check)] = statement  # a few shapes (PendingKeys.added_rows)
        return statement
