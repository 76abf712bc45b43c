"""The projector: follows the event log and keeps the views current.

One projector may write the views at a time: a PostgreSQL advisory lock elects it, and others
stand by until it goes away. It wakes on the log's LISTEN/NOTIFY channel and also polls, so a
lost notification only delays it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import psycopg

from application.back_office import BackOffice
from infrastructure.errors import ProjectorBusy
from infrastructure.views.recorder import ViewsRecorder

log = logging.getLogger("onestop.projector")

ADVISORY_LOCK_KEY = 0x0E57_0001


class Projector:
    def __init__(self, app: BackOffice, views: ViewsRecorder, *, batch_size: int = 2000, followers: list[Callable[[], object]] | None = None) -> None:
        self.app = app
        self.views = views
        self.batch_size = batch_size
        # Other followers of the log that run in the elected projector after each catch-up
        # (the audit hash chain, for example); each keeps its own position.
        self.followers = followers or []
        self.position = 0
        self.gather_seconds = 0.05

    def catch_up(self, progress: Callable[[int, int], None] | None = None, position: int | None = None) -> int:
        """Apply every event after the views' position, in batches; return how many."""
        if position is None:
            position = self.views.position()
        done = 0
        while True:
            notifications = self.app.recorder.select_notifications(
                start=position, limit=self.batch_size, inclusive_of_start=False
            )
            if not notifications:
                return done
            # The personal-data mapper loads a batch's keys in one query before decoding it.
            decode_all = getattr(self.app.mapper, "to_domain_events", None)
            if decode_all is not None:
                events = decode_all(notifications)
            else:
                events = [self.app.mapper.to_domain_event(n) for n in notifications]
            self.views.apply_batch([(event, n.id) for event, n in zip(events, notifications)])
            position = self.position = notifications[-1].id
            done += len(notifications)
            if progress is not None:
                progress(done, position)
            if len(notifications) < self.batch_size:
                return done

    def rebuild(self, conninfo: str, progress: Callable[[int, int], None] | None = None) -> int:
        """Empty the views and apply the whole log again, holding the election lock so that no
        live projector writes at the same time."""
        with psycopg.connect(conninfo, autocommit=True) as conn:
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()[0]:
                raise ProjectorBusy("a projector is running; stop it before rebuilding (it stands by again afterwards)")
            self.views.reset(drop_indexes=True)
            try:
                return self.catch_up(progress)
            finally:
                self.views.restore_indexes()

    def run(self, stop: threading.Event, conninfo: str, *, poll_seconds: float = 1.0) -> None:
        """Hold the election lock, then follow the log until ``stop`` is set."""
        channel = self.app.recorder.channel_name  # type: ignore[attr-defined]
        with psycopg.connect(conninfo, autocommit=True) as conn:
            while not stop.is_set():
                if conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()[0]:
                    break
                log.info("another projector holds the views; standing by")
                stop.wait(poll_seconds)
            if stop.is_set():
                return
            conn.execute(f'LISTEN "{channel}"')
            log.info("projector elected; following the log")
            # Only the elected projector writes the views, so after the first read its own
            # position is the views' position.
            self.position = self.views.position()
            while not stop.is_set():
                applied = 0
                try:
                    applied = self.catch_up(position=self.position)
                    for follower in self.followers:
                        follower()
                except Exception:
                    log.exception("projection failed; retrying")
                    self.position = self.views.position()
                    time.sleep(poll_seconds)
                if applied:
                    # Busy: let the next events gather for a moment, so that each batch (one
                    # transaction and a few round trips) carries more of them. An idle
                    # projector still answers the first NOTIFY at once.
                    stop.wait(self.gather_seconds)
                    continue
                # Wake on the next NOTIFY, or poll.
                for _ in conn.notifies(timeout=poll_seconds, stop_after=1):
                    pass
