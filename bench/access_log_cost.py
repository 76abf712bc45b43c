"""What recording reads in the access log costs: `GET /v1/service-requests/{id}` as an officer,
with the access log and without it, in the same run.

The API runs in this process (aiohttp's test server, on the real PostgreSQL at 127.0.0.1:5432,
in a throwaway database) with a closed loop of concurrent clients on the same event loop; the
two variants differ only in `ApiContext.disclosures` (None: nothing recorded). Rounds alternate
(with, without; without, with; ...) so that drift of the shared machine hits both alike.

    .venv/bin/python bench/access_log_cost.py [--seconds 5] [--rounds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from api.app_key import CTX  # noqa: E402
from api.auth import make_token  # noqa: E402
import _harness as h  # noqa: E402
from tests.conftest import create_database, drop_database, settings_for  # noqa: E402

SERVER = h.PG_ADMIN_DSN
JWT = "bench-secret-that-is-long-enough-for-hs256-0123456789"


async def measure(client: TestClient, path: str, headers: dict[str, str], seconds: float, concurrency: int) -> tuple[float, float, int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            async with client.get(path, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99) - 1] * 1000, errors


async def main(args: argparse.Namespace) -> None:
    from onestop.bootstrap import build_api, migrate

    url = create_database(SERVER, "onestop_bench")
    try:
        settings = settings_for(url, ONESTOP_RATE_LIMITS="off", ONESTOP_POOL_SIZE="4", ONESTOP_JWT_SECRET=JWT, **dict(a.split("=", 1) for a in args.env))
        migrate(settings)
        client = TestClient(TestServer(await build_api(settings)))
        await client.start_server()
        try:
            citizen = {"Authorization": f"Bearer {make_token(JWT, sub='3100600445635', role='citizen')}"}
            officer = {"Authorization": f"Bearer {make_token(JWT, sub='officer.saensuk', role='officer', org='MUN-SAENSUK')}", "X-Purpose": "bench"}
            body = {"service": "complaint", "organization": "MUN-SAENSUK", "channel": "web",
                    "applicant": {"national_id": "3100600445635", "name": "สมชาย ใจดี"},
                    "details": {"subject": "ไฟถนนดับ", "description": "ไฟถนนหน้าบ้านดับ", "location": "ซอย 5"}}
            async with client.post("/v1/service-requests", json=body, headers={**citizen, "Idempotency-Key": str(uuid.uuid4())}) as response:
                assert response.status == 201, await response.text()
                request_id = (await response.json())["id"]
            # The views catch up once, so that reads come from request_summaries (the usual path).
            from tests.integration.api_harness import ProjectorThread

            with ProjectorThread(settings), psycopg.connect(settings.database.conninfo()) as conn:
                while not conn.execute("SELECT count(*) FROM request_summaries").fetchone()[0]:
                    time.sleep(0.05)
            path = f"/v1/service-requests/{request_id}"
            ctx = client.app[CTX]
            disclosures = ctx.disclosures
            await measure(client, path, officer, 1.0, args.concurrency)  # warm-up
            results: dict[str, list[tuple[float, float, int]]] = {"with access log": [], "without": []}
            for round_ in range(args.rounds):
                # Each variant goes first in every other round.
                for name in (list(results) if round_ % 2 == 0 else list(results)[::-1]):
                    ctx.disclosures = disclosures if name == "with access log" else None
                    results[name].append(await measure(client, path, officer, args.seconds, args.concurrency))
            await ctx.access_log.flush()
            with psycopg.connect(settings.database.conninfo()) as conn:
                rows = conn.execute("SELECT count(*) FROM access_log").fetchone()[0]
        finally:
            await client.close()
    finally:
        drop_database(SERVER, url)
    print(f"GET /v1/service-requests/{{id}} as an officer, {args.concurrency} concurrent clients, {args.rounds} rounds of {args.seconds:.0f} s each")
    print(f"{'variant':<18}{'req/s (median)':>16}{'p99 ms (median)':>17}{'errors':>8}")
    for name, runs in results.items():
        print(f"{name:<18}{statistics.median(r[0] for r in runs):>16.0f}{statistics.median(r[1] for r in runs):>17.1f}{sum(r[2] for r in runs):>8}")
    with_log = statistics.median(r[0] for r in results["with access log"])
    without = statistics.median(r[0] for r in results["without"])
    print(f"cost of the access log: {100 * (1 - with_log / without):.1f}% of throughput; {rows} rows written")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--env", action="append", default=[], metavar="ONESTOP_X=V", help="a setting for the API (such as ONESTOP_ACCESS_LOG_FLUSH_MS=1000)")
    asyncio.run(main(parser.parse_args()))
