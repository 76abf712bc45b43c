"""Sweeps instead of hope: jobs whose message was lost are sent again, and open payments past
their time are expired, by looking at PostgreSQL now and then rather than trusting a message
(or a delayed message held in a worker's memory) to arrive.

Both are idempotent (a job sent twice is run once to completion; expiring an expired payment
does nothing) and elected: one sweeper at a time holds an advisory lock, on a connection of its
own, and others stand by. It runs in the dispatcher's process (`onestop dispatcher`, `onestop jobs`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

import psycopg

from application.back_office import BackOffice
from application.jobs import EXPIRE_PAYMENT, Job
from domain.actors import Actor
from domain.calendar import BANGKOK
from infrastructure.jobs.dispatcher import Send
from infrastructure.jobs.jobs_store import JobsStore

log = logging.getLogger("onestop.sweeps")

ADVISORY_LOCK_KEY = 0x0E57_0004
SWEEPER = Actor(sub="onestop-sweeper", role="system")
BATCH = 500


@dataclass(frozen=True)
class SweepResult:
    resent: int = 0
    expired: int = 0
    reminded: int = 0
    no_shows: int = 0
    reconciled: date | None = None


class Sweeper:
    def __init__(self, app: BackOffice, send: Send, *, stale_seconds: float, retry_grace_seconds: float = 0.0,
                 reconcile: Callable[[date], object] | None = None, reconcile_after_hour: int = 6) -> None:
        self.app = app
        # The daily reconciliation with the bank: once a day, after the bank's settlement file of
        # the day before is out (``reconcile_after_hour``, Bangkok time). It records only what
        # changed, so running it again after a restart is harmless.
        self.reconcile = reconcile
        self.reconcile_after_hour = reconcile_after_hour
        self.reconciled_through: date | None = None
        self.send = send
        self.stale_seconds = stale_seconds
        # A job between retries waits up to the longest backoff before anyone touches it.
        self.retry_grace_seconds = retry_grace_seconds
        self.datastore = app.recorder.datastore  # type: ignore[attr-defined]
        self.store = JobsStore(self.datastore)

    def sweep(self) -> SweepResult:
        """One pass of both sweeps; return what was done."""
        reminded, no_shows = self.sweep_appointments()
        return SweepResult(resent=self.resend_stale_jobs(), expired=self.expire_payments(), reminded=reminded, no_shows=no_shows,
                           reconciled=self.reconcile_yesterday())

    def sweep_appointments(self) -> tuple[int, int]:
        """Reminders whose lead time has come (``appointment.reminder-due`` in the feed), and
        no-shows: bookings not checked in by the end of their slot plus the grace. The
        appointments view finds candidates; each appointment's own calendar decides."""
        now = self.app.clock.now()
        rules = self.app.appointment_rules
        lead = max([rules.default.reminder_lead_minutes, *(c.reminder_lead_minutes for *_, c in rules.calendars)])
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT id FROM appointments_view WHERE status = 'booked' AND ("
                " ends_at <= %s OR (NOT reminded AND starts_at > %s AND starts_at <= %s))"
                " ORDER BY starts_at LIMIT %s",
                (now, now, now + timedelta(minutes=lead), BATCH),
            )
            ids = [row["id"] for row in curs.fetchall()]
        reminded = no_shows = 0
        for appointment_id in ids:
            try:
                done = self.app.sweep_appointment(appointment_id, SWEEPER)
            except Exception as error:  # changed at this moment, for example: look again next time
                log.warning("could not sweep appointment %s yet: %s", appointment_id, error)
                continue
            reminded += done.reminded
            no_shows += done.no_shows
        return reminded, no_shows

    def reconcile_yesterday(self) -> date | None:
        """Reconcile the day before with the bank, once, when its time has come; the day done."""
        if self.reconcile is None:
            return None
        now = self.app.clock.now().astimezone(BANGKOK)
        yesterday = now.date() - timedelta(days=1)
        if now.hour < self.reconcile_after_hour or self.reconciled_through == yesterday:
            return None
        self.reconcile(yesterday)  # an error leaves the day to the next sweep
        self.reconciled_through = yesterday
        log.info("reconciled %s with the bank's settlement file", yesterday)
        return yesterday

    def resend_stale_jobs(self) -> int:
        """Send again every job pending (or between retries) for longer than the stale time: its
        message was lost (a broker that lost its queue, a crash between commit and send)."""
        now = self.app.clock.now()
        stale = now - timedelta(seconds=self.stale_seconds)
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "SELECT id, kind, request_id, payment_id FROM jobs WHERE kind <> %s AND ("
                " (status = 'pending' AND updated_at < %s AND coalesce(run_at, created_at) < %s)"
                " OR (status = 'retrying' AND updated_at < %s))"
                " ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
                (EXPIRE_PAYMENT, stale, stale, stale - timedelta(seconds=self.retry_grace_seconds), BATCH),
            )
            rows = curs.fetchall()
            for row in rows:
                # The same message id as the first send: the worker skips a job already done.
                self.send(Job(row["id"], row["kind"], row["request_id"], row["payment_id"]), 0)
            if rows:
                curs.execute("UPDATE jobs SET updated_at = now() WHERE id = ANY(%s)", ([r["id"] for r in rows],))
        if rows:
            log.warning("sent again %d jobs pending for more than %.0f s", len(rows), self.stale_seconds)
        return len(rows)

    def expire_payments(self) -> int:
        """Expire the open payments whose time has come (their expiry jobs' ``run_at``), and mark
        those jobs done."""
        now = self.app.clock.now()
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(
                "SELECT id, kind, request_id, payment_id FROM jobs WHERE kind = %s AND status IN ('pending', 'retrying')"
                " AND run_at <= %s ORDER BY run_at LIMIT %s",
                (EXPIRE_PAYMENT, now, BATCH),
            )
            rows = curs.fetchall()
        expired, done = 0, []
        for row in rows:
            job = Job(row["id"], row["kind"], row["request_id"], row["payment_id"])
            try:
                expired += bool(self.app.expire_payment(row["payment_id"], SWEEPER))
            except Exception as error:  # paid at this moment, for example: look again next time
                log.warning("could not expire payment %s yet: %s", row["payment_id"], error)
                continue
            done.append(job)
        self.store.finish_many(done)
        return expired

    def run(self, stop: threading.Event, conninfo: str, *, every_seconds: float) -> None:
        """Stand by until elected, then sweep every ``every_seconds`` until ``stop`` is set. A
        lost connection is reconnected (the lock is taken again), after a pause."""
        while not stop.is_set():
            try:
                self._elected(stop, conninfo, every_seconds)
            except psycopg.OperationalError as error:
                log.warning("sweeper lost its database connection (%s); reconnecting", error)
                stop.wait(min(every_seconds, 5.0))

    def _elected(self, stop: threading.Event, conninfo: str, every_seconds: float) -> None:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            while not stop.is_set() and not conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()[0]:
                stop.wait(every_seconds)
            while not stop.is_set():
                try:
                    self.sweep()
                except Exception:
                    log.exception("sweep failed; trying again at the next one")
                stop.wait(every_seconds)
                conn.execute("SELECT 1")  # the lock lives with this session: notice when it is gone

