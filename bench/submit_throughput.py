"""Throughput and latency of `POST /v1/service-requests` against a plain CRUD baseline.

    .venv/bin/python bench/submit_throughput.py [--clients 32] [--requests 5000] [--max-seconds 60] [--keep-db]

Both systems run against the same, freshly created PostgreSQL database (127.0.0.1:5432) and each
server runs in its own process(es), separate from this client process:

* baseline: a minimal aiohttp + asyncpg app (this script with ``--serve-baseline PORT DSN``):
  parse the JSON with orjson, check for a bearer header, INSERT one row into ``bench_baseline``
  (id uuid, body jsonb, created_at), answer 201 with a small JSON;
* OneStop: ``onestop migrate``, then ``onestop api`` and ``onestop projector``, exactly as deployed.

Both servers are started first; then each round measures the baseline and then OneStop (the other
server sits idle meanwhile), each after a warm-up that is not measured. ``--rounds N`` alternates
N times, which evens out noise from whatever else the machine runs; the ratio is over all rounds. Exit status: 0 when the bench ran (whatever the ratio), 1 when any request failed or a
server could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

TARGET_RATIO = 0.6
BASELINE_NAME = "baseline (aiohttp+asyncpg INSERT)"
ONESTOP_NAME = "OneStop POST /v1/service-requests"
NATIONAL_ID = "3100600445635"
BODY = {
    "service": "complaint",
    "organization": "MUN-SAENSUK",
    "channel": "web",
    "applicant": {"national_id": NATIONAL_ID, "name": "สมชาย ใจดี"},
    "details": {"subject": "ไฟถนนดับ", "description": "ไฟถนนหน้าบ้านดับ", "location": "ซอย 5"},
}
BASELINE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_baseline (
    id uuid PRIMARY KEY,
    body jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


# --- the baseline server (runs in its own process) ----------------------------------------


def onestop_pool_size() -> int:
    """The API's connection pool size (ONESTOP_POOL_SIZE as the bench passes it on, default 4):
    its event store writes through at most this many connections (its views read through as many)."""
    return int(os.environ.get("ONESTOP_POOL_SIZE", "4"))


def baseline_pool_size() -> int:
    """The baseline's pool: 8, and never smaller than OneStop's."""
    return max(8, onestop_pool_size())


def serve_baseline(port: int, dsn: str, pool_size: int) -> None:
    import asyncpg
    import orjson
    from aiohttp import web

    async def submit(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth) < 8:
            return web.Response(status=401, body=b'{"title":"Unauthorized"}', content_type="application/json")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.Response(status=400, body=b'{"title":"Malformed JSON"}', content_type="application/json")
        row_id = uuid.uuid4()
        async with request.app["pool"].acquire() as conn:
            await conn.execute("INSERT INTO bench_baseline (id, body) VALUES ($1, $2::jsonb)", row_id, orjson.dumps(body).decode())
        return web.Response(status=201, body=orjson.dumps({"id": str(row_id), "status": "submitted"}), content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=200, body=b'{"status":"up"}', content_type="application/json")

    async def make() -> web.Application:
        app = web.Application()
        app["pool"] = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size)
        app.router.add_post("/v1/service-requests", submit)
        app.router.add_get("/v1/health", health)

        async def close(app: web.Application) -> None:
            await app["pool"].close()

        app.on_cleanup.append(close)
        return app

    loop = None
    if os.environ.get("BENCH_BASELINE_LOOP") == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(make(), host="127.0.0.1", port=port, print=None, access_log=None, handle_signals=True, loop=loop)


# --- the bench ----------------------------------------------------------------------------

SUBMIT_LABELS = ('method="POST"', 'route="/v1/service-requests"')


async def scrape(metrics_url: str) -> dict[str, float]:
    """The submit figures of OneStop's ``GET /metrics``: the command bus's phase totals
    (``onestop_submit_*``) and the HTTP histogram's sum and count for the submit route."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(metrics_url) as resp:
            text = await resp.text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        base, _, labels = name.partition("{")
        if base.startswith("onestop_submit"):
            found[name] = float(value)
        elif base in ("onestop_http_request_duration_seconds_sum", "onestop_http_request_duration_seconds_count") \
                and sorted(labels.rstrip("}").split(",")) == list(SUBMIT_LABELS):
            found[base] = float(value)
    return found


@dataclass
class Profile:
    """Where OneStop's submits spent their time during measured phases (differences of /metrics)."""

    figures: dict[str, float]
    requests: int
    cpu: dict[str, float]  # CPU seconds per party during the measured phases
    client_latency: float  # sum of the client's latencies, seconds

    def add(self, other: "Profile") -> "Profile":
        keys = set(self.figures) | set(other.figures)
        cpu_keys = set(self.cpu) | set(other.cpu)
        return Profile({k: self.figures.get(k, 0.0) + other.figures.get(k, 0.0) for k in keys}, self.requests + other.requests,
                       {k: self.cpu.get(k, 0.0) + other.cpu.get(k, 0.0) for k in cpu_keys}, self.client_latency + other.client_latency)


