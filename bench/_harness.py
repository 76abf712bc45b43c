"""Shared pieces of the benches: throwaway databases, child processes, a closed-loop load
generator, CPU accounting from /proc, and the results table.

Nothing here imports OneStop at import time: the benches drive it through its real entry
points (`onestop migrate`, `onestop api`, ...) as separate processes. Only `generate_events`
imports it, when called, to fill a log through the application quickly.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Keys of personal data for every OneStop process of one bench run (fresh each run).
KEY_ENV = {name: __import__("base64").b64encode(os.urandom(32)).decode() for name in ("ONESTOP_MASTER_KEY", "ONESTOP_BLIND_INDEX_KEY")}


# --- ports and databases ------------------------------------------------------------------


def national_id(n: int, first: str = "1") -> str:
    """A valid Thai national ID made from ``n`` (distinct ``n``, distinct IDs), starting with
    ``first`` so that benches filling one database with different people keep them apart."""
    from domain.national_id import national_id_check_digit

    head = f"{first}{n:011d}"
    return head + str(national_id_check_digit(head))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def db_dsn(dbname: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{dbname}"


async def create_database(prefix: str) -> str:
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def server_version() -> str:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


# --- child processes ----------------------------------------------------------------------


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def report_failure(error: BaseException, children: Sequence[Child], *, with_type: bool = False) -> None:
    """Say on stderr that the bench failed, and show the tail of each child's log."""
    print(f"bench: FAILED: {type(error).__name__ + ': ' if with_type else ''}{error}", file=sys.stderr)
    for child in children:
        print(f"--- {child.name} log (tail) ---\n{child.tail(20)}", file=sys.stderr)


async def drop_or_keep(dbname: str, dsn: str, keep: bool) -> None:
    """Drop the bench's database, or say where it is when ``--keep-db`` asked to keep it."""
    if keep:
        print(f"database kept: {dsn}")
    else:
        await drop_database(dbname)


