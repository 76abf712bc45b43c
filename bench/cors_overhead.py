"""What CORS costs per request: the same small aiohttp app (OneStop's problem middleware and a
handler answering a little JSON) served with and without ``api.cors.enable_cors``, driven by
the same client with an ``Origin`` header, alternating rounds in one run.

    .venv/bin/python bench/cors_overhead.py [--requests 4000] [--clients 16] [--rounds 3]

Prints requests/s and p50/p99 per configuration and the extra microseconds per request. No
database: this measures only what the CORS hooks add to an answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from api.cors import enable_cors  # noqa: E402
from api.http import json_response  # noqa: E402
from api.problems import problem_middleware  # noqa: E402

ORIGIN = "https://oss.example.go.th"


def make_app(with_cors: bool) -> web.Application:
    app = web.Application(middlewares=[problem_middleware])

    async def services(request: web.Request) -> web.Response:
        return json_response({"items": [{"code": "complaint", "name": "ร้องเรียน"}]}, headers={"ETag": '"1"'})

    app.router.add_get("/v1/services", services)
    if with_cors:
        enable_cors(app, [ORIGIN, "http://127.0.0.1:5173"])
    return app


async def measure(with_cors: bool, requests: int, clients: int) -> tuple[float, list[float]]:
    runner = web.AppRunner(make_app(with_cors), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/v1/services"
    latencies: list[float] = []
    remaining = requests
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        for _ in range(200):  # warm-up
            async with session.get(url, headers={"Origin": ORIGIN}) as response:
                await response.read()

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.get(url, headers={"Origin": ORIGIN}) as response:
                    await response.read()
                    assert response.status == 200
                    assert (response.headers.get("Access-Control-Allow-Origin") == ORIGIN) == with_cors
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    await runner.cleanup()
    return len(latencies) / elapsed, latencies


async def hooks_alone(with_cors: bool, answers: int = 20000) -> float:
    """Microseconds per answer to make a Response and run the app's on_response_prepare hooks
    (where aiohttp-cors and api/cors.py add their headers), without any network."""
    from aiohttp.test_utils import make_mocked_request

    app = make_app(with_cors)
    app.freeze()
    request = make_mocked_request("GET", "/v1/services", headers={"Origin": ORIGIN}, app=app)
    match_info = await app.router.resolve(request)
    match_info.add_app(app)
    request._match_info = match_info  # type: ignore[attr-defined]
    began = time.perf_counter()
    for _ in range(answers):
        response = web.Response(body=b"{}", content_type="application/json")
        await app.on_response_prepare.send(request, response)
    return (time.perf_counter() - began) / answers * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[bool, list[tuple[float, list[float]]]] = {False: [], True: []}
    for _ in range(args.rounds):
        for with_cors in (False, True):
            results[with_cors].append(asyncio.run(measure(with_cors, args.requests, args.clients)))
    print(f"{os.cpu_count()} cores; client and server share one event loop; {args.rounds} rounds x {args.requests} requests, {args.clients} clients")
    print(f"{'configuration':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    rates = {}
    for with_cors, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        every = sorted(latency for _, latencies in runs for latency in latencies)
        rates[with_cors] = rate
        name = "CORS on (listed Origin)" if with_cors else "no CORS (baseline)"
        print(f"{name:<28}{rate:>10.0f}{every[len(every) // 2] * 1000:>10.2f}{every[int(len(every) * 0.99)] * 1000:>10.2f}")
    extra_us = (1 / rates[True] - 1 / rates[False]) * 1e6
    print(f"ratio CORS / baseline: {rates[True] / rates[False]:.3f}; about {extra_us:.0f} µs more per request (of the whole loop's time)")
    plain = min(asyncio.run(hooks_alone(False)) for _ in range(args.rounds))
    cors = min(asyncio.run(hooks_alone(True)) for _ in range(args.rounds))
    print(f"hooks alone (best of {args.rounds}): {plain:.1f} µs per answer without CORS, {cors:.1f} µs with: {cors - plain:.1f} µs for CORS")


if __name__ == "__main__":
    main()
