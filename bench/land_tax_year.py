"""A municipality's land-and-building tax year: a 100,000-parcel roll imported, assessed and
noticed through the API, against a raw `COPY` of the same rows into a plain table.

    .venv/bin/python bench/land_tax_year.py [--parcels 100000] [--keep-db] [--log-dir DIR]

1. A fresh database (127.0.0.1:5432, dropped at the end unless --keep-db); `onestop migrate`;
   `onestop api` as a process (ONESTOP_POOL_SIZE 4). No projector runs during the timed steps.
2. The roll: ``--parcels`` rows for MUN-SAENSUK, tax year 2569, about 0.7 owner per parcel
   (some owners hold two or three parcels), every land use, values from 100,000 to 60 M baht;
   a few hundred juristic owners. Generated once, streamed to the API as CSV.
3. Timed through the API: `POST /v1/land-tax/2569/parcels` (the import), then
   `POST /v1/land-tax/2569/notices` (assessment and notices), then the same import again
   (nothing changes: every row is compared with the roll). Rows/s per step.
4. Baseline, same run, same database: asyncpg `COPY` of the same rows into a plain table.
5. The API process's peak resident memory (VmHWM from /proc), and afterwards the projector's
   catch-up of the views (`onestop projector` as a process, until its position reaches the log).

Target: import + notices <= 60 s. Exit 0 when it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
from _harness import national_id  # noqa: E402

TARGET_SECONDS = 60.0
ORG = "MUN-SAENSUK"
USES = ["residential"] * 5 + ["main_residence"] * 3 + ["commercial"] * 2 + ["agricultural", "house_only", "vacant"]


def make_roll(parcels: int, seed: int = 2569) -> list[tuple]:
    rng = random.Random(seed)
    rows, owner = [], 0
    while len(rows) < parcels:
        owner += 1
        juristic = owner % 250 == 0
        owner_id = f"0105{owner:09d}" if juristic else national_id(owner)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            if len(rows) >= parcels:
                break
            use = rng.choice(USES)
            value = rng.randrange(10_000_000, 6_000_000_000)  # 100,000 to 60 M baht, in satang
            rows.append((f"SS-{len(rows) + 1:07d}", owner_id, "juristic" if juristic else "individual",
                         f"เจ้าของ {owner}", use, value, rng.choice((0, 1, 3, 6)) if use == "vacant" else 0))
    return rows


def as_csv(rows: list[tuple]) -> bytes:
    lines = ["parcel_id,owner_id,owner_kind,owner_name,land_use,value_satang,vacant_years"]
    lines += [",".join(str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


async def chunks(body: bytes, size: int = 256 * 1024):
    for start in range(0, len(body), size):
        yield body[start:start + size]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def copy_baseline(dsn: str, rows: list[tuple]) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE bench_roll (parcel_id text PRIMARY KEY, owner_id text, owner_kind text, owner_name text,"
                           " land_use text, value_satang bigint, vacant_years int)")
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_roll", records=rows)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, default=100_000)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--log-dir", type=Path, default=None)
    args = parser.parse_args()

    import aiohttp

    from api.auth import make_token

    dbname = await h.create_database("onestop_bench")
    dsn = h.db_dsn(dbname)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="land_tax_bench_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    port = h.free_port()
    env = {**os.environ, "ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": secret, "ONESTOP_POOL_SIZE": "4",
           "ONESTOP_PORT": str(port), "ONESTOP_SECRETS_KEY": "YmVuY2gtc2VjcmV0cy1rZXktMzItYnl0ZXMtbG9uZyE=",
           "ONESTOP_BODY_TIMEOUT_SECONDS": "60", "ONESTOP_DEV_TOKENS": "1", **h.KEY_ENV}
    exe = h.onestop_command()
    children: list[h.Child] = []
    try:
        import subprocess

        subprocess.run([exe, "migrate"], env=env, check=True, capture_output=True)
        roll = make_roll(args.parcels)
        body = as_csv(roll)
        owners = len({r[1] for r in roll})
        api = h.start_child("api", [exe, "api"], env, log_dir)
        children.append(api)
        base = f"http://127.0.0.1:{port}"
        await h.wait_http_ok(f"{base}/v1/openapi.json", children)
        headers = {"Authorization": f"Bearer {make_token(secret, sub='officer.bench', role='officer', org=ORG)}"}
        timings: dict[str, tuple[float, dict]] = {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            async def timed(name: str, method: str, path: str, **kwargs: object) -> None:
                started = time.perf_counter()
                async with session.request(method, base + path, headers={**headers, **kwargs.pop("headers", {})}, **kwargs) as resp:
                    answer = await resp.json()
                    if resp.status != 200:
                        raise RuntimeError(f"{name}: {resp.status} {answer}")
                timings[name] = (time.perf_counter() - started, answer)

            await timed("import", "POST", "/v1/land-tax/2569/parcels", data=chunks(body), headers={"Content-Type": "text/csv"})
            await timed("notices", "POST", "/v1/land-tax/2569/notices")
            await timed("re-import (unchanged)", "POST", "/v1/land-tax/2569/parcels", data=chunks(body), headers={"Content-Type": "text/csv"})
        peak = peak_rss_mb(api.proc.pid)
        copy_seconds = await copy_baseline(dsn, roll)

        projector = h.start_child("projector", [exe, "projector"], env, log_dir)
        children.append(projector)
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            head = await conn.fetchval("SELECT max(notification_id) FROM onestop_events")
            events = await conn.fetchval("SELECT count(*) FROM onestop_events")
            started = time.perf_counter()
            while (await conn.fetchval("SELECT coalesce(max(notification_id), 0) FROM onestop_views_tracking")) < head:
                if time.perf_counter() - started > 600:
                    raise RuntimeError("the projector did not catch up in 600 s")
                await asyncio.sleep(0.2)
            catch_up = time.perf_counter() - started
            notices_in_view = await conn.fetchval("SELECT count(*) FROM land_tax_notices")
            parcels_in_view = await conn.fetchval("SELECT count(*) FROM land_tax_parcels")
        finally:
            await conn.close()

        print(f"land-tax year: {args.parcels} parcels, {owners} owners, {len(body) / 1e6:.1f} MB of CSV; {os.cpu_count()} cores; "
              f"PostgreSQL {await h.server_version()}")
        print(f"{'step':<26}{'seconds':>9}{'rows/s':>11}  answer")
        for name, (seconds, answer) in timings.items():
            shown = {k: v for k, v in answer.items() if k in ("accepted", "unchanged", "rejected_count", "issued", "already_issued", "exempt")}
            print(f"{name:<26}{seconds:>9.2f}{args.parcels / seconds:>11.0f}  {shown}")
        print(f"{'COPY baseline':<26}{copy_seconds:>9.2f}{args.parcels / copy_seconds:>11.0f}  plain table, same rows")
        total = timings["import"][0] + timings["notices"][0]
        print(f"import + notices: {total:.2f} s ({'PASS' if total <= TARGET_SECONDS else 'FAIL'} against {TARGET_SECONDS:.0f} s); "
              f"{total / copy_seconds:.0f}x the COPY")
        print(f"API peak memory (VmHWM): {peak:.0f} MB")
        print(f"views caught up ({events} events in the log; {parcels_in_view} parcel rows, {notices_in_view} notice rows) "
              f"in {catch_up:.2f} s after the projector started")
        return 0
    finally:
        h.stop_children(children)
        if not args.keep_db:
            await h.drop_database(dbname)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