def phase_profile(before: dict[str, float], after: dict[str, float], result: h.Result) -> Profile:
    cpu: dict[str, float] = {}
    if result.cpu is not None:
        cpu = dict(result.cpu.per_server)
        cpu["postgres"] = result.cpu.postgres
        cpu["client"] = result.cpu.client
    return Profile({k: after[k] - before.get(k, 0.0) for k in after}, result.requests, cpu, sum(result.latencies))


def print_profile(profile: Profile, baseline_cpu: dict[str, float], baseline_requests: int) -> None:
    f = profile.figures
    submits = f.get("onestop_submits_total", 0.0)
    if not submits:
        print("profile: the API published no submit figures (GET /metrics)")
        return
    ms = lambda seconds: 1000 * seconds / submits  # noqa: E731
    phase = lambda name: f.get(f'onestop_submit_phase_seconds_total{{phase="{name}"}}', 0.0)  # noqa: E731
    server = f.get("onestop_http_request_duration_seconds_sum", 0.0)
    server_count = f.get("onestop_http_request_duration_seconds_count", 0.0) or submits
    inside = sum(phase(p) for p in ("read", "queued", "handoff", "validate", "store", "respond"))
    batches = f.get("onestop_submit_batches_total", 0.0)
    print(f"where a submit's time goes (OneStop, all measured phases: {submits:.0f} submits in {batches:.0f} transactions, "
          f"{submits / batches if batches else 0:.1f} per transaction):")
    print("  wall time a submit spends, mean ms (from the API's GET /metrics: onestop_submit_* and the HTTP histogram):")
    rows = [
        ("client: send to whole answer read (the bench's latency)", 1000 * profile.client_latency / profile.requests if profile.requests else 0.0),
        ("  outside the API's middlewares (TCP, HTTP parsing and writing, event-loop queueing)",
         1000 * profile.client_latency / profile.requests - 1000 * server / server_count if profile.requests else 0.0),
        ("  API, first middleware in to response out (HTTP histogram)", 1000 * server / server_count),
        ("    middlewares and routing (metrics, problems, limits, identity, query checks)", ms(server * submits / server_count - inside)),
        ("    read: Idempotency-Key, body read, parsed to storable JSON, hashed", ms(phase("read"))),
        ("    queued: waiting for a worker thread to take it into a batch", ms(phase("queued"))),
        ("    hand-off: the batch's results from the worker thread back to the event loop", ms(phase("handoff"))),
        ("    validation: schema, catalogue and rules, the domain's decision, references (whole batch)", ms(phase("validate"))),
        ("    event store transaction: encode, encrypt, lock, INSERT, commit, describe (whole batch)", ms(phase("store"))),
        ("    respond: the 201's headers and JSON", ms(phase("respond"))),
    ]
    for label, value in rows:
        print(f"    {label:<100} {value:8.2f}")
    per_batch = lambda name: 1000 * f.get(f'onestop_submit_batch_seconds_total{{phase="{name}"}}', 0.0) / batches if batches else 0.0  # noqa: E731
    print(f"  per transaction, mean ms: validation {per_batch('validate'):.2f}, event store {per_batch('store'):.2f}")
    if profile.requests:
        parts = ", ".join(f"{name} {1000 * seconds / profile.requests:.2f}" for name, seconds in profile.cpu.items())
        line = f"  CPU per submit, ms (from /proc; postgres includes the projector's writes): {parts}"
        line += f"; total {1000 * sum(profile.cpu.values()) / profile.requests:.2f}"
        print(line)
    if baseline_requests:
        parts = ", ".join(f"{name} {1000 * seconds / baseline_requests:.2f}" for name, seconds in baseline_cpu.items())
        print(f"  CPU per insert of the baseline, ms: {parts}; total {1000 * sum(baseline_cpu.values()) / baseline_requests:.2f}")


def onestop_command() -> str:
    candidate = Path(sys.executable).parent / "onestop"
    if candidate.exists():
        return str(candidate)
    fallback = h.REPO / ".venv" / "bin" / "onestop"
    if fallback.exists():
        return str(fallback)
    sys.exit("bench: cannot find the `onestop` console script; run `.venv/bin/pip install -e '.[test]'`")


def body_bytes() -> bytes:
    import orjson

    return orjson.dumps(BODY)


