"""What encrypting personal data per person costs: submit throughput and rebuild rate with
encryption on, against the same with ``ONESTOP_ENCRYPT_PERSONAL_DATA=off``, in the same run.

    .venv/bin/python bench/privacy_cost.py [--requests 2000] [--batch 20] [--threads 4] [--rounds 3]

1. Two fresh databases on 127.0.0.1:5432 (dropped at the end), `migrate`d: one written with
   encryption on, one with it off (the baseline).
2. Submit: ``--warmup`` requests to each database first (not measured); then ``--rounds``
   rounds, each submitting ``--requests`` requests to each database in chunks of ``--chunk``,
   on and off alternating chunk by chunk (so both meet the same load from the rest of the
   machine), through ``BackOffice.submit_many`` in
   batches of ``--batch`` from ``--threads`` threads, as the API's command bus coalesces
   concurrent submissions; every request is a different person (a new data key each: the
   worst case), a complaint or, every fifth, a flyer permit with its payment. Also one
   request per save (``--batch 1`` behaviour) from one thread: the cost when nothing coalesces.
   Printed: the median rate of each mode, each round's own cost (on against its interleaved
   off), and this process's CPU per request in each mode (what encryption adds, apart from the
   database and the machine's load).
3. Over HTTP (``--http-rounds``, 0 to skip): ``onestop api`` and ``onestop projector`` on each
   database, as deployed, loaded by ``bench/submit_throughput.py``'s client (``--clients``
   concurrent ``POST /v1/service-requests``), two ways: one citizen filing for themself (one
   person: their key set is cached after the first), and a new person each request (filed at
   the counter by an officer: a new data key each, the worst case). Each round alternates on
   and off every ``--http-requests / --http-slices`` requests.
4. Rebuild: every view rebuilt from each database's log (the projector's own code),
   ``--rebuild-runs`` times, alternating.

Target: encryption costs at most 15% of submit throughput. Exit 0 when it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h  # noqa: E402
from _harness import national_id  # noqa: E402

TARGET_COST = 0.15
ONE_CITIZEN = "one citizen"
KINDS = (ONE_CITIZEN, "a new person each")  # the HTTP loads (HttpLoad)


def settings_for(dsn: str, encrypt: bool):  # type: ignore[no-untyped-def]
    from onestop.settings import Settings

    return Settings.from_env({"ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": "bench-secret", "ONESTOP_POOL_SIZE": "4",
                              "ONESTOP_ENCRYPT_PERSONAL_DATA": "on" if encrypt else "off", **h.KEY_ENV})


def submit(app, first: int, count: int, batch: int, threads: int) -> float:  # type: ignore[no-untyped-def]
    """Requests per second for ``count`` submissions of new people from ``threads`` threads
    (this process's CPU seconds are added to ``CPU``)."""
    from application.commands import SubmitCommand
    from domain.actors import Actor

    complaint = {"subject": "ไฟถนนดับ", "description": "ไฟถนนหน้าบ้านดับสามคืน", "location": "ซอย 5"}
    flyer = {"description": "ประกาศงานวัด", "area": "ตลาด", "start_date": "2026-12-01", "end_date": "2026-12-07", "quantity": 200}
    commands = []
    for n in range(first, first + count):
        pid = national_id(n)
        body = {"service": "local.flyer-permit", "details": flyer} if n % 5 == 0 else {"service": "complaint", "details": complaint}
        body.update(organization="MUN-SAENSUK", channel="web", applicant={"national_id": pid, "name": f"ผู้ยื่น {n}"})
        commands.append(SubmitCommand(body=body, actor=Actor(sub=pid, role="citizen", pid=pid), request_hash=f"b{n}", idempotency_key=str(uuid.uuid4())))
    batches = [commands[i:i + batch] for i in range(0, len(commands), batch)]
    lock = threading.Lock()
    errors: list[object] = []

    def work() -> None:
        while True:
            with lock:
                if not batches:
                    return
                mine = batches.pop()
            for result in app.submit_many(mine):
                if isinstance(result, Exception):
                    errors.append(result)

    started, cpu = time.perf_counter(), time.process_time()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    CPU[app] = CPU.get(app, 0.0) + time.process_time() - cpu
    if errors:
        raise RuntimeError(f"{len(errors)} submissions failed, first: {errors[0]!r}")
    return count / elapsed


CPU: dict[object, float] = {}


def rebuild(settings) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    from infrastructure.views.projector import Projector
    from onestop.bootstrap import build_back_office, build_views

    app = build_back_office(settings)
    try:
        projector = Projector(app, build_views(app), batch_size=10_000)
        started = time.perf_counter()
        done = projector.rebuild(settings.database.conninfo())
        return done, done / (time.perf_counter() - started)
    finally:
        app.close()


class HttpLoad:
    """``POST /v1/service-requests`` to one OneStop, as ``kind`` says: ``one citizen`` filing
    for themself (their key set cached after the first), or ``a new person each`` (filed at
    the counter by one officer, the applicant changing every request: a new data key each, as
    in the in-process rounds)."""

    def __init__(self, system, kind: str, first: int) -> None:  # type: ignore[no-untyped-def]
        import itertools

        import orjson

        import submit_throughput as st
        from api.auth import make_token

        self.system = system
        if kind == ONE_CITIZEN:
            token = system.token
            fixed = st.body_bytes()
            self.body = lambda: fixed
        else:
            token = make_token(system.jwt_secret, sub="bench-officer", role="officer", org="MUN-SAENSUK")
            numbers = itertools.count(first)
            details = {"subject": "ไฟถนนดับ", "description": "ไฟถนนหน้าบ้านดับ", "location": "ซอย 5"}

            def body() -> bytes:
                n = next(numbers)
                return orjson.dumps({"service": "complaint", "organization": "MUN-SAENSUK", "channel": "counter",
                                     "applicant": {"national_id": national_id(n), "name": f"ผู้ยื่น {n}"}, "details": details})

            self.body = body
        self.headers = lambda: {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}

    async def run(self, requests: int, clients: int, measured: bool = True) -> h.Result:
        result = await h.run_load(self.system.name, self.system.url, self.headers, self.body, clients=clients, requests=requests,
                                  max_seconds=60.0, server_pids=self.system.pids if measured else None)
        if result.error_count:
            raise RuntimeError(f"{result.error_count} requests did not answer 201: {dict(result.errors)} {result.error_samples}")
        self.system.check_alive()
        return result


# CPU seconds each process spent in the HTTP rounds, by (load, encryption on), with the requests.
HTTP_CPU: dict[tuple[str, bool], dict[str, float]] = {}

# How far a system's projector is behind its log: the audit chain is handed each batch last,
# after the views and the feed, so its head at the log's end means all three have caught up.
BEHIND_SQL = ("SELECT (SELECT coalesce(max(notification_id), 0) FROM onestop_events)"
              " - least((SELECT coalesce(max(notification_id), 0) FROM onestop_views_tracking),"
              " (SELECT coalesce(max(position), 0) FROM audit_chain_head))")


async def drain(conn, pids: dict[str, int], timeout: float = 300.0) -> tuple[float, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Wait until the projector has caught up with everything submitted (views, feed, audit
    chain); the seconds it took and the CPU each process spent meanwhile."""
    before, started = h.cpu_snapshot(pids), time.perf_counter()
    while await conn.fetchval(BEHIND_SQL) > 0:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"the projector did not catch up in {timeout:.0f} s")
        await asyncio.sleep(0.005)
    after = h.cpu_snapshot(pids)
    cpu = {name: after.per_server[name] - before.per_server.get(name, 0.0) for name in after.per_server}
    cpu.update(postgres=after.postgres - before.postgres, client=after.client - before.client)
    return time.perf_counter() - started, cpu


async def http_rounds(names: dict[bool, str], args: argparse.Namespace) -> dict[str, dict[bool, list[float]]]:
    """Requests per second of the deployed API (``onestop api`` and ``onestop projector`` on each
    database) with encryption on and off, for each kind of load: each round is ``--http-slices``
    slices, on and off alternating slice by slice (so both meet the same load from the rest of
    the machine); a round's rate is its requests over the time its slices took. With
    ``--drain`` (the default), each slice lasts until that system's projector has caught up with
    it (views, feed and audit chain), and its CPU is counted to then: each system's projector
    does all its own work inside its own slices, none of it in the other's."""
    import tempfile

    import asyncpg

    import submit_throughput as st

    rates: dict[str, dict[bool, list[float]]] = {kind: {True: [], False: []} for kind in KINDS}
    cpu = HTTP_CPU  # read by main() for the report
    started: list[h.Child] = []
    conns: dict[bool, Any] = {}
    saved = os.environ.get("ONESTOP_ENCRYPT_PERSONAL_DATA")
    with tempfile.TemporaryDirectory(prefix="onestop-privacy-") as log_dir:
        try:
            systems = {}
            for mode, name in names.items():
                os.environ["ONESTOP_ENCRYPT_PERSONAL_DATA"] = "on" if mode else "off"
                systems[mode] = await st.start_onestop(name, Path(log_dir), started)
            loads = {(kind, mode): HttpLoad(systems[mode], kind, 500_000_000 + 10_000_000 * (2 * i + mode))
                     for i, kind in enumerate(KINDS) for mode in (True, False)}
            for mode, name in names.items():
                if args.drain:
                    conns[mode] = await asyncpg.connect(h.db_dsn(name))
            for (_, mode), load in loads.items():  # warm-up, not measured
                if args.http_warmup:
                    await load.run(args.http_warmup, args.clients, measured=False)
                if args.drain:
                    await drain(conns[mode], systems[mode].pids)
            per_slice = max(1, args.http_requests // args.http_slices)
            for round_ in range(args.http_rounds):
                for kind in KINDS:
                    seconds = {True: 0.0, False: 0.0}
                    done = {True: 0, False: 0}
                    for n in range(args.http_slices):
                        for mode in ((True, False) if (round_ + n) % 2 == 0 else (False, True)):
                            result = await loads[kind, mode].run(per_slice, args.clients)
                            seconds[mode] += result.seconds
                            done[mode] += result.requests
                            spent = cpu.setdefault((kind, mode), {"requests": 0.0})
                            spent["requests"] += result.requests
                            for name, value in st.result_cpu(result).items():
                                spent[name] = spent.get(name, 0.0) + value
                            if args.drain:
                                waited, drain_cpu = await drain(conns[mode], systems[mode].pids)
                                seconds[mode] += waited
                                for name, value in drain_cpu.items():
                                    spent[name] = spent.get(name, 0.0) + value
                    for mode in (True, False):
                        rates[kind][mode].append(done[mode] / seconds[mode])
        finally:
            for conn in conns.values():
                await conn.close()
            h.stop_children(started)
            if saved is None:
                os.environ.pop("ONESTOP_ENCRYPT_PERSONAL_DATA", None)
            else:
                os.environ["ONESTOP_ENCRYPT_PERSONAL_DATA"] = saved
    return rates


async def alone_pairs(args: argparse.Namespace) -> dict[str, dict[bool, list[tuple[float, dict[str, float]]]]]:
    """Each system alone: for each load, ``--alone-pairs`` pairs of runs, off and on (the order
    alternating pair by pair), each on a fresh database with its own ``onestop api`` and
    ``onestop projector`` and nothing else running: ``--http-warmup`` requests unmeasured, then
    ``--alone-requests`` measured. No cross-talk between the systems (in the rounds above, one
    system's projector may still be catching up while the other is measured), at the price of
    the machine's drift between runs. Returns (requests/s, CPU us per submit by process) per run."""
    import tempfile

    import submit_throughput as st

    runs: dict[str, dict[bool, list[tuple[float, dict[str, float]]]]] = {kind: {True: [], False: []} for kind in KINDS}
    saved = os.environ.get("ONESTOP_ENCRYPT_PERSONAL_DATA")
    try:
        for kind in KINDS:
            for pair in range(args.alone_pairs):
                for mode in ((False, True) if pair % 2 == 0 else (True, False)):
                    os.environ["ONESTOP_ENCRYPT_PERSONAL_DATA"] = "on" if mode else "off"
                    name = await h.create_database("bench_privacy_alone")
                    started: list[h.Child] = []
                    try:
                        with tempfile.TemporaryDirectory(prefix="onestop-privacy-alone-") as log_dir:
                            system = await st.start_onestop(name, Path(log_dir), started)
                            load = HttpLoad(system, kind, 800_000_000 + 10_000_000 * pair)
                            if args.http_warmup:
                                await load.run(args.http_warmup, args.clients, measured=False)
                            result = await load.run(args.alone_requests, args.clients)
                            cpu = st.result_cpu(result)
                            runs[kind][mode].append((result.requests / result.seconds,
                                                     {k: 1e6 * v / result.requests for k, v in cpu.items()}))
                    finally:
                        h.stop_children(started)
                        await h.drop_database(name)
    finally:
        if saved is None:
            os.environ.pop("ONESTOP_ENCRYPT_PERSONAL_DATA", None)
        else:
            os.environ["ONESTOP_ENCRYPT_PERSONAL_DATA"] = saved
    return runs


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rebuild-runs", type=int, default=3, help="rebuilds of each database, alternating")
    parser.add_argument("--chunk", type=int, default=200, help="requests per alternation between on and off within a round")
    parser.add_argument("--warmup", type=int, default=500, help="requests submitted to each database first, not measured (0: none)")
    parser.add_argument("--single", type=int, default=300, help="requests submitted one per save, one thread")
    parser.add_argument("--http-rounds", type=int, default=3, help="rounds over HTTP against `onestop api` (0: skip)")
    parser.add_argument("--http-requests", type=int, default=1500, help="measured requests per HTTP round and mode")
    parser.add_argument("--http-warmup", type=int, default=200, help="requests of each HTTP load and mode first, not measured")
    parser.add_argument("--http-slices", type=int, default=5, help="slices of an HTTP round, on and off alternating")
    parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
    parser.add_argument("--drain", action=argparse.BooleanOptionalAction, default=True,
                        help="each HTTP slice lasts until its projector has caught up (--no-drain: until its last answer)")
    parser.add_argument("--alone-pairs", type=int, default=0, help="pairs of runs (off, on) of each system alone, per load (0: skip)")
    parser.add_argument("--alone-requests", type=int, default=10_000, help="measured requests of each run alone")
    args = parser.parse_args()

    from onestop.bootstrap import build_back_office, migrate

    print(f"PostgreSQL {await h.server_version()}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    names = {True: await h.create_database("bench_privacy_on"), False: await h.create_database("bench_privacy_off")}
    try:
        settings = {mode: settings_for(h.db_dsn(name), mode) for mode, name in names.items()}
        for s in settings.values():
            migrate(s)
        apps = {mode: build_back_office(s) for mode, s in settings.items()}
        try:
            rates: dict[bool, list[float]] = {True: [], False: []}
            single: dict[bool, list[float]] = {True: [], False: []}
            first = 1
            # Warm-up, not measured: the first submissions of a process pay for its caches, the
            # pools' connections and the databases' first pages, whichever mode goes first.
            if args.warmup:
                for mode in (True, False):
                    submit(apps[mode], first, args.warmup, args.batch, args.threads)
                    first += args.warmup
            CPU.clear()
            for round_ in range(args.rounds):
                order = (True, False) if round_ % 2 == 0 else (False, True)
                # A round's requests go in chunks, on and off alternating chunk by chunk, so both
                # modes meet the same load from whatever else runs on the machine.
                seconds = {True: 0.0, False: 0.0}
                for n in range(0, args.requests, args.chunk):
                    count = min(args.chunk, args.requests - n)
                    for mode in (order if (n // args.chunk) % 2 == 0 else order[::-1]):
                        seconds[mode] += count / submit(apps[mode], first, count, args.batch, args.threads)
                        first += count
                for mode in order:
                    rates[mode].append(args.requests / seconds[mode])
                chunks_cpu = dict(CPU)  # the singles' CPU is not counted in the chunks' figure
                for mode in order:
                    single[mode].append(submit(apps[mode], first, args.single, 1, 1))
                    first += args.single
                CPU.clear()
                CPU.update(chunks_cpu)
            cpu = {mode: CPU.get(apps[mode], 0.0) for mode in (True, False)}
        finally:
            for app in apps.values():
                app.close()
        http = await http_rounds(names, args) if args.http_rounds else {}
        alone = await alone_pairs(args) if args.alone_pairs else {}
        rebuilt: dict[bool, list[float]] = {True: [], False: []}
        events = 0
        for round_ in range(args.rebuild_runs):
            for mode in ((True, False) if round_ % 2 == 0 else (False, True)):
                events, rate = rebuild(settings[mode])
                rebuilt[mode].append(rate)
    finally:
        for name in names.values():
            await h.drop_database(name)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    def quartiles(values: list[float]) -> str:
        """The middle half of the rounds' own costs: how far one run's figure can be trusted
        on a machine whose load moves (with 4 rounds or more)."""
        if len(values) < 4:
            return ""
        low, _, high = statistics.quantiles(values, n=4)
        return f"; middle half of the rounds {low:.1%} to {high:.1%}"

    print(f"\nsubmit, {args.requests} new people a round, batches of {args.batch}, {args.threads} threads ({args.rounds} rounds, median):")
    print(f"  encryption off (baseline): {med(rates[False]):8.0f} requests/s   rounds: {', '.join(f'{r:.0f}' for r in rates[False])}")
    print(f"  encryption on:             {med(rates[True]):8.0f} requests/s   rounds: {', '.join(f'{r:.0f}' for r in rates[True])}")
    cost = 1 - med(rates[True]) / med(rates[False])
    print(f"  cost: {cost:.1%} of submit throughput (target <= {TARGET_COST:.0%}): {'met' if cost <= TARGET_COST else 'NOT met'}")
    # The machine's load moves between rounds; each round's two runs are back to back, so the
    # median of the rounds' own costs is the steadier figure.
    paired = [1 - on / off for on, off in zip(rates[True], rates[False])]
    measured = args.rounds * args.requests
    print(f"  this process's CPU per request: off {cpu[False] / measured * 1000:.2f} ms, on {cpu[True] / measured * 1000:.2f} ms"
          f" (+{cpu[True] / cpu[False] - 1:.1%})")
    print(f"  cost per round (on against the off run next to it): {', '.join(f'{c:.1%}' for c in paired)}; median {med(paired):.1%}")
    print(f"\nsubmit, one request per save, one thread ({args.single} a round, median):")
    print(f"  off {med(single[False]):.0f}/s, on {med(single[True]):.0f}/s: cost {1 - med(single[True]) / med(single[False]):.1%}")
    for kind, rates_of in http.items():
        print(f"\nsubmit over HTTP, {kind} (onestop api, {args.clients} clients, {args.http_requests} requests a round,"
              f" median of {args.http_rounds}):")
        print(f"  encryption off (baseline): {med(rates_of[False]):8.0f} requests/s   rounds: {', '.join(f'{r:.0f}' for r in rates_of[False])}")
        print(f"  encryption on:             {med(rates_of[True]):8.0f} requests/s   rounds: {', '.join(f'{r:.0f}' for r in rates_of[True])}")
        http_cost = 1 - med(rates_of[True]) / med(rates_of[False])
        print(f"  cost: {http_cost:.1%} of submit throughput (target <= {TARGET_COST:.0%}): {'met' if http_cost <= TARGET_COST else 'NOT met'}")
        paired = [1 - on / off for on, off in zip(rates_of[True], rates_of[False])]
        print(f"  cost per round: {', '.join(f'{c:.1%}' for c in paired)}; median {med(paired):.1%}{quartiles(paired)}")
        for mode in (False, True):
            spent = dict(HTTP_CPU.get((kind, mode), {}))
            requests = spent.pop("requests", 0.0)
            if requests:
                parts = ", ".join(f"{name} {1e6 * value / requests:.0f}" for name, value in spent.items())
                print(f"  CPU per submit, encryption {'on' if mode else 'off'}, us: {parts}; total {1e6 * sum(spent.values()) / requests:.0f}")
    for kind, by_mode in alone.items():
        print(f"\nsubmit over HTTP, {kind}, each system alone ({args.alone_pairs} pairs of runs, {args.alone_requests} requests each):")
        for mode in (False, True):
            rates_alone = [rate for rate, _ in by_mode[mode]]
            print(f"  encryption {'on' if mode else 'off'}: {' ' if mode else ''}median {med(rates_alone):8.0f} requests/s"
                  f"   runs: {', '.join(f'{r:.0f}' for r in rates_alone)}")
        pairs = [1 - on[0] / off[0] for on, off in zip(by_mode[True], by_mode[False])]
        print(f"  cost: {1 - med([r for r, _ in by_mode[True]]) / med([r for r, _ in by_mode[False]]):.1%} (medians);"
              f" per pair: {', '.join(f'{c:.1%}' for c in pairs)}; median {med(pairs):.1%}{quartiles(pairs)}")
        for mode in (False, True):
            cpus = [cpu for _, cpu in by_mode[mode] if cpu]
            if cpus:
                parts = ", ".join(f"{name} {med([c[name] for c in cpus]):.0f}" for name in cpus[0])
                print(f"  CPU per submit, encryption {'on' if mode else 'off'}, us (medians): {parts}")
    print(f"\nrebuild of every view, {events} events ({args.rebuild_runs} runs, median):")
    print(f"  off {med(rebuilt[False]):.0f} events/s, on {med(rebuilt[True]):.0f} events/s: cost {1 - med(rebuilt[True]) / med(rebuilt[False]):.1%}")


if __name__ == "__main__":
    asyncio.run(main())
