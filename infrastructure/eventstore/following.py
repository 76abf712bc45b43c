"""Following the event log: the one loop that every follower runs, and how it is supervised.

A follower (the projector, the dispatcher) is elected by a PostgreSQL advisory lock, wakes on the
log's LISTEN/NOTIFY channel and also polls, and does its work in steps from a position it keeps in
a tracking table in PostgreSQL. Everything that needs a connection lives inside the retry: when
PostgreSQL drops a connection (failover, restart, ``pg_terminate_backend``, "too many clients" at
start) the loop closes what it holds, waits with capped exponential backoff and jitter, connects
again, takes the election lock again and goes on from its tracking record.

Anything else is a bug or a state the loop cannot reason about: it is not swallowed. A thread that
ends with an unexpected exception logs the traceback and ends its process (exit 70) through the
process-level failure hook, so that the supervisor (``onestop run``, systemd, Kubernetes)
restarts it. No thread dies alone while its process looks alive.

Each follower publishes its state (standby, running, reconnecting), position and last progress
time in a ``FollowerStatus`` that other code reads through ``statuses()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Sequence, TypeVar

import psycopg
from eventsourcing.persistence import InterfaceError as StoreInterfaceError, OperationalError as StoreOperationalError

log = logging.getLogger("onestop.following")

# The exit status of a process whose thread failed unexpectedly (EX_SOFTWARE).
FAILURE_EXIT_STATUS = 70

# Errors that mean "the database connection is gone or cannot be had": reconnect and go on.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError, psycopg.InterfaceError, StoreOperationalError, StoreInterfaceError, ConnectionError,
)

T = TypeVar("T")


# -- backoff -------------------------------------------------------------------------------------


@dataclass
class Backoff:
    """Capped exponential backoff with jitter: the n-th delay is a random fraction (half to all)
    of ``min(maximum, initial * factor**n)``, so that many followers do not retry in step."""

    initial: float = 0.2
    maximum: float = 10.0
    factor: float = 2.0
    attempts: int = 0

    def next(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor ** self.attempts)
        self.attempts += 1
        return ceiling * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempts = 0


# -- state other code can read -----------------------------------------------------------------


@dataclass
class FollowerStatus:
    """What one follower is doing. ``position`` is the last position it has processed; it is also
    in the follower's tracking table in PostgreSQL (see ``tracking``), which is the truth."""

    name: str
    tracking: str = ""
    state: str = "starting"  # starting | standby | running | reconnecting | stopped
    position: int = 0
    last_progress_at: float | None = None  # time.time() of the last step that moved the position
    errors: int = 0
    last_error: str | None = None

    def progressed(self, position: int) -> None:
        self.position = position
        self.last_progress_at = time.time()

    def snapshot(self) -> FollowerStatus:
        return replace(self)


_STATUSES: dict[str, FollowerStatus] = {}
_STATUSES_LOCK = threading.Lock()


def status_of(name: str, tracking: str = "") -> FollowerStatus:
    """The status object of the follower ``name`` in this process (made on first use)."""
    with _STATUSES_LOCK:
        status = _STATUSES.get(name)
        if status is None:
            status = _STATUSES[name] = FollowerStatus(name, tracking)
        elif tracking:
            status.tracking = tracking
        return status


def statuses() -> dict[str, FollowerStatus]:
    """A copy of every follower's status in this process, by name."""
    with _STATUSES_LOCK:
        return {name: status.snapshot() for name, status in _STATUSES.items()}


# -- the process-level failure hook ----------------------------------------------------------


def _exit_process(name: str, error: BaseException) -> None:
    logging.shutdown()
    os._exit(FAILURE_EXIT_STATUS)


_failure_hook: Callable[[str, BaseException], None] = _exit_process


def set_failure_hook(hook: Callable[[str, BaseException], None] | None) -> Callable[[str, BaseException], None]:
    """Replace what happens when a supervised thread fails (default: end the process with exit
    status 70); ``None`` restores the default. Returns the previous hook."""
    global _failure_hook
    previous = _failure_hook
    _failure_hook = hook or _exit_process
    return previous


def fail(name: str, error: BaseException) -> None:
    """Report an unexpected failure of ``name`` and end the process (through the hook)."""
    log.critical("%s failed unexpectedly; ending the process so that it is restarted", name, exc_info=error)
    _failure_hook(name, error)


