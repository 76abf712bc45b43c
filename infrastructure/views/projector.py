"""The projector: follows the event log and keeps the views current.

One projector may write the views at a time: a PostgreSQL advisory lock elects it, and others
stand by until it goes away. It wakes on the log's LISTEN/NOTIFY channel and also polls, so a
lost notification only delays it; a lost connection is retried (see ``infrastructure.eventstore.following``).
An event the views cannot apply is set aside in ``projection_failures`` and the views go on;
``retry_failed`` applies the set-aside events again once the cause is fixed.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable
from uuid import UUID

import psycopg
from eventsourcing.persistence import Notification, StoredEvent

from application.back_office import BackOffice
from infrastructure.errors import NoSuchEvent, ProjectorBusy
from infrastructure.eventstore.following import CONNECTION_ERRORS, LogFollower, catch_up_in_batches
from infrastructure.privacy.envelopes import UNREAD_BY_PROJECTOR
from infrastructure.views.projection_failures import FAILURES_TABLE, SetAside, describe_error, set_aside
from infrastructure.eventstore.event_log import EVENTS_TABLE, read_notifications
from infrastructure.views.recorder import FAILURES_VIEW, TRACKING_TABLE, ViewsRecorder

log = logging.getLogger("onestop.projector")

ADVISORY_LOCK_KEY = 0x0E57_0001
NAME = "projector"


@runtime_checkable
class BatchFollower(Protocol):
    """A follower of the log that the projector hands each batch it read."""

    def take(self, after: int, notifications: Sequence[Notification]) -> int:
        """Process the events of the log after position ``after`` up to the last of
        ``notifications`` (reading the log itself for any it is missing before ``after``)."""

    def catch_up(self, until: int | None = None) -> int:
        """Process the events of the log it has not processed yet, up to ``until``."""


@dataclass
class Decoded:
    """A batch of the log as the views take it: (domain event, position) pairs and their topics,
    the stored events that could not be read back (with why), and the batch's last position."""

    events: list[tuple[Any, int]]
    topics: list[str]
    unreadable: list[tuple[Notification, BaseException]]
    last: int


