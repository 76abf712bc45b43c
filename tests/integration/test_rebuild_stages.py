"""A rebuild reads, decodes and writes in three threads: the views come out as a rebuild one
batch at a time makes them, and a failure in any stage ends the rebuild with that error (no
thread left waiting), with the indexes built again."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from infrastructure.views.projector import Projector
from infrastructure.views.recorder import SECONDARY_INDEXES
from onestop.bootstrap import build_back_office, build_views
from onestop.settings import Settings
from tests.integration.test_log_followers import submit

pytestmark = pytest.mark.postgres


def indexes(settings: Settings) -> set[str]:
    with psycopg.connect(settings.database.conninfo()) as conn:
        return {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


def test_a_rebuild_in_stages_gives_the_views_of_a_catch_up_one_batch_at_a_time(settings: Settings) -> None:
    app = build_back_office(settings)
    try:
        submit(app, 30)
        views = build_views(app)
        Projector(app, views, batch_size=1).catch_up()
        one_at_a_time = views.checksum()
        assert one_at_a_time["request_summaries"].startswith("30:")
        projector = Projector(app, views, batch_size=4)
        assert projector.rebuild(settings.database.conninfo()) == app.recorder.max_notification_id()
        assert views.checksum() == one_at_a_time
        assert views.position() == app.recorder.max_notification_id()
        assert set(SECONDARY_INDEXES) <= indexes(settings)
    finally:
        app.close()


@pytest.mark.parametrize("stage", ["write", "decode", "read"])
def test_a_failing_stage_ends_the_rebuild_with_its_error(settings: Settings, stage: str, monkeypatch: Any) -> None:
    app = build_back_office(settings)
    try:
        submit(app, 30)
        projector = Projector(app, build_views(app), batch_size=5)
        calls = {"n": 0}

        def failing(original: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                calls["n"] += 1
                if calls["n"] == 3:
                    raise RuntimeError(f"the {stage} stage broke")
                return original(*args, **kwargs)
            return call

        if stage == "write":
            monkeypatch.setattr(projector, "_write", failing(projector._write))
        elif stage == "decode":
            monkeypatch.setattr(projector, "_decode", failing(projector._decode))
        else:
            import infrastructure.views.projector as module

            monkeypatch.setattr(module, "read_notifications", failing(module.read_notifications))
        before = threading.active_count()
        with pytest.raises(RuntimeError, match=f"the {stage} stage broke"):
            projector.rebuild(settings.database.conninfo())
        assert threading.active_count() == before
        assert set(SECONDARY_INDEXES) <= indexes(settings)
        # What was written is whole batches, each with its position: a catch-up finishes the job.
        assert projector.views.position() < app.recorder.max_notification_id()
        Projector(app, projector.views).catch_up()
        assert projector.views.checksum()["request_summaries"].startswith("30:")
    finally:
        app.close()


def test_rows_refolded_ahead_of_the_views_are_overwritten_not_set_aside(settings: Settings) -> None:
    """An erasure's purge refolds an aggregate from the whole log, so its rows can exist before
    the views reach its first event; applying that event then still writes and counts it."""
    from eventsourcing.persistence import StoredEvent

    app = build_back_office(settings)
    try:
        submit(app, 9)
        views = build_views(app)
        projector = Projector(app, views)
        projector.catch_up()
        expected = views.checksum()
        views.reset()
        with views.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT originator_id FROM onestop_events ORDER BY notification_id LIMIT 1")
            first = curs.fetchone()["originator_id"]
            curs.execute("SELECT notification_id, originator_id, originator_version, topic, state FROM onestop_events"
                         " WHERE originator_id = %s ORDER BY notification_id", (first,))
            events = [(app.mapper.to_domain_event(StoredEvent(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))),
                       r["notification_id"]) for r in curs.fetchall()]
            views.lock_for_writing(curs)
            views.refold(curs, events)  # as the purge does: rows of the whole log, nothing counted
        assert views.checksum()["request_summaries"].startswith("1:")
        projector.catch_up()
        assert projector.set_aside() == []
        assert views.checksum() == expected
    finally:
        app.close()