def supervised(name: str, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], None]:
    """``target`` wrapped so that an exception escaping it ends the process, not just the thread."""

    def run() -> None:
        try:
            target(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - every escape is a failure of the process
            fail(name, error)

    return run


def start_thread(name: str, target: Callable[..., Any], *args: Any, daemon: bool = False, **kwargs: Any) -> threading.Thread:
    """Start ``target`` in a supervised thread named ``name``."""
    thread = threading.Thread(target=supervised(name, target, *args, **kwargs), name=name, daemon=daemon)
    thread.start()
    return thread


# -- batch catch-up ---------------------------------------------------------------------------


def catch_up_in_batches(
    position: int, read: Callable[[int, int], Sequence[T]], write: Callable[[int, Sequence[T]], int],
    batch_size: int, progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Read batches after ``position`` with ``read(after, limit)`` and hand each to
    ``write(after, batch)``, which returns the batch's last position, until a batch is short.
    Returns (how many items, the new position)."""
    done = 0
    while True:
        batch = read(position, batch_size)
        if not batch:
            return done, position
        position = write(position, batch)
        done += len(batch)
        if progress is not None:
            progress(done, position)
        if len(batch) < batch_size:
            return done, position


def broker_errors() -> tuple[type[BaseException], ...]:
    """What a broker that is away raises on send: retried, not a reason to end the process."""
    import dramatiq.errors

    errors: list[type[BaseException]] = [dramatiq.errors.BrokerError, OSError]
    try:
        import pika.exceptions

        errors.append(pika.exceptions.AMQPError)
    except ImportError:
        pass
    try:
        import redis.exceptions

        errors.append(redis.exceptions.ConnectionError)
        errors.append(redis.exceptions.TimeoutError)
    except ImportError:
        pass
    return tuple(errors)


# -- the follow-the-log loop ----------------------------------------------------------------------


def standby_name(follower: str) -> str:
    """The application_name of a follower's session while it waits for its election lock."""
    return f"onestop-{follower}-standby"


def running_name(follower: str) -> str:
    """The application_name of the elected follower's session."""
    return f"onestop-{follower}"


@dataclass
class LogFollower:
    """Follows the log as one elected follower: ``position()`` reads the tracking record, and
    ``step(position)`` does the next piece of work and returns the new position. Everything that
    needs a connection is inside the retry."""

    name: str
    conninfo: str
    lock_key: int
    channel: str
    position: Callable[[], int]
    step: Callable[[int], int]
    tracking: str = ""
    poll_seconds: float = 1.0
    # Busy: let the next events gather for a moment before the next step, so that each batch
    # carries more of them. An idle follower still answers the first NOTIFY at once.
    gather_seconds: float = 0.0
    # Errors of the step that are retried with backoff besides lost connections (the broker away).
    transient: tuple[type[BaseException], ...] = ()
    backoff: Backoff = field(default_factory=Backoff)
    connect_timeout: int = 10

    def __post_init__(self) -> None:
        self.status = status_of(self.name, self.tracking)

    def run(self, stop: threading.Event) -> None:
        """Follow until ``stop`` is set. Lost connections and transient errors are retried;
        anything else escapes (run it with ``start_thread`` so that it ends the process)."""
        retried = (*CONNECTION_ERRORS, *self.transient)
        try:
            while not stop.is_set():
                try:
                    self._follow(stop)
                except retried as error:
                    delay = self.backoff.next()
                    self.status.state = "reconnecting"
                    self.status.errors += 1
                    self.status.last_error = f"{type(error).__name__}: {error}".strip()
                    log.warning("%s: %s; trying again in %.1fs", self.name, self.status.last_error, delay)
                    stop.wait(delay)
        finally:
            self.status.state = "stopped"

    def _follow(self, stop: threading.Event) -> None:
        # The session's application_name says what it is doing, so that health can count the
        # copies standing by (see infrastructure.eventstore.follower_status).
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=self.connect_timeout,
                             application_name=standby_name(self.name)) as conn:
            if not self._elect(conn, stop):
                return
            try:
                conn.execute(f"SET application_name TO '{running_name(self.name)}'")
                conn.execute(f'LISTEN "{self.channel}"')
                position = self.position()
                self.status.position = position
                self.status.state = "running"
                log.info("%s elected; following the log from position %d", self.name, position)
                while not stop.is_set():
                    new = self.step(position)
                    self.backoff.reset()
                    if new != position:
                        position = new
                        self.status.progressed(position)
                        if self.gather_seconds:
                            stop.wait(self.gather_seconds)
                        continue
                    # Wake on the next NOTIFY, or poll. A dead connection raises here.
                    for _ in conn.notifies(timeout=self.poll_seconds, stop_after=1):
                        pass
            finally:
                if not conn.closed and not conn.broken:
                    try:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (self.lock_key,))
                    except psycopg.Error:
                        pass  # closing the connection releases it anyway

    def _elect(self, conn: psycopg.Connection[Any], stop: threading.Event) -> bool:
        self.status.state = "standby"
        said = False
        while not stop.is_set():
            if conn.execute("SELECT pg_try_advisory_lock(%s)", (self.lock_key,)).fetchone()[0]:  # type: ignore[index]
                return True
            if not said:
                log.info("%s: another copy holds the lock; standing by", self.name)
                said = True
            stop.wait(self.poll_seconds)
        return False


# -- the same loop for asyncio followers (the webhook dispatcher) ---------------------------------

ASYNC_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, asyncio.TimeoutError)


async def follow_async(
    name: str, step: Callable[[], Awaitable[int]], wake: Callable[[], Awaitable[Any]], stop: asyncio.Event, *,
    position: Callable[[], Awaitable[int]] | None = None, tracking: str = "", poll_seconds: float = 1.0,
    transient: tuple[type[BaseException], ...] = (), backoff: Backoff | None = None,
) -> None:
    """The asyncio form of the loop: ``step()`` until ``stop`` is set, waiting for ``wake()`` (a
    notification) or ``poll_seconds`` between steps. Lost connections and ``transient`` errors
    are retried with backoff; anything else escapes."""
    import asyncpg

    retried = (*ASYNC_CONNECTION_ERRORS, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
               asyncpg.exceptions.CannotConnectNowError, asyncpg.exceptions.TooManyConnectionsError,
               asyncpg.exceptions.AdminShutdownError, *transient)
    status = status_of(name, tracking)
    backoff = backoff or Backoff()
    status.state = "running"
    try:
        while not stop.is_set():
            waiter = asyncio.ensure_future(wake())
            delay = poll_seconds
            try:
                if await step():
                    status.last_progress_at = time.time()
                if position is not None:
                    status.position = await position()
                status.state = "running"
                backoff.reset()
            except retried as error:
                delay = backoff.next()
                status.state = "reconnecting"
                status.errors += 1
                status.last_error = f"{type(error).__name__}: {error}".strip()
                log.warning("%s: %s; trying again in %.1fs", name, status.last_error, delay)
            stopping = asyncio.ensure_future(stop.wait())
            _, pending = await asyncio.wait([waiter, stopping], timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
    finally:
        status.state = "stopped"