async def measure(name: str, url: str, token: str, args: argparse.Namespace, server_pids: dict[str, int],
                  after_warmup: Callable[[], Awaitable[None]] | None = None) -> h.Result:
    def headers() -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}

    body = body_bytes()
    if args.warmup:
        warm = await h.run_load(name, url, headers, body, clients=args.clients, requests=args.warmup, max_seconds=args.max_seconds)
        if warm.error_count:
            warm.system += " (warm-up)"
            return warm
    if after_warmup is not None:
        await after_warmup()
    return await h.run_load(name, url, headers, body, clients=args.clients, requests=args.requests,
                            max_seconds=args.max_seconds, server_pids=server_pids)


def result_cpu(result: h.Result) -> dict[str, float]:
    if result.cpu is None:
        return {}
    return {**result.cpu.per_server, "postgres": result.cpu.postgres, "client": result.cpu.client}


@dataclass
class System:
    name: str
    url: str
    token: str
    children: list[h.Child]
    jwt_secret: str = ""  # OneStop's: for a bench that mints tokens of its own

    @property
    def pids(self) -> dict[str, int]:
        return {c.name.removeprefix("onestop-"): c.proc.pid for c in self.children}

    def check_alive(self) -> None:
        for child in self.children:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode} during the run:\n{child.tail()}")


async def start_baseline(dsn: str, log_dir: Path, started: list[h.Child], loop: str) -> System:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(BASELINE_TABLE)
    finally:
        await conn.close()
    port = h.free_port()
    pool = baseline_pool_size()
    env = {**os.environ, "BENCH_BASELINE_LOOP": loop}
    child = h.start_child("baseline", [sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(port), dsn, str(pool)], env, log_dir)
    started.append(child)
    await h.wait_http_ok(f"http://127.0.0.1:{port}/v1/health", [child])
    print(f"  baseline: up; pid {child.proc.pid}, http://127.0.0.1:{port}; pool of {pool} connections "
          f"(OneStop's API: ONESTOP_POOL_SIZE={onestop_pool_size()} for its event store); {loop}'s event loop "
          f"(OneStop's API: uvloop's when installed)", flush=True)
    return System(BASELINE_NAME, f"http://127.0.0.1:{port}/v1/service-requests", "not-checked-by-the-baseline", [child])


async def start_onestop(dbname: str, log_dir: Path, started: list[h.Child]) -> System:
    port = h.free_port()
    env = dict(os.environ)
    env.update({
        "ONESTOP_DATABASE_URL": h.db_dsn(dbname),
        "ONESTOP_JWT_SECRET": (jwt_secret := secrets.token_urlsafe(48)), **h.KEY_ENV,
        "ONESTOP_DEV_TOKENS": "1",
        "ONESTOP_SECRETS_KEY": secrets.token_urlsafe(32),
        "ONESTOP_PORT": str(port),
        "ONESTOP_HOST": "127.0.0.1",
    })
    exe = onestop_command()
    t0 = time.perf_counter()
    migrate = subprocess.run([exe, "migrate"], env=env, cwd=h.REPO, capture_output=True, text=True)
    if migrate.returncode != 0:
        raise RuntimeError(f"onestop migrate failed ({migrate.returncode}):\n{migrate.stdout}{migrate.stderr}")
    token_run = subprocess.run([exe, "token", "--role", "citizen", "--sub", NATIONAL_ID], env=env, cwd=h.REPO, capture_output=True, text=True)
    if token_run.returncode != 0:
        raise RuntimeError(f"onestop token failed ({token_run.returncode}):\n{token_run.stderr}")
    token = token_run.stdout.strip().splitlines()[-1]
    children = [h.start_child("onestop-api", [exe, "api"], env, log_dir), h.start_child("onestop-projector", [exe, "projector"], env, log_dir)]
    started.extend(children)
    await h.wait_http_ok(f"http://127.0.0.1:{port}/v1/health", children)
    print(f"  onestop: migrated and up in {time.perf_counter() - t0:.1f}s; api pid {children[0].proc.pid}, "
          f"projector pid {children[1].proc.pid}, http://127.0.0.1:{port}", flush=True)
    return System(ONESTOP_NAME, f"http://127.0.0.1:{port}/v1/service-requests", token, children, jwt_secret)


async def report_stored(dsn: str, onestop: System) -> None:
    """Not part of the measurement: what the table, the log and the views hold afterwards."""
    import aiohttp
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM bench_baseline")
    finally:
        await conn.close()
    health_url = onestop.url.replace("/v1/service-requests", "/v1/health")
    async with aiohttp.ClientSession() as session:
        async with session.get(health_url) as resp:
            database = (await resp.json()).get("dependencies", {}).get("database", {})
    print(f"  stored: {rows} rows in bench_baseline; OneStop log_position {database.get('log_position')}, "
          f"views_position {database.get('views_position')} (views lag {database.get('views_lag')} right after the run)", flush=True)


