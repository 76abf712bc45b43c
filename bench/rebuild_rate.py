"""How fast every view is rebuilt from the log (`onestop projector --rebuild`), against reading
and decoding the same log without folding it; and how fast the log's followers (the published
feed, the audit hash chain) catch up.

    .venv/bin/python bench/rebuild_rate.py [--events 100000] [--rounds 3] [--keep-db] [--skip-live] [--live-batch 20] [--live-events 20000]

1. A fresh database (127.0.0.1:5432, dropped at the end unless --keep-db); `onestop migrate`;
   ``--events`` events written through ``BackOffice.submit_many`` (complaints, and flyer permits
   with fees and payments, in two organisations).
2. ``--rounds`` rounds of, back to back:
   - the baseline, in this process: the log read and decoded the way a rebuild reads and decodes
     it (``read_notifications``, a binary cursor on its own connection, in batches of 10,000;
     each batch through the event store's mapper, personal fields decrypted; the collector
     quietened as in a rebuild) and nothing else: no fold, no write;
   - `onestop projector --rebuild` (a process): its own "rebuilt N events in S s (R events/s);
     indexes built again in T s; ...; C s CPU in this process applying the log" line, and whether
     every view's checksum came out the same as before the rebuild (from the second run on, the
     views were already complete, so they must). The rate counts applying the log; building the
     secondary indexes again afterwards is printed apart.
   Each rebuild is compared with the baseline just before it (the shared machine's load changes
   from minute to minute); the ratio reported is the median of the rounds' ratios. CPU an event
   of both (the Python process only, PostgreSQL's not counted) is printed too.
3. The followers the elected projector runs after each catch-up, timed one by one from empty:
   ``FeedFollower`` (a CloudEvent per event) and ``ChainFollower`` (a SHA-256 link per event).
4. The live projector's work over the whole log from empty (views in batches of 2000, the
   feed, the chain), both ways back to back: the followers reading the log again after the
   views, and the followers taking each batch the projector read; then the first
   ``--live-events`` (20,000) in batches of ``--live-batch`` (20), as the projector takes them
   while requests are filed, with its CPU an event (``--skip-live`` skips all of step 4).

Targets: rebuild >= 30,000 events/s, and >= 0.6 x the baseline (PASS/FAIL for each). Exit 0
when it ran.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

TARGET = 30_000.0
# A rebuild's rate over the rate of reading and decoding the same log in the same run.
RATIO_TARGET = 0.6


def read_only(dsn: str) -> tuple[int, float, float]:
    """A rebuild's read and decode without the fold and the writes."""
    import psycopg

    from infrastructure.eventstore.event_log import read_notifications
    from infrastructure.views.projector import quiet_gc
    from onestop.bootstrap import build_back_office
    from onestop.settings import Settings

    settings = Settings.from_env({"ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": "x", **h.KEY_ENV})
    app = build_back_office(settings)
    try:
        with psycopg.connect(settings.database.conninfo(), autocommit=True) as conn, quiet_gc():
            started, cpu, count, position = time.perf_counter(), time.process_time(), 0, 0
            while True:
                notifications = read_notifications(conn, position, 10_000)
                if not notifications:
                    return count, time.perf_counter() - started, time.process_time() - cpu
                app.mapper.to_domain_events(notifications)
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
        conn.execute("TRUNCATE event_feed, event_feed_position, aggregate_organizations, audit_chain, audit_chain_head")
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


def live(dsn: str, small_batch: int = 20, small_events: int = 20_000) -> list[tuple[str, int, float, float]]:
    """The elected projector's work over the whole log from empty (the views, the published
    feed, the hash chain) done both ways, back to back: the followers reading the log again
    after the views (as before), and the followers taking each batch the projector read; then
    the first ``small_events`` events in batches of ``small_batch``, as the live projector
    takes them while requests are filed. Returns (way, events, wall seconds, this process's CPU
    seconds) for each."""
    import psycopg

    from infrastructure.audit.audit_chain import ChainFollower
    from infrastructure.integrations.event_feed import FeedFollower
    from infrastructure.views.projector import Projector
    from onestop.bootstrap import build_back_office, build_views, datastore
    from onestop.settings import Settings

    settings = Settings.from_env({"ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": "x", **h.KEY_ENV})
    app = build_back_office(settings, pool_max=1)
    results = []
    try:
        views = build_views(app)
        for way in ("followers read the log again", "followers take the projector's batches"):
            views.reset()
            with psycopg.connect(settings.database.conninfo(), autocommit=True) as conn:
                conn.execute("TRUNCATE event_feed, event_feed_position, aggregate_organizations, audit_chain, audit_chain_head")
            followers = [FeedFollower(datastore(app), reveal=app.personal_data.reveal_published), ChainFollower(datastore(app))]  # type: ignore[attr-defined]
            projector = Projector(app, views, followers=followers)  # type: ignore[arg-type]
            started, cpu = time.perf_counter(), time.process_time()
            if way.startswith("followers read"):
                count = projector.catch_up()
                for follower in followers:
                    follower.catch_up()
            else:
                # What Projector.step does: each batch handed over, then catch_up(until=...).
                count = projector.catch_up(hand_off=True)
                for follower in followers:
                    follower.catch_up(until=projector.position)
            results.append((way, count, time.perf_counter() - started, time.process_time() - cpu))
        # As the projector runs while requests are being filed: a few events a batch, each batch
        # through the views, the feed and the chain in their own transactions.
        views.reset()
        with psycopg.connect(settings.database.conninfo(), autocommit=True) as conn:
            conn.execute("TRUNCATE event_feed, event_feed_position, aggregate_organizations, audit_chain, audit_chain_head")
        followers = [FeedFollower(datastore(app), reveal=app.personal_data.reveal_published), ChainFollower(datastore(app))]  # type: ignore[attr-defined]

        class Bounded(Projector):
            def _read(self, after: int, limit: int) -> list[Any]:
                return super()._read(after, min(limit, small_events - after)) if after < small_events else []

        projector = Bounded(app, views, batch_size=small_batch, followers=followers)  # type: ignore[arg-type]
        started, cpu = time.perf_counter(), time.process_time()
        count = projector.step(0)
        results.append((f"batches of {small_batch} (views, feed, chain each batch)", count, time.perf_counter() - started,
                        time.process_time() - cpu))
    finally:
        app.close()
    return results


