"""How fast every view is rebuilt from the log (`onestop projector --rebuild`), against reading
and decoding the same log without folding it; and how fast the log's followers (the published
feed, the audit hash chain) catch up.

    .venv/bin/python bench/rebuild_rate.py [--events 100000] [--rounds 2] [--keep-db]

1. A fresh database (127.0.0.1:5432, dropped at the end unless --keep-db); `onestop migrate`;
   ``--events`` events written through ``BackOffice.submit_many`` (complaints, and flyer permits
   with fees and payments, in two organisations).
2. Baseline, in this process: the log read the way the projector reads it (eventsourcing's
   ``select_notifications`` in batches of 2000, each turned into its domain event) and nothing
   else. That is the ceiling of any rebuild in Python.
3. ``--rounds`` runs of `onestop projector --rebuild` (a process): its own "rebuilt N events in
   S s (R events/s)" line, and whether every view's checksum came out the same as before the
   rebuild (from the second run on, the views were already complete, so they must).
4. The followers the elected projector runs after each catch-up, timed one by one from empty:
   ``FeedFollower`` (a CloudEvent per event) and ``ChainFollower`` (a SHA-256 link per event).

Target: rebuild >= 20,000 events/s. Exit 0 when it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

TARGET = 20_000.0


def read_only(dsn: str) -> tuple[int, float]:
    """The projector's read path without the fold."""
    from onestop.bootstrap import build_back_office
    from onestop.settings import Settings

    app = build_back_office(Settings.from_env({"ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": "x", **h.KEY_ENV}))
    try:
        started, count, position = time.perf_counter(), 0, 0
        while True:
            notifications = app.recorder.select_notifications(start=position, limit=2000, inclusive_of_start=False)
            if not notifications:
                return count, time.perf_counter() - started
            for notification in notifications:
                app.mapper.to_domain_event(notification)
            count += len(notifications)
            position = notifications[-1].id
    finally:
        app.close()


def followers(dsn: str) -> list[tuple[str, int, float]]:
    """Each follower of the log, from empty, timed alone."""
    import psycopg

    from infrastructure.audit.audit_chain import ChainFollower
    from onestop.bootstrap import build_back_office, datastore
    from infrastructure.integrations.event_feed import FeedFollower
    from onestop.settings import Settings

    settings = Settings.from_env({"ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": "x", **h.KEY_ENV})
    with psycopg.connect(settings.database.conninfo(), autocommit=True) as conn:
        conn.execute("TRUNCATE event_feed, aggregate_organizations, audit_chain, audit_chain_head")
    app = build_back_office(settings)
    results = []
    try:
        for follower in (FeedFollower(datastore(app)), ChainFollower(datastore(app))):
            started = time.perf_counter()
            count = follower.catch_up()
            results.append((type(follower).__name__, count, time.perf_counter() - started))
    finally:
        app.close()
    return results


async def main_async(args: argparse.Namespace) -> int:
    dbname = await h.create_database("onestop_rbench")
    dsn = h.db_dsn(dbname)
    env = {**os.environ, "ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": secrets.token_urlsafe(32), **h.KEY_ENV, "ONESTOP_LOG_LEVEL": "WARNING"}
    exe = h.onestop_command()
    rates: list[float] = []
    try:
        print(f"machine: {os.cpu_count()} cores; PostgreSQL {await h.server_version()}; Python {platform.python_version()}; "
              f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; database {dbname}", flush=True)
        subprocess.run([exe, "migrate"], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        head = await asyncio.to_thread(h.generate_events, dsn, args.events)
        print(f"wrote {head} events through BackOffice.submit_many in {time.perf_counter() - started:.1f}s", flush=True)
        count, seconds = await asyncio.to_thread(read_only, dsn)
        baseline = count / seconds
        print(f"baseline: read and decoded {count} events (no fold) in {seconds:.2f}s: {baseline:,.0f} events/s", flush=True)
        for n in range(1, args.rounds + 1):
            run = subprocess.run([exe, "projector", "--rebuild"], env=env, capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"onestop projector --rebuild failed:\n{run.stderr[-2000:]}")
            match = re.search(r"rebuilt (\d+) events in ([\d.]+)s \(([\d,]+) events/s\)", run.stdout)
            if match is None:
                raise RuntimeError(f"unexpected output:\n{run.stdout[-1000:]}")
            rate = float(match.group(3).replace(",", ""))
            rates.append(rate)
            views = [line.strip() for line in run.stdout.splitlines() if line.startswith("  ")]
            same = all("same as before" in line for line in views)
            print(f"  rebuild {n}: {match.group(1)} events in {match.group(2)}s = {rate:,.0f} events/s; views "
                  f"{'identical to before' if same else 'changed (expected on the first run, from empty views)'}", flush=True)
            if n > 1 and not same:
                raise RuntimeError("a rebuild of complete views changed them:\n" + "\n".join(views))
        for name, done, took in await asyncio.to_thread(followers, dsn):
            print(f"  follower {name}: {done} events in {took:.2f}s = {done / took:,.0f} events/s", flush=True)
    except Exception as error:
        print(f"bench: FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        await h.drop_or_keep(dbname, dsn, args.keep_db)
    rate = statistics.median(rates)
    print()
    print(f"rebuild of every view: {rate:,.0f} events/s (median of {len(rates)}); {rate / baseline:.2f} x reading the log alone "
          f"({baseline:,.0f} events/s)")
    print(f"target >= {TARGET:,.0f} events/s: {'PASS' if rate >= TARGET else 'FAIL'}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep-db", action="store_true")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
