"""Registry verifications per second through OneStop, against the registry simulator's own rate.

    .venv/bin/python bench/verification_throughput.py [--requests 2000] [--clients 32] [--worker-threads 32]
        [--workers 1] [--registry-latency-ms 50] [--keep-db] [--log-dir DIR]

The whole stack runs through its real entry points, each its own process, against a fresh
PostgreSQL database (127.0.0.1:5432) and the machine's RabbitMQ (127.0.0.1:5672, queue
``onestop-jobs``, purged at the start and at the end): ``onestop migrate``, ``onestop simulate
registry --latency-ms 50 --no-access-log``, ``onestop simulate bank --no-access-log``, ``onestop
api``, ``onestop projector``, ``onestop dispatcher`` and ``onestop worker`` (``--workers`` of them).

1. Baseline (the ceiling): this process sends ``--requests`` ``POST /verifications`` straight to
   the registry simulator from an aiohttp client, with as many in flight as OneStop's workers can
   have (``--workers`` x ``--worker-threads``, unless ``--baseline-concurrency``).
2. OneStop: ``--clients`` citizens' clients file ``--requests`` ``civil.address-change`` requests
   (201, status ``verifying``) as fast as they can; the dispatcher enqueues a job per request
   (several jobs a message), a worker calls ``POST /verifications`` and ``GET /houses/{id}``
   together and records the answer, and the request becomes
   ``in_review``. verifications/s = requests that reached ``in_review`` (or ``rejected``) / (time
   of the last ``ReviewStarted`` event - time of the first submit). Latency per request comes from
   the event log: ``Submitted`` -> ``ReviewStarted`` timestamps, both by the server clock.

Exit status 0 when the bench ran to the end (whatever the verdict), 1 when it could not.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

TARGET_PER_SECOND = 300.0
SERVICE = "civil.address-change"


# --- small helpers --------------------------------------------------------------------------


from _jobs_measure import (  # noqa: E402
    Cpu, PostgresPids, Timeline, count_finished, log_problems, make_token, ms, pct, purge_queue, queue_counts, rabbit_pids,
    read_timeline, registry_calls,
)
from _jobs_measure import BROKER_URL, QUEUE # noqa: E402,F401

onestop_command = h.onestop_command


@dataclass
class Stack:
    env: dict[str, str]
    api: str
    registry: str
    secret: str
    pg: PostgresPids
    children: list[h.Child] = field(default_factory=list)

    @property
    def pids(self) -> dict[str, int]:
        return {c.name: c.proc.pid for c in self.children}

    def check_alive(self) -> None:
        for child in self.children:
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.proc.returncode} during the run:\n{child.tail()}")


async def wait_log(child: h.Child, pattern: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode} while starting:\n{child.tail()}")
        try:
            if pattern in child.log_path.read_text(encoding="utf-8", errors="replace"):
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{child.name} did not print {pattern!r} within {timeout:.0f}s:\n{child.tail()}")


async def start_stack(dbname: str, args: argparse.Namespace, log_dir: Path, started: list[h.Child]) -> Stack:
    exe = onestop_command()
    api_port, registry_port, bank_port = h.free_port(), h.free_port(), h.free_port()
    secret = secrets.token_urlsafe(48)
    env = dict(os.environ)
    env.update({
        "ONESTOP_DATABASE_URL": h.db_dsn(dbname),
        "ONESTOP_JWT_SECRET": secret, **h.KEY_ENV,
        # The API and the workers keep webhook secrets sealed with it (required since they do).
        "ONESTOP_SECRETS_KEY": base64.b64encode(os.urandom(32)).decode(),
        "ONESTOP_DEV_TOKENS": "1",
        "ONESTOP_HOST": "127.0.0.1",
        "ONESTOP_PORT": str(api_port),
        "ONESTOP_BROKER_URL": BROKER_URL,
        "ONESTOP_REGISTRY_URL": f"http://127.0.0.1:{registry_port}",
        "ONESTOP_BANK_URL": f"http://127.0.0.1:{bank_port}",
        "ONESTOP_BANK_CALLBACK_SECRET": secrets.token_urlsafe(32),
        "ONESTOP_WORKER_THREADS": str(args.worker_threads),
        "ONESTOP_JOBS_QUEUE": args.queue,
    })
    stack = Stack(env, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{registry_port}", secret, PostgresPids(dbname), started)
    t0 = time.perf_counter()
    migrate = subprocess.run([exe, "migrate"], env=env, cwd=h.REPO, capture_output=True, text=True)
    if migrate.returncode != 0:
        raise RuntimeError(f"onestop migrate failed ({migrate.returncode}):\n{migrate.stdout}{migrate.stderr}")
    sims = [
        h.start_child("registry-sim", [exe, "simulate", "registry", "--host", "127.0.0.1", "--port", str(registry_port),
                                       "--latency-ms", str(args.registry_latency_ms),
                                       *([] if args.registry_access_log else ["--no-access-log"])], env, log_dir),
        h.start_child("bank-sim", [exe, "simulate", "bank", "--host", "127.0.0.1", "--port", str(bank_port),
                                   "--callback-url", f"{stack.api}/v1/payment-notifications/sim-bank", "--no-access-log"], env, log_dir),
    ]
    started.extend(sims)
    await h.wait_http_ok(f"{stack.registry}/health", sims)
    await h.wait_http_ok(f"http://127.0.0.1:{bank_port}/health", sims)
    api = h.start_child("api", [exe, "api"], env, log_dir)
    projector = h.start_child("projector", [exe, "projector"], env, log_dir)
    dispatcher = h.start_child("dispatcher", [exe, "dispatcher"], env, log_dir)
    workers = [h.start_child(f"worker{i + 1}" if args.workers > 1 else "worker", [exe, "worker"], env, log_dir) for i in range(args.workers)]
    started.extend([api, projector, dispatcher, *workers])
    await h.wait_http_ok(f"{stack.api}/v1/health", started)
    await wait_log(dispatcher, "dispatcher following the event log")
    for worker in workers:
        await wait_log(worker, "worker running")
    print(f"  stack up in {time.perf_counter() - t0:.1f}s: " + ", ".join(f"{c.name} pid {c.proc.pid}" for c in started), flush=True)
    print(f"  api {stack.api}, registry simulator {stack.registry} (latency {args.registry_latency_ms} ms), "
          f"bank simulator http://127.0.0.1:{bank_port}", flush=True)
    return stack


# --- choosing applicants ---------------------------------------------------------------------


async def plan_requests(stack: Stack, n: int) -> tuple[list[tuple[str, dict[str, str], bytes]], dict[str, Any]]:
    """``n`` (national ID, headers, body) triples: living people of organisations that offer the
    service, each moving to another house of the same organisation; people are reused."""
    import aiohttp
    import orjson

    async with aiohttp.ClientSession() as session:
        async def get(url: str) -> Any:
            async with session.get(url) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"GET {url}: {resp.status} {(await resp.text())[:200]}")
                return await resp.json()

        service = await get(f"{stack.api}/v1/services/{SERVICE}")
        kinds = set(service["offered_by"])
        orgs = {o["code"] for o in (await get(f"{stack.api}/v1/organizations"))["items"] if o["kind"] in kinds}
        people = [p for p in (await get(f"{stack.registry}/people?limit=1000&alive=true"))["items"] if p["organization"] in orgs]
        houses: dict[str, list[str]] = {}
        for org in sorted({p["organization"] for p in people}):
            houses[org] = [x["house_id"] for x in (await get(f"{stack.registry}/houses?limit=1000&organization={org}"))["items"]]
    people = [p for p in people if any(hid != p["house_id"] for hid in houses.get(p["organization"], []))]
    if not people:
        raise RuntimeError("the registry simulator has no living person in an organisation that offers " + SERVICE)
    tokens = {p["national_id"]: make_token(stack.secret, p["national_id"], "citizen") for p in people}
    plan = []
    for i in range(n):
        person = people[i % len(people)]
        choices = [hid for hid in houses[person["organization"]] if hid != person["house_id"]]
        body = {
            "service": SERVICE, "organization": person["organization"], "channel": "web",
            "applicant": {"national_id": person["national_id"], "name": f"{person['first_name_th']} {person['last_name_th']}"},
            "details": {"to_house_id": choices[i % len(choices)]},
        }
        headers = {"Authorization": f"Bearer {tokens[person['national_id']]}", "Idempotency-Key": str(uuid.uuid4()),
                   "Content-Type": "application/json"}
        plan.append((person["national_id"], headers, orjson.dumps(body)))
    info = {"people": len(people), "organizations": len({p["organization"] for p in people}), "offered_by": sorted(kinds)}
    return plan, info


# --- baseline: the registry simulator alone ---------------------------------------------------


@dataclass
class Load:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)
    cpu: tuple[dict[str, float], float, float] | None = None


async def closed_loop(url: str, items: list[tuple[dict[str, str], bytes]], concurrency: int, expect: int,
                      on_answer: Any = None) -> Load:
    import aiohttp

    load = Load()
    queue = iter(enumerate(items))
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        started = time.perf_counter()

        async def worker() -> None:
            for index, (headers, body) in queue:
                sent_wall, t0 = time.time(), time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        payload, status = await resp.read(), resp.status
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                    payload, status = repr(error).encode(), type(error).__name__
                load.latencies.append(time.perf_counter() - t0)
                load.statuses[str(status)] += 1
                if status != expect:
                    load.samples.setdefault(str(status), payload[:300].decode("utf-8", "replace"))
                if on_answer is not None:
                    on_answer(index, sent_wall, time.time(), status, payload)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        load.seconds = time.perf_counter() - started
    return load


async def measure_baseline(stack: Stack, nids: list[str], args: argparse.Namespace, concurrency: int) -> Load:
    import orjson

    def items(count: int) -> list[tuple[dict[str, str], bytes]]:
        return [({"Idempotency-Key": f"bench-{uuid.uuid4()}", "Content-Type": "application/json"},
                 orjson.dumps({"national_id": nids[i % len(nids)]})) for i in range(count)]

    url = f"{stack.registry}/verifications"
    if args.warmup:
        await closed_loop(url, items(args.warmup), concurrency, 200)
    measured = items(args.requests)
    rabbit = rabbit_pids()
    before = Cpu.take(stack.pids, rabbit, stack.pg)
    load = await closed_loop(url, measured, concurrency, 200)
    load.cpu = Cpu.take(stack.pids, rabbit, stack.pg).percent_since(before)
    return load


# --- OneStop ---------------------------------------------------------------------------------


async def registry_stats(session: Any, stack: Stack) -> dict[str, Any]:
    async with session.get(f"{stack.registry}/admin/stats") as resp:
        return await resp.json()


async def sampler(stack: Stack, state: dict[str, Any], every: float, stop: asyncio.Event) -> None:
    """Print a progress line every ``every`` seconds: submits, verifications, CPU per process."""
    import aiohttp

    rabbit = rabbit_pids()
    names = list(stack.pids)
    short = {"registry-sim": "reg", "bank-sim": "bank", "api": "api", "projector": "proj", "dispatcher": "disp",
             "postgres": "pg", "rabbitmq": "mq", "client": "client"}
    header = (f"  {'t s':>5} {'submitted':>9} {'verified':>8} {'/s now':>7}   CPU % over the interval: "
              + " ".join(short.get(n, n.replace("worker", "wk")) for n in [*names, "postgres", "rabbitmq", "client"]) + " | other machine")
    print(header, flush=True)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        last_cpu, last_verified = Cpu.take(stack.pids, rabbit, stack.pg), 0
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
            except asyncio.TimeoutError:
                pass
            if stop.is_set() and time.perf_counter() - last_cpu.at < 0.5 * every:
                break  # a sliver of an interval at the end says nothing
            cpu = Cpu.take(stack.pids, rabbit, stack.pg)
            try:
                verified = int((await registry_stats(session, stack)).get("effects", {}).get("verification", 0))
            except (aiohttp.ClientError, asyncio.TimeoutError):
                verified = last_verified
            parts, other, machine = cpu.percent_since(last_cpu)
            rate = (verified - last_verified) / max(1e-9, cpu.at - last_cpu.at)
            state["series"].append((time.perf_counter() - state["t0"], verified, parts, machine))
            cols = " ".join(f"{parts.get(n, 0):.0f}" for n in [*names, "postgres", "rabbitmq", "client"])
            print(f"  {time.perf_counter() - state['t0']:>5.1f} {state['submitted']:>9} {verified:>8} {rate:>7.0f}   {cols} | {other:.0f} {machine:.0f}",
                  flush=True)
            last_cpu, last_verified = cpu, verified


@dataclass
class Run:
    submit: Load
    first_submit_wall: float
    ids: dict[str, tuple[float, float]]  # request id -> (submit sent, submit answered) wall clock
    completed: bool
    wall_seconds: float
    cpu: tuple[dict[str, float], float, float]
    series: list[Any]


async def run_onestop(stack: Stack, dsn: str, plan: list[tuple[str, dict[str, str], bytes]], args: argparse.Namespace) -> Run:
    import aiohttp
    import orjson

    rabbit = rabbit_pids()
    ids: dict[str, tuple[float, float]] = {}
    state: dict[str, Any] = {"submitted": 0, "series": [], "t0": time.perf_counter()}

    def on_answer(index: int, sent: float, answered: float, status: Any, payload: bytes) -> None:
        state["submitted"] += 1
        if status == 201:
            body = orjson.loads(payload)
            ids[body["id"]] = (sent, answered)
            if body.get("status") != "verifying":
                state.setdefault("unexpected_status", Counter())[body.get("status")] += 1

    stop = asyncio.Event()
    before = Cpu.take(stack.pids, rabbit, stack.pg)
    first_wall = time.time()
    state["t0"] = time.perf_counter()
    progress = asyncio.create_task(sampler(stack, state, args.progress_seconds, stop))
    submit = await closed_loop(f"{stack.api}/v1/service-requests", [(hd, b) for _, hd, b in plan], args.clients, 201, on_answer)
    print(f"  all {len(plan)} submits answered after {submit.seconds:.2f}s ({len(plan) / submit.seconds:.0f}/s; "
          f"{submit.statuses.get('201', 0)} x 201)", flush=True)
    expected = len(ids)
    completed = False
    last_change, last_seen = time.perf_counter(), -1
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            stack.check_alive()
            verified = int((await registry_stats(session, stack)).get("effects", {}).get("verification", 0))
            if verified != last_seen:
                last_seen, last_change = verified, time.perf_counter()
            if verified >= expected and await count_finished(dsn) >= expected:
                completed = True
                break
            now = time.perf_counter()
            if now - state["t0"] > args.max_seconds:
                print(f"  giving up: not finished after {args.max_seconds:.0f}s", flush=True)
                break
            if now - last_change > args.stall_seconds:
                print(f"  giving up: no new verification for {args.stall_seconds:.0f}s", flush=True)
                break
            await asyncio.sleep(0.1)
    wall = time.perf_counter() - state["t0"]
    cpu = Cpu.take(stack.pids, rabbit, stack.pg).percent_since(before)
    stop.set()
    await progress
    if state.get("unexpected_status"):
        print(f"  submit answers with a status other than verifying: {dict(state['unexpected_status'])}", flush=True)
    return Run(submit, first_wall, ids, completed, wall, cpu, state["series"])


async def api_check(stack: Stack, expected_ids: set[str]) -> dict[str, Any]:
    """After the run, through the API as an admin: the views caught up, then page through
    ``status=in_review`` and count ``verifying``."""
    import aiohttp

    admin = {"Authorization": f"Bearer {make_token(stack.secret, 'bench-admin', 'admin')}"}
    result: dict[str, Any] = {}
    async with aiohttp.ClientSession(headers=admin, timeout=aiohttp.ClientTimeout(total=30)) as session:
        deadline = time.monotonic() + 60
        while True:
            async with session.get(f"{stack.api}/v1/health") as resp:
                db = (await resp.json()).get("dependencies", {}).get("database", {})
            if db.get("views_lag") == 0 or time.monotonic() > deadline:
                result["views_lag"] = db.get("views_lag")
                result["log_position"] = db.get("log_position")
                break
            await asyncio.sleep(0.2)
        for status in ("in_review", "verifying", "rejected"):
            seen: set[str] = set()
            cursor = None
            while True:
                url = f"{stack.api}/v1/service-requests?status={status}&limit=100" + (f"&cursor={cursor}" if cursor else "")
                async with session.get(url) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"GET {url}: {resp.status} {(await resp.text())[:200]}")
                    page = await resp.json()
                seen.update(item["id"] for item in page["items"])
                cursor = page.get("next_cursor")
                if not cursor:
                    break
            result[status] = len(seen & expected_ids)
    return result


async def main_async(args: argparse.Namespace) -> int:
    import aiohttp

    dbname = await h.create_database("onestop_vbench")
    dsn = h.db_dsn(dbname)
    started: list[h.Child] = []
    stack: Stack | None = None
    status = 0
    concurrency = args.baseline_concurrency or args.workers * args.worker_threads
    with tempfile.TemporaryDirectory(prefix="onestop-vbench-") as tmp:
        log_dir = Path(args.log_dir) if args.log_dir else Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            print(f"registry verifications through OneStop: {args.requests} {SERVICE} requests from {args.clients} concurrent clients; "
                  f"registry simulator latency {args.registry_latency_ms} ms; {args.workers} worker process(es) x "
                  f"{args.worker_threads} threads (ONESTOP_WORKER_THREADS); baseline: {args.requests} POST /verifications straight "
                  f"to the simulator, {concurrency} in flight", flush=True)
            print(h.machine_line(f"this client, every OneStop process, the simulators, PostgreSQL {await h.server_version()} and RabbitMQ"), flush=True)
            print(f"database: {dbname}", flush=True)
            found = await asyncio.to_thread(purge_queue, args.queue)
            print("  RabbitMQ purged: " + ", ".join(f"{q} ({m} messages, {c} consumers)" for q, (m, c) in found.items()), flush=True)
            if found[args.queue][1]:
                print(f"  WARNING: {found[args.queue][1]} consumer(s) of {args.queue} are already attached (someone else's worker?); "
                      "they may take this bench's jobs", flush=True)
            stack = await start_stack(dbname, args, log_dir, started)
            messages, consumers = await asyncio.to_thread(queue_counts, args.queue)
            print(f"  queue {args.queue}: {messages} messages, {consumers} consumer(s) before the load", flush=True)
            if consumers < args.workers:
                raise RuntimeError(f"only {consumers} consumer(s) on {args.queue} for {args.workers} worker(s): the workers listen elsewhere")
            plan, info = await plan_requests(stack, args.requests)
            print(f"  applicants: {info['people']} living people of {info['organizations']} organisations "
                  f"({'/'.join(info['offered_by'])}) reused round-robin; each moves to another house of their organisation", flush=True)

            print("\n[1] baseline: the registry simulator alone", flush=True)
            nids = sorted({nid for nid, _, _ in plan})
            base = await measure_baseline(stack, nids, args, concurrency)
            stack.check_alive()
            base_rate = sum(base.statuses[s] for s in ("200",)) / base.seconds
            print(f"  {args.requests} verifications in {base.seconds:.2f}s = {base_rate:.1f}/s; latency p50 {ms(pct(base.latencies, 50))} ms, "
                  f"p99 {ms(pct(base.latencies, 99))} ms; answers {dict(base.statuses)}", flush=True)
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{stack.registry}/admin/reset-stats") as resp:
                    resp.raise_for_status()

            print("\n[2] OneStop: submit, dispatcher -> RabbitMQ -> worker -> registry -> in_review", flush=True)
            run = await run_onestop(stack, dsn, plan, args)
            stack.check_alive()
            async with aiohttp.ClientSession() as session:
                reg_stats = await registry_stats(session, stack)
            timeline = await read_timeline(dsn)
            checked = await api_check(stack, set(run.ids))
            problems = log_problems(started)
            calls = registry_calls(reg_stats)
        except Exception as error:
            h.report_failure(error, started, with_type=True)
            status = 1
        finally:
            if status == 0 and args.log_dir is None:
                # Keep the tails of logs that report problems before the temporary directory goes.
                tails = {c.name: c.tail(12) for c in started if any(w in c.tail(200) for w in ("ERROR", "Traceback"))}
            else:
                tails = {}
            h.stop_children(started)
            if stack is not None:
                stack.pg.close()
            try:
                await asyncio.to_thread(purge_queue, args.queue)
            except Exception as error:  # noqa: BLE001
                print(f"bench: could not purge {args.queue} at the end: {error}", file=sys.stderr)
            await h.drop_or_keep(dbname, dsn, args.keep_db)
    if status:
        return status
    report(args, concurrency, base, base_rate, run, timeline, reg_stats, calls, checked, problems, tails, log_dir if args.log_dir else None)
    return 0


def report(args: argparse.Namespace, concurrency: int, base: Load, base_rate: float, run: Run, t: Timeline,
           reg_stats: dict[str, Any], calls: Counter[str], checked: dict[str, Any], problems: dict[str, Counter[str]], tails: dict[str, str],
           log_dir: Path | None) -> None:
    ours = set(run.ids)
    finished = {rid: ts for rid, ts in {**t.review, **t.rejected}.items() if rid in ours}
    n_review = len(ours & set(t.review))
    n_rejected = len(ours & set(t.rejected))
    last = max(finished.values()) if finished else float("nan")
    span = last - run.first_submit_wall
    rate = len(finished) / span if finished and span > 0 else 0.0
    # Steady state: the pace between the 10th and the 90th percentile of completion times.
    done_times = sorted(finished.values())
    steady = float("nan")
    if len(done_times) >= 20:
        a, b = done_times[len(done_times) // 10], done_times[(9 * len(done_times)) // 10]
        steady = ((9 * len(done_times)) // 10 - len(done_times) // 10) / (b - a) if b > a else float("nan")
    lat = [finished[r] - t.submitted[r] for r in finished if r in t.submitted]
    from_answer = [finished[r] - run.ids[r][1] for r in finished]
    to_dispatch = [t.dispatched[r] - t.submitted[r] for r in finished if r in t.dispatched and r in t.submitted]
    after_dispatch = [finished[r] - t.dispatched[r] for r in finished if r in t.dispatched]

    print()
    print("results")
    print("-------")
    print(f"submits: {run.submit.statuses.get('201', 0)}/{args.requests} answered 201 in {run.submit.seconds:.2f}s "
          f"({args.requests / run.submit.seconds:.0f}/s), HTTP latency p50 {ms(pct(run.submit.latencies, 50))} ms, "
          f"p99 {ms(pct(run.submit.latencies, 99))} ms" + (f"; other answers: {dict(run.submit.statuses)}" if len(run.submit.statuses) > 1 else ""))
    print(f"finished: {n_review} in_review + {n_rejected} rejected of {len(ours)} submitted; "
          f"{'complete' if run.completed else 'INCOMPLETE'} after {run.wall_seconds:.2f}s (bench clock)")
    print(f"verifications/s (OneStop) = {len(finished)} / {span:.2f}s (first submit sent -> last ReviewStarted) = {rate:.1f}/s; "
          f"steady pace (10th-90th percentile of completions) {steady:.1f}/s")
    print("latency submit -> in_review, from the event log (Submitted and ReviewStarted timestamps, server clock):")
    print(f"  p50 {ms(pct(lat, 50))} ms, p99 {ms(pct(lat, 99))} ms, max {ms(max(lat) if lat else float('nan'))} ms (n={len(lat)})")
    print(f"  of which: Submitted -> job sent by the dispatcher (jobs.created_at) p50 {ms(pct(to_dispatch, 50))} ms, p99 {ms(pct(to_dispatch, 99))} ms; "
          f"job sent -> ReviewStarted p50 {ms(pct(after_dispatch, 50))} ms, p99 {ms(pct(after_dispatch, 99))} ms")
    ours_dispatched = [t.dispatched[r] for r in ours if r in t.dispatched]
    last_answer = max(answered for _, answered in run.ids.values()) if run.ids else float("nan")
    if ours_dispatched:
        d_span = max(ours_dispatched) - run.first_submit_wall
        print(f"  pipeline, seconds after the first submit: last submit answered {last_answer - run.first_submit_wall:.2f}s "
              f"({len(ours) / (last_answer - run.first_submit_wall):.0f}/s), last job sent by the dispatcher {d_span:.2f}s "
              f"({len(ours_dispatched) / d_span:.0f}/s), last ReviewStarted {span:.2f}s ({rate:.0f}/s)")
    print(f"  (client view, submit answer received -> ReviewStarted: p50 {ms(pct(from_answer, 50))} ms, p99 {ms(pct(from_answer, 99))} ms)")
    eff = reg_stats.get("effects", {})
    print(f"registry simulator stats (OneStop phase, reset after the baseline): calls {reg_stats.get('calls')}, "
          f"effects.verification {eff.get('verification', 0)}, duplicate_keys {reg_stats.get('duplicate_keys')}, "
          f"keys_with_more_than_one_effect {reg_stats.get('keys_with_more_than_one_effect')}, injected {reg_stats.get('injected')}")
    if calls:
        print("registry calls in the OneStop phase, from its stats: "
              + ", ".join(f"{k} {v} ({v / max(1, len(finished)):.2f} per request)" for k, v in calls.most_common()))
    print(f"jobs table: {dict(t.job_status)}; jobs with more than one attempt: {t.attempts_over_one}; "
          f"row writes (pg_stat_user_tables, whole run): {t.job_writes[0]} inserts, {t.job_writes[1]} updates ({t.job_writes[2]} heap-only)")
    for error, count in t.job_errors.most_common(5):
        print(f"  job error x{count}: {error}")
    print(f"API check (admin token, views lag {checked.get('views_lag')} at log position {checked.get('log_position')}): "
          f"status=in_review lists {checked.get('in_review')} of ours, verifying {checked.get('verifying')}, rejected {checked.get('rejected')}")
    print("log lines per process: " + ", ".join(f"{name} {dict(c) or 'clean'}" for name, c in problems.items()))
    for name, tail in tails.items():
        print(f"--- {name} log (tail) ---\n{tail}")

    def cpu_line(label: str, cpu: tuple[dict[str, float], float, float] | None) -> None:
        if cpu is None:
            return
        parts, other, machine = cpu
        print(f"  {label:<9} " + ", ".join(f"{k} {v:.0f}%" for k, v in parts.items()) + f", other {other:.0f}%, machine {machine:.0f}% of {100 * (os.cpu_count() or 1)}%")

    print("CPU (100% = one core fully busy; postgres = its shared processes and the backends of this database; "
          "other = everything else on the machine: other databases' backends, other programs, the kernel):")
    cpu_line("baseline", base.cpu)
    cpu_line("OneStop", run.cpu)
    if finished and run.cpu:
        # CPU seconds each party spent per finished request (submit + dispatch + verification + views).
        per = {k: v / 100 * run.wall_seconds / len(finished) * 1000 for k, v in run.cpu[0].items() if k != "client"}
        total = sum(per.values())
        cores = os.cpu_count() or 1
        print("CPU per finished request (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in per.items() if v >= 0.05)
              + f"; total {total:.1f} ms -> with all {cores} cores and nothing else running, at most {1000 * cores / total:.0f} requests/s")

    print()
    ratio = rate / base_rate if base_rate else 0.0
    header = f"{'system':<52} {'verifications':>13} {'seconds':>8} {'per s':>7} {'p50 ms':>7} {'p99 ms':>7}"
    print(header)
    print("-" * len(header))
    print(f"{'registry simulator alone (' + str(concurrency) + ' in flight)':<52} {sum(base.statuses[s] for s in ('200',)):>13} "
          f"{base.seconds:>8.2f} {base_rate:>7.1f} {ms(pct(base.latencies, 50)):>7} {ms(pct(base.latencies, 99)):>7}")
    print(f"{'OneStop submit -> in_review (' + str(args.workers) + 'x' + str(args.worker_threads) + ' worker threads)':<52} "
          f"{len(finished):>13} {span:>8.2f} {rate:>7.1f} {ms(pct(lat, 50)):>7} {ms(pct(lat, 99)):>7}")
    print()
    print(f"ratio OneStop / registry simulator alone: {rate:.1f} / {base_rate:.1f} = {ratio:.2f}")
    ok = run.completed and rate >= args.target and reg_stats.get("keys_with_more_than_one_effect") == 0
    print(f"OneStop verifications/s {rate:.1f} (target >= {args.target:.0f}/s): {'PASS' if ok else 'FAIL'}"
          + ("" if run.completed else " (run incomplete)"))
    if log_dir:
        print(f"logs: {log_dir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests to file, and baseline verifications (default 2000)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent submitting clients (default 32)")
    parser.add_argument("--worker-threads", type=int, default=32, help="ONESTOP_WORKER_THREADS of each worker (default 32)")
    parser.add_argument("--workers", type=int, default=1, help="`onestop worker` processes (default 1)")
    parser.add_argument("--registry-latency-ms", type=int, default=50, help="latency the registry simulator adds (default 50)")
    parser.add_argument("--baseline-concurrency", type=int, default=0, help="baseline requests in flight (default workers x worker threads)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured baseline verifications first (default 200)")
    parser.add_argument("--target", type=float, default=TARGET_PER_SECOND, help="verifications/s to PASS (default 300)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="give up when not finished after this (default 300)")
    parser.add_argument("--stall-seconds", type=float, default=60.0, help="give up after this long without a new verification (default 60)")
    parser.add_argument("--progress-seconds", type=float, default=1.0, help="progress line interval (default 1)")
    parser.add_argument("--queue", default=QUEUE, help=f"RabbitMQ queue of the jobs, passed as ONESTOP_JOBS_QUEUE and purged (default {QUEUE})")
    parser.add_argument("--registry-access-log", action="store_true",
                        help="let the registry simulator log every request (off by default: it costs it more CPU than the answer)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database at the end")
    parser.add_argument("--log-dir", help="keep the processes' logs here (default: a temporary directory)")
    args = parser.parse_args()
    if args.requests < 1 or args.clients < 1 or args.worker_threads < 1 or args.workers < 1:
        parser.error("--requests, --clients, --worker-threads and --workers must be at least 1")
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