async def main_async(args: argparse.Namespace) -> int:
    dbname = await h.create_database("onestop_rbench")
    dsn = h.db_dsn(dbname)
    env = {**os.environ, "ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": secrets.token_urlsafe(32), **h.KEY_ENV, "ONESTOP_LOG_LEVEL": "WARNING"}
    exe = h.onestop_command()
    rates: list[float] = []
    indexes: list[float] = []
    baselines: list[float] = []
    ratios: list[float] = []
    baseline_cpu: list[float] = []
    rebuild_cpu: list[float] = []
    try:
        print(f"machine: {os.cpu_count()} cores; PostgreSQL {await h.server_version()}; Python {platform.python_version()}; "
              f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; database {dbname}", flush=True)
        subprocess.run([exe, "migrate"], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        head = await asyncio.to_thread(h.generate_events, dsn, args.events)
        print(f"wrote {head} events through BackOffice.submit_many in {time.perf_counter() - started:.1f}s", flush=True)
        for n in range(1, args.rounds + 1):
            # The baseline right before each rebuild: the machine's load varies from minute to
            # minute, so each rebuild is compared with a read of the same log just before it.
            count, seconds, cpu = await asyncio.to_thread(read_only, dsn)
            baselines.append(count / seconds)
            baseline_cpu.append(cpu / count)
            print(f"  baseline {n}: read and decoded {count} events (no fold) in {seconds:.2f}s = {count / seconds:,.0f} events/s"
                  f" ({cpu / count * 1e6:.1f} µs CPU an event)", flush=True)
            run = subprocess.run([exe, "projector", "--rebuild"], env=env, capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"onestop projector --rebuild failed:\n{run.stderr[-2000:]}")
            match = re.search(r"rebuilt (\d+) events in ([\d.]+)s \(([\d,]+) events/s\); indexes built again in ([\d.]+)s;"
                              r".*; ([\d.]+)s CPU in this process", run.stdout)
            if match is None:
                raise RuntimeError(f"unexpected output:\n{run.stdout[-1000:]}")
            rate = float(match.group(3).replace(",", ""))
            rates.append(rate)
            indexes.append(float(match.group(4)))
            rebuild_cpu.append(float(match.group(5)) / int(match.group(1)))
            ratios.append(rate / baselines[-1])
            views = [line.strip() for line in run.stdout.splitlines() if line.startswith("  ")]
            same = all("same as before" in line for line in views)
            print(f"  rebuild {n}: {match.group(1)} events in {match.group(2)}s = {rate:,.0f} events/s"
                  f" ({rebuild_cpu[-1] * 1e6:.1f} µs CPU an event) = {ratios[-1]:.2f} x baseline {n}; then indexes in {match.group(4)}s; views "
                  f"{'identical to before' if same else 'changed (expected on the first run, from empty views)'}", flush=True)
            if n > 1 and not same:
                raise RuntimeError("a rebuild of complete views changed them:\n" + "\n".join(views))
        for name, done, took in await asyncio.to_thread(followers, dsn):
            print(f"  follower {name}: {done} events in {took:.2f}s = {done / took:,.0f} events/s", flush=True)
        if not args.skip_live:
            print("live projector over the whole log (views, feed, chain), from empty:", flush=True)
            for way, done, took, cpu in await asyncio.to_thread(live, dsn, args.live_batch, args.live_events):
                print(f"  {way}: {done} events in {took:.2f}s ({done / took:,.0f} events/s), {cpu:.2f}s CPU in the projector's process"
                      f" ({cpu / done * 1e6:.1f} µs an event)", flush=True)
    except Exception as error:
        print(f"bench: FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        await h.drop_or_keep(dbname, dsn, args.keep_db)
    rate = statistics.median(rates)
    ratio = statistics.median(ratios)
    print()
    print(f"rebuild of every view: {rate:,.0f} events/s (median of {len(rates)}), then the secondary indexes built again in "
          f"{statistics.median(indexes):.2f}s (not in the rate)")
    print(f"reading and decoding the log alone, just before each rebuild: {statistics.median(baselines):,.0f} events/s (median);"
          f" rebuild = {ratio:.2f} x that (median of the rounds' ratios: {', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"CPU an event in the Python process (PostgreSQL's not counted): reading and decoding {statistics.median(baseline_cpu) * 1e6:.1f} µs,"
          f" rebuild {statistics.median(rebuild_cpu) * 1e6:.1f} µs ({statistics.median(baseline_cpu) / statistics.median(rebuild_cpu):.2f} x)")
    print(f"target rebuild >= {TARGET:,.0f} events/s: {'PASS' if rate >= TARGET else 'FAIL'}")
    print(f"target rebuild >= {RATIO_TARGET} x reading and decoding: {'PASS' if ratio >= RATIO_TARGET else 'FAIL'}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--skip-live", action="store_true", help="skip timing the live projector with its followers")
    parser.add_argument("--live-batch", type=int, default=20, help="events a batch for the live projector's small-batch figure")
    parser.add_argument("--live-events", type=int, default=20_000, help="events the small-batch figure covers")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