def machine_line(shared_by: str) -> str:
    """What the figures were measured on: cores, what shares them, Python and the load before."""
    return (f"machine: {os.cpu_count()} CPU cores shared by {shared_by}; Python {platform.python_version()}; "
            f"load average before the run {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def start_child(name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path) -> Child:
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "wb")
    # A bench drives one server as hard as it can from one address and one token: the API's
    # abuse limits would measure themselves. A bench that wants them on passes ONESTOP_RATE_LIMITS=on.
    env = {"ONESTOP_RATE_LIMITS": "off", **env}
    proc = subprocess.Popen(list(argv), env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    return Child(name, proc, log_path)


def stop_children(children: Sequence[Child], timeout: float = 10.0) -> None:
    """SIGTERM each child we started (by its own pid), then SIGKILL whatever is left."""
    for child in children:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()


async def wait_http_ok(url: str, children: Sequence[Child], timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 200; fail early if a child exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            for child in children:
                if child.proc.poll() is not None:
                    raise RuntimeError(f"{child.name} exited with {child.proc.returncode} while starting:\n{child.tail()}")
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
                    last = f"{resp.status} {(await resp.text())[:200]}"
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                last = repr(error)
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f}s (last: {last})")


# --- CPU accounting -----------------------------------------------------------------------


def _proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode()
    except OSError:
        return 0.0
    fields = data[data.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _postgres_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", "rb") as f:
                if f.read().strip() in (b"postgres", b"postmaster"):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def _machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (everything but idle and iowait)."""
    with open("/proc/stat", "rb") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


@dataclass
class CpuSnapshot:
    server: float
    postgres: float
    client: float
    machine: float  # every process on the machine, ours included
    per_server: dict[str, float] = field(default_factory=dict)  # server process name -> CPU seconds


def cpu_snapshot(server_pids: Mapping[str, int]) -> CpuSnapshot:
    per_server = {name: _proc_cpu_seconds(pid) for name, pid in server_pids.items()}
    return CpuSnapshot(
        server=sum(per_server.values()),
        postgres=sum(_proc_cpu_seconds(p) for p in _postgres_pids()),
        client=time.process_time(),
        machine=_machine_busy_seconds(),
        per_server=per_server,
    )


# --- load generation ----------------------------------------------------------------------


@dataclass
class Result:
    system: str
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)
    cpu: CpuSnapshot | None = None  # CPU seconds used during the measured phase

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


async def run_load(
    system: str,
    url: str,
    make_headers: Callable[[], dict[str, str]],
    body: bytes | Callable[[], bytes],
    *,
    clients: int,
    requests: int,
    max_seconds: float,
    expect_status: int = 201,
    server_pids: Mapping[str, int] | None = None,
) -> Result:
    """Closed loop: ``clients`` workers, each POSTs, waits for the whole answer, and goes again,
    until ``requests`` have been sent or ``max_seconds`` have passed (whichever comes first).
    ``body`` is the request's bytes, or a function making each request's."""
    result = Result(system)
    issued = 0
    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        deadline = started + max_seconds

        async def worker() -> None:
            nonlocal issued
            while issued < requests and time.perf_counter() < deadline:
                issued += 1
                headers = make_headers()
                data = body() if callable(body) else body
                t0 = time.perf_counter()
                try:
                    async with session.post(url, data=data, headers=headers) as resp:
                        payload = await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                    status, payload = type(error).__name__, repr(error).encode()
                result.latencies.append(time.perf_counter() - t0)
                if status != expect_status:
                    label = str(status)
                    result.errors[label] += 1
                    result.error_samples.setdefault(label, payload[:300].decode("utf-8", "replace"))

        before = cpu_snapshot(server_pids or {})
        await asyncio.gather(*(worker() for _ in range(clients)))
        result.seconds = time.perf_counter() - started
        after = cpu_snapshot(server_pids or {})
    result.requests = len(result.latencies)
    result.cpu = CpuSnapshot(after.server - before.server, after.postgres - before.postgres, after.client - before.client,
                             after.machine - before.machine,
                             {name: after.per_server[name] - before.per_server.get(name, 0.0) for name in after.per_server})
    return result


# --- output -------------------------------------------------------------------------------


def print_table(results: Sequence[Result]) -> None:
    header = f"{'system':<40} {'requests':>8} {'seconds':>8} {'requests/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.system:<40} {r.requests:>8} {r.seconds:>8.2f} {r.rps:>10.1f} {r.percentile_ms(50):>8.1f} {r.percentile_ms(99):>8.1f} {r.error_count:>6}")
    print()
    print("CPU during the measured phase (100% = one core fully busy):")
    print("  server = the system's own processes; postgres = every postgres process on the machine; client = this process;")
    print(f"  other = the rest of the machine (not part of the bench); machine = all {os.cpu_count()} cores ({100 * (os.cpu_count() or 1)}% = all busy)")
    cpu_header = f"{'system':<40} {'server':>8} {'postgres':>9} {'client':>8} {'other':>8} {'machine':>8}   server by process"
    print(cpu_header)
    print("-" * len(cpu_header))
    for r in results:
        if r.cpu is None or not r.seconds:
            continue
        pct = lambda s: 100 * s / r.seconds  # noqa: E731
        other = max(0.0, r.cpu.machine - r.cpu.server - r.cpu.postgres - r.cpu.client)
        by_process = ", ".join(f"{name} {pct(seconds):.0f}%" for name, seconds in r.cpu.per_server.items())
        print(f"{r.system:<40} {pct(r.cpu.server):>7.0f}% {pct(r.cpu.postgres):>8.0f}% {pct(r.cpu.client):>7.0f}% {pct(other):>7.0f}% "
              f"{pct(r.cpu.machine):>7.0f}%   {by_process}")


def print_errors(results: Sequence[Result]) -> None:
    for r in results:
        for label, count in r.errors.most_common():
            print(f"ERROR {r.system}: {count} x {label}: {r.error_samples.get(label, '')}", file=sys.stderr)


def combine(system: str, results: Sequence[Result]) -> Result:
    """Several measured phases of one system as one: all latencies, summed requests and time."""
    combined = Result(system)
    for r in results:
        combined.requests += r.requests
        combined.seconds += r.seconds
        combined.latencies.extend(r.latencies)
        combined.errors.update(r.errors)
        for label, sample in r.error_samples.items():
            combined.error_samples.setdefault(label, sample)
    return combined


# --- data ---------------------------------------------------------------------------------


def generate_events(dsn: str, count: int, *, batch: int = 500, organizations: Sequence[str] = ("MUN-SAENSUK", "MUN-PHRAE")) -> int:
    """Write at least ``count`` events through the application itself, many requests per save
    (``BackOffice.submit_many``, as the API coalesces concurrent submissions): complaints (2
    events each) and every fifth a flyer permit with a fee (3 events). Returns the log's head.

    This is the one function here that imports OneStop (lazily): the benches drive the servers
    through their entry points, but filling a log through HTTP would take minutes."""
    import uuid

    from application.commands import SubmitCommand
    from domain.actors import Actor
    from onestop.bootstrap import build_back_office
    from onestop.settings import Settings

    settings = Settings.from_env({**os.environ, "ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": "bench-" + secrets.token_hex(16), "ONESTOP_DEV_TOKENS": "1",
                                  **KEY_ENV})
    app = build_back_office(settings)
    citizen = Actor(sub="3100600445635", role="citizen", pid="3100600445635")
    applicant = {"national_id": "3100600445635", "name": "สมชาย ใจดี"}
    complaint = {"subject": "ไฟถนนดับ", "description": "ไฟถนนหน้าบ้านดับ", "location": "ซอย 5"}
    flyer = {"description": "ประกาศงานวัด", "area": "ตลาด", "start_date": "2026-12-01", "end_date": "2026-12-07", "quantity": 200}
    try:
        n = 0
        while (app.recorder.max_notification_id() or 0) < count:
            commands = []
            for _ in range(batch):
                n += 1
                body = {"service": "local.flyer-permit", "details": flyer} if n % 5 == 0 else {"service": "complaint", "details": complaint}
                body.update(organization=organizations[n % len(organizations)], channel="web", applicant=applicant)
                commands.append(SubmitCommand(body=body, actor=citizen, request_hash=f"bench-{n}", idempotency_key=str(uuid.uuid4())))
            for result in app.submit_many(commands):
                if isinstance(result, Exception):
                    raise result
        return int(app.recorder.max_notification_id() or 0)
    finally:
        app.close()


def onestop_command() -> str:
    """The `onestop` console script of this virtualenv."""
    for candidate in (Path(sys.executable).parent / "onestop", REPO / ".venv" / "bin" / "onestop"):
        if candidate.exists():
            return str(candidate)
    sys.exit("bench: cannot find the `onestop` console script; run `.venv/bin/pip install -e '.[test]'`")