async def main_async(args: argparse.Namespace) -> int:
    dbname = await h.create_database("onestop_bench")
    dsn = h.db_dsn(dbname)
    rounds: list[tuple[h.Result, h.Result]] = []
    profile: Profile | None = None
    measured: list[h.Result] = []
    started: list[h.Child] = []
    status = 0
    with tempfile.TemporaryDirectory(prefix="onestop-bench-") as tmp:
        log_dir = Path(args.log_dir) if args.log_dir else Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            print(f"POST /v1/service-requests: {args.clients} concurrent clients; per system and round a warm-up of {args.warmup} "
                  f"requests (not measured), then up to {args.requests} requests or {args.max_seconds:.0f}s; {args.rounds} round(s), "
                  f"baseline then OneStop", flush=True)
            print(h.machine_line(f"the client (this process), the server processes and PostgreSQL {await h.server_version()} at 127.0.0.1:5432"), flush=True)
            print(f"database: {dbname}", flush=True)
            baseline = await start_baseline(dsn, log_dir, started, args.baseline_loop)
            onestop = await start_onestop(dbname, log_dir, started)
            metrics_url = onestop.url.replace("/v1/service-requests", "/metrics")
            for n in range(1, args.rounds + 1):
                pair = []
                for system in (baseline, onestop):
                    before: dict[str, float] = {}

                    async def after_warmup() -> None:
                        before.update(await scrape(metrics_url))

                    result = await measure(system.name, system.url, system.token, args, system.pids,
                                           after_warmup if system is onestop else None)
                    if system is onestop and not result.error_count:
                        measured_profile = phase_profile(before, await scrape(metrics_url), result)
                        profile = measured_profile if profile is None else profile.add(measured_profile)
                    system.check_alive()
                    if args.rounds > 1:
                        result.system += f" #{n}"
                    pair.append(result)
                    measured.append(result)
                    if result.error_count:
                        raise RuntimeError(f"{result.system}: {result.error_count} requests did not answer 201")
                rounds.append((pair[0], pair[1]))
                if args.rounds > 1:
                    print(f"  round {n}: baseline {pair[0].rps:.1f}/s, OneStop {pair[1].rps:.1f}/s, ratio {pair[1].rps / pair[0].rps:.2f}", flush=True)
            await report_stored(dsn, onestop)
        except Exception as error:
            h.report_failure(error, started)
            status = 1
        finally:
            h.stop_children(started)
            await h.drop_or_keep(dbname, dsn, args.keep_db)

    results = measured
    if not results:
        return status
    print()
    if args.rounds > 1 and rounds:
        results = results + [h.combine(BASELINE_NAME + " (all)", [b for b, _ in rounds]), h.combine(ONESTOP_NAME + " (all)", [o for _, o in rounds])]
    h.print_table(results)
    print()
    if status == 0 and rounds:
        baseline_all = h.combine(BASELINE_NAME, [b for b, _ in rounds])
        onestop_all = h.combine(ONESTOP_NAME, [o for _, o in rounds])
        ratio = onestop_all.rps / baseline_all.rps if baseline_all.rps else 0.0
        verdict = "PASS" if ratio >= args.target else "FAIL"
        if args.rounds > 1:
            per_round = sorted(o.rps / b.rps for b, o in rounds)
            print(f"per-round ratios: {', '.join(f'{r:.2f}' for r in per_round)} (median {statistics.median(per_round):.2f})")
        print(f"ratio OneStop / baseline throughput: {onestop_all.rps:.1f} / {baseline_all.rps:.1f} = {ratio:.2f} "
              f"(target >= {args.target:.2f}): {verdict}")
    if status == 0 and rounds and profile is not None:
        print()
        baseline_cpu: dict[str, float] = {}
        for b, _ in rounds:
            for k, v in result_cpu(b).items():
                baseline_cpu[k] = baseline_cpu.get(k, 0.0) + v
        print_profile(profile, baseline_cpu, sum(b.requests for b, _ in rounds))
    if any(r.error_count for r in measured):
        h.print_errors(measured)
        print("bench: FAILED: some requests did not answer 201 (see ERROR lines above); no ratio reported", file=sys.stderr)
        status = 1
    return status


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "--serve-baseline":
        if len(sys.argv) not in (4, 5):
            sys.exit("usage: submit_throughput.py --serve-baseline PORT DSN [POOL_SIZE]")
        serve_baseline(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else baseline_pool_size())
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--requests", type=int, default=5000, help="measured requests per system (default 5000)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="cap on the measured phase per system (default 60)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests before each measured phase (default 200)")
    parser.add_argument("--target", type=float, default=TARGET_RATIO, help="OneStop/baseline throughput ratio to PASS (default 0.6)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate baseline/OneStop this many times; the ratio is over all rounds (default 1)")
    parser.add_argument("--baseline-loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the baseline's event loop (default asyncio's, as a plain aiohttp app has)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database at the end")
    parser.add_argument("--log-dir", help="keep the servers' logs here (default: a temporary directory)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
