"""Measuring helpers of the verification bench: percentiles, CPU of the stack's processes
(OneStop's, PostgreSQL's and RabbitMQ's), and the RabbitMQ queue it uses."""

from __future__ import annotations
import math
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

QUEUE = "onestop-jobs"  # OneStop's default ONESTOP_JOBS_QUEUE
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672")
TOPIC_SUBMITTED = "onestop:ServiceRequest.Submitted"
TOPIC_REVIEW = "onestop:ServiceRequest.ReviewStarted"
TOPIC_REJECTED = "onestop:ServiceRequest.Rejected"



def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (as in _harness.Result), NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def make_token(secret: str, sub: str, role: str) -> str:
    import jwt

    now = int(time.time())
    return jwt.encode({"sub": sub, "role": role, "iat": now, "exp": now + 4 * 3600, "iss": "onestop"}, secret, algorithm="HS256")


def rabbit_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm", "rb") as f:
                    if f.read().strip() == b"beam.smp":
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


class PostgresPids:
    """The PostgreSQL processes that serve this bench: every postgres process on the machine but
    the backends of other databases (other people's tests), which count as "other"."""

    def __init__(self, dbname: str) -> None:
        import psycopg

        self.dbname = dbname
        self.conn = psycopg.connect(h.PG_ADMIN_DSN, autocommit=True)

    def pids(self) -> list[int]:
        rows = self.conn.execute("SELECT pid, datname FROM pg_stat_activity WHERE datname IS NOT NULL").fetchall()
        foreign = {pid for pid, datname in rows if datname != self.dbname}
        return [pid for pid in h._postgres_pids() if pid not in foreign]

    def close(self) -> None:
        self.conn.close()


@dataclass
class Cpu:
    """CPU seconds of each party at one instant."""

    at: float
    by_party: dict[str, float]
    pg_by_pid: dict[int, float]
    machine: float

    @classmethod
    def take(cls, pids: dict[str, int], rabbit: list[int], pg: PostgresPids) -> Cpu:
        snap = h.cpu_snapshot(pids)
        parties = dict(snap.per_server)
        parties["rabbitmq"] = sum(h._proc_cpu_seconds(p) for p in rabbit)
        parties["client"] = snap.client
        pg_by_pid = {pid: h._proc_cpu_seconds(pid) for pid in pg.pids()}
        return cls(time.perf_counter(), parties, pg_by_pid, snap.machine)

    def percent_since(self, before: Cpu) -> tuple[dict[str, float], float, float]:
        """(% per party, % other, % machine) over the interval; 100% = one core."""
        span = max(1e-9, self.at - before.at)
        parts = {k: 100 * (v - before.by_party.get(k, 0.0)) / span for k, v in self.by_party.items()}
        parts["postgres"] = 100 * sum(v - before.pg_by_pid.get(pid, 0.0) for pid, v in self.pg_by_pid.items()) / span
        machine = 100 * (self.machine - before.machine) / span
        return parts, max(0.0, machine - sum(parts.values())), machine


# --- RabbitMQ --------------------------------------------------------------------------------


def purge_queue(queue: str) -> dict[str, tuple[int, int]]:
    """Declare the queue and its .DQ/.XQ as Dramatiq does, purge them; return what was found
    in each: (messages, consumers)."""
    from dramatiq.brokers.rabbitmq import RabbitmqBroker, dq_name, xq_name

    broker = RabbitmqBroker(url=BROKER_URL)
    try:
        broker.declare_queue(queue, ensure=True)
        found = {}
        for name in (queue, dq_name(queue), xq_name(queue)):
            ok = broker.channel.queue_declare(name, passive=True)
            found[name] = (ok.method.message_count, ok.method.consumer_count)
        broker.flush(queue)
        return found
    finally:
        broker.close()


def queue_counts(queue: str) -> tuple[int, int]:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        ok = conn.channel().queue_declare(queue, passive=True)
        return ok.method.message_count, ok.method.consumer_count
    finally:
        conn.close()


# --- the stack -------------------------------------------------------------------------------


@dataclass
class Timeline:
    submitted: dict[str, float]
    review: dict[str, float]
    rejected: dict[str, float]
    dispatched: dict[str, float]
    job_status: Counter[str]
    attempts_over_one: int
    job_errors: Counter[str]
    # Row writes of the jobs table (pg_stat_user_tables): inserts, updates, of which heap-only.
    job_writes: tuple[int, int, int] = (0, 0, 0)


async def read_timeline(dsn: str) -> Timeline:
    """Event timestamps (server clock) from the log, and the jobs table."""
    import asyncpg
    import orjson

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT originator_id, topic, state FROM onestop_events WHERE topic = ANY($1::text[])",
                                [TOPIC_SUBMITTED, TOPIC_REVIEW, TOPIC_REJECTED])
        jobs = await conn.fetch("SELECT request_id, kind, status, attempts, last_error, created_at FROM jobs")
        await conn.execute("SELECT pg_stat_force_next_flush()")
        writes = await conn.fetchrow("SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'jobs'")
    finally:
        await conn.close()
    by_topic: dict[str, dict[str, float]] = {TOPIC_SUBMITTED: {}, TOPIC_REVIEW: {}, TOPIC_REJECTED: {}}
    for row in rows:
        stamp = orjson.loads(row["state"])["timestamp"]
        text = stamp["_data_"] if isinstance(stamp, dict) else stamp
        by_topic[row["topic"]][str(row["originator_id"])] = datetime.fromisoformat(text).timestamp()
    dispatched = {str(j["request_id"]): j["created_at"].timestamp() for j in jobs if j["kind"] == "verify_applicant"}
    errors: Counter[str] = Counter()
    for j in jobs:
        if j["last_error"]:
            errors[re.sub(r"attempt \d+: ", "", j["last_error"])[:160]] += 1
    return Timeline(by_topic[TOPIC_SUBMITTED], by_topic[TOPIC_REVIEW], by_topic[TOPIC_REJECTED], dispatched,
                    Counter(f"{j['kind']}:{j['status']}" for j in jobs), sum(1 for j in jobs if j["attempts"] > 1), errors,
                    tuple(writes) if writes else (0, 0, 0))


def registry_calls(stats: dict[str, Any]) -> Counter[str]:
    """Calls the registry simulator answered since its stats were reset, by method and route
    (its ``calls_by_route``; /health and /admin are not counted)."""
    return Counter({route.replace("{house_id}", "{id}"): int(n) for route, n in (stats.get("calls_by_route") or {}).items()})


def log_problems(children: list[h.Child]) -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = {}
    for child in children:
        try:
            text = child.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        counts: Counter[str] = Counter()
        for line in text.splitlines():
            for word in ("ERROR", "WARNING", "Traceback", "CRITICAL"):
                if word in line:
                    counts[word] += 1
        found[child.name] = counts
    return found


# --- the bench -------------------------------------------------------------------------------


async def count_finished(dsn: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM onestop_events WHERE topic = ANY($1::text[])", [TOPIC_REVIEW, TOPIC_REJECTED]))
    finally:
        await conn.close()
