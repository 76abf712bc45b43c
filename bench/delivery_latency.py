"""Commit-to-delivery latency of the live stream (SSE) and of webhooks under a steady write load.

    .venv/bin/python bench/delivery_latency.py [--rate 100] [--seconds 20] [--broker amqp://guest:guest@127.0.0.1:5672] [--keep-db]

Through the real entry points, each its own process, on a fresh database (127.0.0.1:5432,
dropped at the end unless --keep-db): `onestop migrate`, `onestop api`, `onestop projector` (it
publishes the feed) and `onestop webhooks` (the dispatcher; without --broker it delivers on its
in-process broker, with --broker it enqueues to RabbitMQ and a worker process, this script with
``--serve-worker``, delivers).

In this process: a webhook receiver (aiohttp on 127.0.0.1, answers 204) subscribed to every
type; an SSE client on `/v1/streams/events/live`; and a writer that files ``--rate`` requests a
second for ``--seconds`` (`POST /v1/service-requests`, citizen token; each writes two events in
one transaction). An event's latency is the time it reached the receiver (or the SSE client)
minus the time the writer had the 201 for it: the commit happened before the 201 left the
server, so this slightly overstates the real commit-to-delivery time, never understates it.
All times are this process's ``time.perf_counter()``.

Output: p50, p99 and max per channel, and how many events each got (it must be all of them).
Exit 0 when it ran and nothing was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

BODY = {
    "service": "complaint", "organization": "MUN-SAENSUK", "channel": "web",
    "applicant": {"national_id": "3100600445635", "name": "สมชาย ใจดี"},
    "details": {"subject": "ไฟถนนดับ", "description": "ไฟถนนหน้าบ้านดับ", "location": "ซอย 5"},
}


def serve_worker(url: str, dsn: str) -> None:
    """A Dramatiq worker for webhook deliveries only (the jobs worker needs outside systems)."""
    import threading

    import dramatiq

    from workers.broker import setup_broker

    broker = setup_broker(url)
    import workers.webhooks as webhook_actors
    from infrastructure.integrations.delivery import WebhookSettings
    from infrastructure.secret_box import parse_key

    from onestop.webhooks_process import webhook_agents

    webhook_actors.declare(broker)
    webhook_actors.configure(webhook_agents(dsn, WebhookSettings(allow_private=True, secrets_key=parse_key(os.environ["ONESTOP_SECRETS_KEY"]))))
    worker = dramatiq.Worker(broker, queues={webhook_actors.QUEUE}, worker_threads=8)
    worker.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    worker.stop(timeout=10_000)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * p // 100) - 1)] if ordered else float("nan")  # nearest rank


async def main_async(args: argparse.Namespace) -> int:
    import aiohttp
    import orjson
    from aiohttp import web

    dbname = await h.create_database("onestop_lbench")
    dsn = h.db_dsn(dbname)
    port = h.free_port()
    env = {**os.environ, "ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": secrets.token_urlsafe(32), "ONESTOP_DEV_TOKENS": "1", **h.KEY_ENV, "ONESTOP_PORT": str(port),
           "ONESTOP_SECRETS_KEY": secrets.token_urlsafe(32),
           "ONESTOP_HOST": "127.0.0.1", "ONESTOP_LOG_LEVEL": "WARNING", "ONESTOP_WEBHOOKS_ALLOW_PRIVATE": "1"}
    env.pop("ONESTOP_BROKER_URL", None)
    if args.broker:
        env["ONESTOP_BROKER_URL"] = args.broker
    exe = h.onestop_command()
    children: list[h.Child] = []
    committed: dict[str, float] = {}  # request id -> when its 201 arrived
    delivered: dict[str, dict[str, float]] = {"webhook": {}, "sse": {}}  # event id -> when it arrived
    subject_of: dict[str, str] = {}
    duplicates = {"webhook": 0, "sse": 0}

    def arrived(channel: str, body: bytes) -> None:
        at = time.perf_counter()
        event = orjson.loads(body)
        if event["id"] in delivered[channel]:
            duplicates[channel] += 1
            return
        delivered[channel][event["id"]] = at
        subject_of[event["id"]] = event["subject"]

    async def receive(request: web.Request) -> web.Response:
        arrived("webhook", await request.read())
        return web.Response(status=204)

    receiver_app = web.Application()
    receiver_app.router.add_post("/hook", receive)
    runner = web.AppRunner(receiver_app)
    await runner.setup()
    receiver_port = h.free_port()
    await web.TCPSite(runner, "127.0.0.1", receiver_port).start()
    status = 0
    with tempfile.TemporaryDirectory(prefix="onestop-lbench-") as tmp:
        try:
            print(f"machine: {os.cpu_count()} cores shared by every process here and PostgreSQL {await h.server_version()}; "
                  f"Python {platform.python_version()}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
            subprocess.run([exe, "migrate"], env=env, check=True, capture_output=True)
            for name, argv in (("api", [exe, "api"]), ("projector", [exe, "projector"]), ("webhooks", [exe, "webhooks"])):
                children.append(h.start_child(name, argv, env, Path(tmp)))
            if args.broker:
                children.append(h.start_child("worker", [sys.executable, __file__, "--serve-worker", args.broker, dsn], env, Path(tmp)))
            base = f"http://127.0.0.1:{port}"
            await h.wait_http_ok(f"{base}/v1/health", children)

            def token(role: str, sub: str) -> str:
                return subprocess.run([exe, "token", "--role", role, "--sub", sub], env=env, check=True, capture_output=True, text=True).stdout.strip()

            integrator = {"Authorization": f"Bearer {token('integrator', 'bench')}"}
            citizen = {"Authorization": f"Bearer {token('citizen', '3100600445635')}"}
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{base}/v1/subscriptions", json={"url": f"http://127.0.0.1:{receiver_port}/hook"},
                                        headers={**integrator, "Idempotency-Key": str(uuid.uuid4())}) as response:
                    if response.status != 201:
                        raise RuntimeError(f"subscribe: {response.status} {await response.text()}")
                sse = await session.get(f"{base}/v1/streams/events/live", headers=integrator, timeout=aiohttp.ClientTimeout(total=None))

                async def read_sse() -> None:
                    async for line in sse.content:
                        if line.startswith(b"data: "):
                            arrived("sse", line[6:].rstrip(b"\n"))

                reader = asyncio.create_task(read_sse())
                errors: list[str] = []

                async def submit() -> None:
                    async with session.post(f"{base}/v1/service-requests", json=BODY,
                                            headers={**citizen, "Idempotency-Key": str(uuid.uuid4())}) as response:
                        body = await response.read()
                        if response.status != 201:
                            errors.append(f"{response.status} {body[:200]!r}")
                            return
                        committed[orjson.loads(body)["id"]] = time.perf_counter()

                print(f"writing {args.rate} requests/s for {args.seconds:.0f}s ({2 * args.rate} events/s)...", flush=True)
                started = time.perf_counter()
                tasks = []
                for n in range(int(args.rate * args.seconds)):
                    await asyncio.sleep(max(0.0, started + n / args.rate - time.perf_counter()))
                    tasks.append(asyncio.create_task(submit()))
                await asyncio.gather(*tasks)
                if errors:
                    raise RuntimeError(f"{len(errors)} submissions failed, e.g. {errors[0]}")
                expected = 2 * len(committed)
                deadline = time.perf_counter() + 60
                while time.perf_counter() < deadline and min(len(d) for d in delivered.values()) < expected:
                    await asyncio.sleep(0.1)
                reader.cancel()
                sse.close()
            print()
            print(f"{'channel':<10} {'events':>8} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'duplicates':>11}")
            for channel, arrivals in delivered.items():
                latencies = [(at - committed[subject_of[event_id]]) * 1000 for event_id, at in arrivals.items() if subject_of[event_id] in committed]
                print(f"{channel:<10} {len(latencies):>8} {percentile(latencies, 50):>9.1f} {percentile(latencies, 99):>9.1f} "
                      f"{max(latencies, default=float('nan')):>9.1f} {duplicates[channel]:>11}")
                if len(latencies) != expected:
                    print(f"bench: {channel} got {len(latencies)} of {expected} events", file=sys.stderr)
                    status = 1
            print(f"(latency: arrival at the client minus the 201 of the write that committed the event; "
                  f"{'RabbitMQ ' + args.broker if args.broker else 'in-process broker'} for webhooks)")
        except Exception as error:
            h.report_failure(error, children)
            status = 1
        finally:
            h.stop_children(children)
            await runner.cleanup()
            await h.drop_or_keep(dbname, dsn, args.keep_db)
    return status


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-worker":
        serve_worker(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests filed per second (default 100: 200 events/s)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the load lasts (default 20)")
    parser.add_argument("--broker", help="deliver webhooks through this RabbitMQ (amqp://...) instead of in-process")
    parser.add_argument("--keep-db", action="store_true")
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