@contextmanager
def quiet_gc(threshold: int = 200_000) -> Iterator[None]:
    """Run a bulk job (a rebuild) with the objects made so far frozen out of the collector and
    young collections made rare; the previous thresholds are restored afterwards."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


class Projector:
    # Sealed values no view reads (an event's actor is never folded): an envelope holding only a
    # citizen actor's sub is not opened for the views (tests/integration/test_projections.py
    # checks that the views come out the same when every envelope is opened).
    unread: frozenset[str] = UNREAD_BY_PROJECTOR

    def __init__(self, app: BackOffice, views: ViewsRecorder, *, batch_size: int = 2000,
                 followers: list[Callable[[], object] | BatchFollower] | None = None) -> None:
        self.app = app
        self.views = views
        self.batch_size = batch_size
        # Other followers of the log that run in the elected projector, in this order, after
        # each catch-up; each keeps its own position. A ``BatchFollower`` (the published feed,
        # the audit chain) is also handed each batch the views read, so that it need not read
        # the log again.
        self.followers = followers or []
        self.position = 0
        self.gather_seconds = 0.05
        # How the last rebuild's time divided: applying the log, then building the indexes again.
        self.fold_seconds = 0.0
        self.fold_cpu_seconds = 0.0  # of this process, every thread
        self.index_seconds = 0.0

    def catch_up(self, progress: Callable[[int, int], None] | None = None, position: int | None = None, *, hand_off: bool = False) -> int:
        """Apply every event after the views' position, in batches; return how many. With
        ``hand_off``, each batch then goes to the batch followers, in order."""
        if position is None:
            position = self.views.position()
        apply = self._apply_and_hand_off if hand_off else self._apply
        done, self.position = catch_up_in_batches(position, self._read, apply, self.batch_size, progress)
        return done

    def _read(self, after: int, limit: int) -> list[Notification]:
        return read_notifications(self.views.datastore, after, limit)

    def _apply(self, _: int, notifications: Any) -> int:
        return self._write(self._decode(notifications))

    def _apply_and_hand_off(self, after: int, notifications: Any) -> int:
        last = self._write(self._decode(notifications))
        for follower in self.followers:
            if isinstance(follower, BatchFollower):
                follower.take(after, notifications)
        return last

    def _decode(self, notifications: Sequence[Notification]) -> Decoded:
        """A batch's domain events, with the stored events that cannot be read back."""
        # The personal-data mapper loads a batch's keys in one query before decoding it; when
        # some event in the batch cannot be read back, each is decoded alone to set it aside.
        last = notifications[-1].id
        decode_all = getattr(self.app.mapper, "to_domain_events", None)
        if decode_all is not None:
            try:
                decoded = decode_all(notifications, self.unread)
            except CONNECTION_ERRORS:
                raise
            except Exception:
                decoded = None
            if decoded is not None:
                return Decoded([(event, n.id) for event, n in zip(decoded, notifications)], [n.topic for n in notifications], [], last)
        events, topics, unreadable = [], [], []
        for n in notifications:
            try:
                events.append((self.app.mapper.to_domain_event(n), n.id))
                topics.append(n.topic)
            except CONNECTION_ERRORS:
                raise
            except Exception as error:  # the stored event cannot be read back: set it aside
                unreadable.append((n, error))
        return Decoded(events, topics, unreadable, last)

    def _write(self, batch: Decoded) -> int:
        """Fold a decoded batch into the views and move their position to its end."""
        if batch.unreadable:
            with self.views.datastore.transaction(commit=True) as curs:
                for n, error in batch.unreadable:
                    self.views.set_aside(curs, n.id, n.topic, error)
        self.views.apply_batch(batch.events, batch.last, batch.topics)
        return batch.last

    def _catch_up_overlapped(self, conninfo: str, progress: Callable[[int, int], None] | None = None) -> int:
        """``catch_up`` with the database's work overlapped with Python's, in three threads: one
        reads the log (on its own connection), this one decodes, and one folds and writes. So
        PostgreSQL reads batch n+2 and writes batch n while batch n+1 is decoded. Batches are
        written one at a time, in log order, each with its tracking record, exactly as
        ``catch_up`` writes them. The first failure stops every stage and is raised here."""
        failed: list[BaseException] = []
        read: queue.Queue[list[Notification] | None] = queue.Queue(maxsize=2)
        decoded: queue.Queue[Decoded | None] = queue.Queue(maxsize=2)

        def hand(to: queue.Queue[Any], item: Any) -> bool:
            """Put ``item`` on ``to`` unless a stage has failed meanwhile."""
            while not failed:
                try:
                    to.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def take(source: queue.Queue[Any]) -> Any:
            while not failed:
                try:
                    return source.get(timeout=0.2)
                except queue.Empty:
                    continue
            return None

        def read_all(position: int) -> None:
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    while True:
                        notifications = read_notifications(conn, position, self.batch_size)
                        if not notifications or not hand(read, notifications):
                            break
                        position = notifications[-1].id
                        if len(notifications) < self.batch_size:
                            break
            except BaseException as error:
                failed.append(error)
            finally:
                hand(read, None)

        def write_all() -> None:
            written = 0
            try:
                while (batch := take(decoded)) is not None:
                    self.position = self._write(batch)
                    written += len(batch.events) + len(batch.unreadable)
                    if progress is not None:
                        progress(written, self.position)
            except BaseException as error:
                failed.append(error)

        stages = [threading.Thread(target=read_all, args=(self.views.position(),), name="projector-rebuild-reader", daemon=True),
                  threading.Thread(target=write_all, name="projector-rebuild-writer", daemon=True)]
        for stage in stages:
            stage.start()
        done = 0
        try:
            while (notifications := take(read)) is not None:
                if not hand(decoded, self._decode(notifications)):
                    break
                done += len(notifications)
        except BaseException as error:
            failed.append(error)
        finally:
            hand(decoded, None)
            for stage in stages:
                stage.join()
        if failed:
            raise failed[0]
        return done

    def step(self, position: int) -> int:
        """One turn of the loop: the views, then the other followers; the views' new position."""
        self.catch_up(position=position, hand_off=True)
        for follower in self.followers:
            if isinstance(follower, BatchFollower):
                # Reads the log only when it is behind the views (after a start or a failure).
                follower.catch_up(until=self.position)
            else:
                follower()
        return self.position

    def log_follower(self, conninfo: str, *, poll_seconds: float = 1.0) -> LogFollower:
        return LogFollower(
            NAME, conninfo, ADVISORY_LOCK_KEY, self.app.recorder.channel_name,  # type: ignore[attr-defined]
            position=self.views.position, step=self.step, tracking=TRACKING_TABLE,
            poll_seconds=poll_seconds, gather_seconds=self.gather_seconds,
        )

    def rebuild(self, conninfo: str, progress: Callable[[int, int], None] | None = None) -> int:
        """Empty the views and apply the whole log again, holding the election lock so that no
        live projector writes at the same time."""
        with psycopg.connect(conninfo, autocommit=True) as conn:
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()[0]:
                raise ProjectorBusy("a projector is running; stop it before rebuilding (it stands by again afterwards)")
            self.views.reset(drop_indexes=True)
            try:
                # Decoding makes many objects and frees few until the end: the collector would
                # walk the growing heap again and again for nothing. Its one full collection
                # before freezing is preparation, like the reset: not in the time applying the log.
                with quiet_gc():
                    started, cpu = time.perf_counter(), time.process_time()
                    count = self._catch_up_overlapped(conninfo, progress)
                    self.fold_seconds = time.perf_counter() - started
                    self.fold_cpu_seconds = time.process_time() - cpu
            finally:
                started = time.perf_counter()
                self.views.restore_indexes()
                self.index_seconds = time.perf_counter() - started
            return count

    def set_aside(self) -> list[SetAside]:
        """The events the views have set aside, in log order."""
        with self.views.datastore.transaction(commit=False) as curs:
            return set_aside(curs, FAILURES_VIEW)

    def retry_failed(self) -> tuple[list[int], list[SetAside]]:
        """Apply the set-aside events again. The rows of each aggregate concerned are computed
        again from all its events up to the views' position, and only the set-aside events add
        to the daily counts, so the views end as if the event had applied the first time. Runs
        beside a live projector: both take the views' write lock, so they take turns. Returns
        (positions now applied, events still set aside)."""
        applied: list[int] = []
        with self.views.datastore.transaction(commit=True) as curs:
            self.views.lock_for_writing(curs)
            failures = set_aside(curs, FAILURES_VIEW)
            # In this transaction: the projector's pool holds one connection, and it is this one.
            until = self.views.position(curs)
            done: set[int] = set()
            for failure in failures:
                if failure.position in done:
                    continue
                curs.execute("SAVEPOINT retry")
                try:
                    positions = self._refold_family(curs, failure, {f.position for f in failures} - done, until)
                except CONNECTION_ERRORS:
                    raise
                except Exception as error:
                    curs.execute("ROLLBACK TO SAVEPOINT retry")
                    curs.execute(f"UPDATE {FAILURES_TABLE} SET retried_at = now(), error = %s WHERE view = %s AND position = %s",
                                 (describe_error(error), FAILURES_VIEW, failure.position))
                    done.add(failure.position)
                    continue
                curs.execute(f"DELETE FROM {FAILURES_TABLE} WHERE view = %s AND position = ANY(%s)", (FAILURES_VIEW, list(positions)))
                curs.execute("RELEASE SAVEPOINT retry")
                done |= positions
                applied.extend(sorted(positions))
        return applied, self.set_aside()

    def _refold_family(self, curs: Any, failure: SetAside, failed: set[int], until: int) -> set[int]:
        """Fold again every event of the set-aside event's request and its payments (or its
        payment and that payment's request); return the set-aside positions among them."""
        curs.execute(f"SELECT originator_id FROM {EVENTS_TABLE} WHERE notification_id = %s", (failure.position,))
        row = curs.fetchone()
        if row is None:
            raise NoSuchEvent(f"no event at position {failure.position} in the log")
        ids = {row["originator_id"]}
        # A payment's first event names its request; a request's payments name it.
        for _ in range(2):
            events = self._events_of(curs, ids, until)
            for event, _position in events:
                for linked in (getattr(event, "request_id", None), getattr(event, "payment_id", None)):
                    if linked is not None:
                        ids.add(linked if isinstance(linked, UUID) else UUID(str(linked)))
            curs.execute("SELECT id FROM payments_view WHERE request_id = ANY(%s)", (list(ids),))
            ids |= {r["id"] for r in curs.fetchall()}
        events = self._events_of(curs, ids, until)
        positions = {p for _, p in events} & failed
        self.views.refold(curs, events, positions)
        return positions

    def _events_of(self, curs: Any, ids: set[Any], until: int) -> list[tuple[Any, int]]:
        curs.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state FROM {EVENTS_TABLE}"
            f" WHERE originator_id = ANY(%s) AND notification_id <= %s ORDER BY notification_id", (list(ids), until),
        )
        rows = curs.fetchall()
        stored = [StoredEvent(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])) for r in rows]
        # The personal-data mapper's keys, read in this transaction: it holds the pool's only connection.
        prefetch = getattr(self.app.mapper, "prefetch", None)
        if prefetch is not None:
            prefetch(stored, curs)
        to_event = self.app.mapper.to_domain_event
        return [(to_event(s), r["notification_id"]) for s, r in zip(stored, rows)]

    def run(self, stop: threading.Event, conninfo: str, *, poll_seconds: float = 1.0) -> None:
        """Hold the election lock, then follow the log until ``stop`` is set; lost connections
        are retried with backoff, anything unexpected escapes (run it in a supervised thread)."""
        self.log_follower(conninfo, poll_seconds=poll_seconds).run(stop)
