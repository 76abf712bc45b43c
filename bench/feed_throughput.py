"""Throughput of the integrators' catch-up feed (`GET /v1/streams/events`) against a raw asyncpg
read of the same events.

    .venv/bin/python bench/feed_throughput.py [--events 100000] [--page 1000] [--rounds 3] [--keep-db]

1. A fresh database (127.0.0.1:5432, dropped at the end unless --keep-db); `onestop migrate`.
2. ``--events`` events written through the application, many requests per save
   (``BackOffice.submit_many``): complaints and flyer permits with fees, in two organisations.
3. `onestop projector` (a process) builds the views and publishes the feed; the bench waits until
   the feed holds every event. `onestop api` (a process) serves the feed.
4. Per round, in this process: the baseline pages through ``onestop_events`` with asyncpg
   (``notification_id > $1 ORDER BY notification_id LIMIT page``: every column, nothing decoded);
   then an aiohttp client pages through the feed over HTTP with ``limit=page`` to the end,
   asking for the next page (its address is in the ``Link`` header) while it decodes the current
   one (orjson), and checks it got every event once, in order. A second HTTP figure ("bytes
   only") does not decode the pages, to show what the server side alone does.

Targets: >= 30,000 events/s over HTTP and >= 0.3 x the raw read; both figures get a verdict
(the raw read decodes no event, so "bytes only" is the like-for-like one). Exit 0 when it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

RAW_SQL = ("SELECT notification_id, originator_id, originator_version, topic, state FROM onestop_events"
           " WHERE notification_id > $1 ORDER BY notification_id LIMIT $2")


async def raw_read(dsn: str, page: int) -> tuple[int, float]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        started, count, position = time.perf_counter(), 0, 0
        while True:
            rows = await conn.fetch(RAW_SQL, position, page)
            if not rows:
                return count, time.perf_counter() - started
            count += len(rows)
            position = rows[-1][0]
    finally:
        await conn.close()


async def http_read(base: str, token: str, page: int, *, parse: bool) -> tuple[int, float]:
    """Page through the feed as a consumer that asks for the next page (from the ``Link``
    header) before it decodes the current one; with ``parse``, decode and check every page."""
    import re

    import aiohttp
    import orjson

    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:

        async def fetch(cursor: str) -> tuple[bytes, str]:
            async with session.get(f"{base}/v1/streams/events?limit={page}&after={cursor}", headers=headers) as response:
                body = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"feed answered {response.status}: {body[:300]!r}")
                match = re.search(r"[?&]after=(\d+)", response.headers["Link"])
                assert match is not None
                return body, match.group(1)

        started, count, cursor, last = time.perf_counter(), 0, "", 0
        pending = asyncio.ensure_future(fetch(cursor))
        while True:
            body, next_cursor = await pending
            finished = next_cursor == cursor
            if not finished:
                pending = asyncio.ensure_future(fetch(next_cursor))
            if parse:
                document = orjson.loads(body)
                sequences = [int(item["sequence"]) for item in document["items"]]
                if sequences and (sequences[0] <= last or sequences != sorted(set(sequences))):
                    raise RuntimeError(f"the feed went back or repeated itself after {last}")
                if document["next_cursor"] != next_cursor:
                    raise RuntimeError("next_cursor and the Link header disagree")
                last = sequences[-1] if sequences else last
                count += len(sequences)
            else:
                count += body.count(b'"specversion"')
            if finished:
                return count, time.perf_counter() - started
            cursor = next_cursor


async def wait_published(dsn: str, head: int, timeout: float = 600.0) -> float:
    import asyncpg

    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            published = await conn.fetchval("SELECT coalesce(max(position), 0) FROM event_feed")
            if published >= head:
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the feed reached {published} of {head} in {timeout:.0f}s")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> int:
    dbname = await h.create_database("onestop_fbench")
    dsn = h.db_dsn(dbname)
    env = {**os.environ, "ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": secrets.token_urlsafe(32), "ONESTOP_DEV_TOKENS": "1", **h.KEY_ENV, "ONESTOP_SECRETS_KEY": secrets.token_urlsafe(32),
           "ONESTOP_PORT": str(h.free_port()), "ONESTOP_HOST": "127.0.0.1", "ONESTOP_LOG_LEVEL": "WARNING"}
    exe = h.onestop_command()
    children: list[h.Child] = []
    results: dict[str, list[float]] = {"raw": [], "http": [], "http_bytes": []}
    with tempfile.TemporaryDirectory(prefix="onestop-fbench-") as tmp:
        try:
            print(f"machine: {os.cpu_count()} cores shared by this client, the API, the projector and PostgreSQL "
                  f"{await h.server_version()}; Python {platform.python_version()}; database {dbname}", flush=True)
            subprocess.run([exe, "migrate"], env=env, check=True, capture_output=True)
            started = time.perf_counter()
            head = await asyncio.to_thread(h.generate_events, dsn, args.events)
            took = time.perf_counter() - started
            print(f"wrote {head} events through BackOffice.submit_many in {took:.1f}s ({head / took:,.0f} events/s)", flush=True)
            children.append(h.start_child("projector", [exe, "projector"], env, Path(tmp)))
            print(f"projector: views and feed caught up in {await wait_published(dsn, head):.1f}s", flush=True)
            children.append(h.start_child("api", [exe, "api"], env, Path(tmp)))
            base = f"http://127.0.0.1:{env['ONESTOP_PORT']}"
            await h.wait_http_ok(f"{base}/v1/health", children)
            token = subprocess.run([exe, "token", "--role", "integrator", "--sub", "bench"], env=env, check=True,
                                   capture_output=True, text=True).stdout.strip()
            await http_read(base, token, args.page, parse=True)  # warm-up: connections, caches
            for n in range(1, args.rounds + 1):
                count, seconds = await raw_read(dsn, args.page)
                results["raw"].append(count / seconds)
                http_count, http_seconds = await http_read(base, token, args.page, parse=True)
                if http_count != count:
                    raise RuntimeError(f"the feed gave {http_count} events, the log holds {count}")
                results["http"].append(http_count / http_seconds)
                bytes_count, bytes_seconds = await http_read(base, token, args.page, parse=False)
                results["http_bytes"].append(bytes_count / bytes_seconds)
                print(f"  round {n}: raw asyncpg {count / seconds:,.0f} events/s; HTTP feed {http_count / http_seconds:,.0f} events/s "
                      f"(parsed), {bytes_count / bytes_seconds:,.0f} events/s (bytes only)", flush=True)
        except Exception as error:
            h.report_failure(error, children)
            return 1
        finally:
            h.stop_children(children)
            await h.drop_or_keep(dbname, dsn, args.keep_db)
    raw, http, http_bytes = (statistics.median(results[k]) for k in ("raw", "http", "http_bytes"))
    print()
    print(f"events: {head}, page size {args.page}, {args.rounds} round(s), medians:")
    print(f"  raw asyncpg read of onestop_events      {raw:>10,.0f} events/s")
    print(f"  GET /v1/streams/events (client parses)  {http:>10,.0f} events/s")
    print(f"  GET /v1/streams/events (bytes only)     {http_bytes:>10,.0f} events/s")
    # The raw read decodes no event either: the like-for-like ratio is the bytes-only one. The
    # decoding client's figure is what a Python consumer on this machine sees end to end.
    for label, rate in (("HTTP bytes only / raw read (neither decodes the events)", http_bytes),
                        ("HTTP with the client decoding / raw read", http)):
        ratio = rate / raw
        print(f"ratio {label}: {ratio:.2f} (target >= {args.target_ratio:.2f}): {'PASS' if ratio >= args.target_ratio else 'FAIL'}")
    for label, rate in (("bytes only", http_bytes), ("client decoding", http)):
        print(f"HTTP feed rate, {label}: {rate:,.0f} events/s (target >= {args.target_rate:,.0f}): {'PASS' if rate >= args.target_rate else 'FAIL'}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to write (default 100000)")
    parser.add_argument("--page", type=int, default=1000, help="events per page, both reads (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternate raw and HTTP this many times (default 3)")
    parser.add_argument("--target-ratio", type=float, default=0.3)
    parser.add_argument("--target-rate", type=float, default=30_000)
    parser.add_argument("--keep-db", action="store_true")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
