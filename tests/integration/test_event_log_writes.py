"""The event log's write path (infrastructure/eventstore/recorder.py) on the real PostgreSQL:
a batch's events get their positions in order in one transaction; a conflicting batch writes
nothing, raises eventsourcing's IntegrityError, and leaves its connection usable; concurrent
writers' positions follow their commit order (what readers tailing the log rely on)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import DataError, IntegrityError, StoredEvent

from infrastructure.eventstore.recorder import ArrayInsertRecorder
from onestop.bootstrap import build_back_office
from onestop.settings import DatabaseAddress, Settings



def _events(n: int, originator: uuid.UUID | None = None, start: int = 1) -> list[StoredEvent]:
    oid = originator or uuid.uuid4()
    return [StoredEvent(originator_id=oid, originator_version=start + i, topic="test:Event", state=b'{"n":%d}' % i) for i in range(n)]


def _rows(settings: Settings) -> list[tuple[Any, ...]]:
    with psycopg.connect(DatabaseAddress.from_url(settings.database.url()).conninfo()) as conn:
        return conn.execute("SELECT notification_id, originator_id, originator_version, topic, state FROM onestop_events"
                            " ORDER BY notification_id").fetchall()


def test_the_back_office_writes_through_the_array_insert_recorder(settings: Settings) -> None:
    app = build_back_office(settings)
    try:
        assert isinstance(app.recorder, ArrayInsertRecorder)
    finally:
        app.close()


def test_a_batch_gets_positions_in_its_order_and_is_stored_as_sent(settings: Settings) -> None:
    app = build_back_office(settings)
    try:
        first, second = _events(3), _events(2)
        ids = app.recorder.insert_events([*first, *second])
        assert ids is not None and len(ids) == 5 and list(ids) == sorted(ids)
        rows = _rows(settings)
        assert [(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows] == [
            (i, e.originator_id, e.originator_version, e.topic, e.state) for i, e in zip(ids, [*first, *second])
        ]
        assert app.recorder.max_notification_id() == ids[-1]
    finally:
        app.close()


def test_a_conflicting_batch_writes_nothing_and_the_connection_is_usable_after(settings: Settings) -> None:
    app = build_back_office(settings)
    try:
        originator = uuid.uuid4()
        app.recorder.insert_events(_events(2, originator))
        with pytest.raises(IntegrityError):
            # A new aggregate's events, and one that takes a version already stored.
            app.recorder.insert_events([*_events(2), *_events(1, originator, start=2)])
        assert len(_rows(settings)) == 2
        # The pool's connections are not left in the aborted transaction: the next writes work.
        for _ in range(6):
            assert app.recorder.insert_events(_events(1)) is not None
        assert len(_rows(settings)) == 8
    finally:
        app.close()


def test_concurrent_writers_positions_follow_their_commit_order(settings: Settings) -> None:
    app = build_back_office(settings)
    try:
        results: list[list[int]] = []
        lock = threading.Lock()

        def write() -> None:
            for _ in range(20):
                ids = app.recorder.insert_events(_events(4))
                assert ids is not None
                with lock:
                    results.append(list(ids))

        threads = [threading.Thread(target=write) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Each batch's positions are consecutive: the table lock keeps batches from interleaving.
        for ids in results:
            assert ids == list(range(ids[0], ids[0] + 4))
        assert len(_rows(settings)) == 4 * 20 * 4
    finally:
        app.close()


def test_rows_a_layer_adds_to_a_save_commit_with_its_events_and_a_failed_check_writes_neither(settings: Settings) -> None:
    """``added_rows`` (what the personal-data layer writes with every save: key sets,
    subjects, the check that a reused key set is still live) runs in the save's transaction,
    before the table lock: its rows and the events commit together, and when its check fails
    the save raises and leaves no row and no event."""
    from infrastructure.eventstore.recorder import AddedRows

    conninfo = DatabaseAddress.from_url(settings.database.url()).conninfo()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS test_added_rows (note text)")
        conn.execute("TRUNCATE test_added_rows")
    app = build_back_office(settings)
    try:
        def added(note: str, fail: bool = False) -> AddedRows:
            # The failing CAST depends on a row, so that the planner cannot evaluate it beforehand.
            check = b"(SELECT CASE WHEN %b THEN CAST('check failed: ' || note AS int) ELSE 0 END FROM n)"
            return AddedRows(b"n AS (INSERT INTO test_added_rows (note) SELECT %b RETURNING note)", [note, fail], check)

        assert app.recorder.insert_events(_events(2), added_rows=added("first")) is not None
        with pytest.raises(DataError, match="check failed: second"):
            app.recorder.insert_events(_events(3), added_rows=added("second", fail=True))
        assert app.recorder.insert_events(_events(1)) is not None  # nothing added: the plain save
        with psycopg.connect(conninfo) as conn:
            assert conn.execute("SELECT note FROM test_added_rows").fetchall() == [("first",)]
        assert len(_rows(settings)) == 3  # the failed save's three events are not there
    finally:
        app.close()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS test_added_rows")
