"""The elderly-allowance monthly run at scale: N recipients in one organisation, one month.

```
.venv/bin/python bench/allowance_run.py                       # 50,000 then 200,000
.venv/bin/python bench/allowance_run.py --sizes 20000 100000
```

What it does, on a throwaway database (dropped at the end unless ``--keep-db``):
1. `onestop migrate`; the registry and bank simulators as processes (`onestop simulate`); the
   dispatcher and one worker as processes (`onestop dispatcher`, `onestop worker`) on the real
   RabbitMQ (a queue of its own).
2. Seeding, not measured: for each size, that many recipients registered in one organisation
   through the application (5,000 aggregates per save) and put in the registry simulator
   (0.5% dead, 0.5% moved away long ago, 0.5% with a closed bank account); then the register
   view is caught up, as the projector keeps it in production.
3. Measured: the run, from `start_run` (what `POST /v1/allowances/runs` calls) to the last batch
   settled: the registry's bulk check, the plan with every disbursement recorded (batch events),
   and the bank's bulk transfers. Reported: seconds, disbursements/s, and the peak resident memory
   (VmHWM) of each process.
4. Baseline, in the same run: the same outside work without OneStop — the same bulk registry
   calls and bank calls from one asyncio loop, each disbursement a row COPYed into a plain table.
   What a one-off script would do with no log, no jobs and no recovery.
5. The time for 1,000,000 recipients, extrapolated linearly from the two sizes.

Exit 0 when it ran (whatever the figures), 1 if a run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path
from uuid import UUID

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _harness as h  # noqa: E402

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672")
ORGANIZATIONS = ("MUN-SAENSUK", "MUN-PHRAE", "SAO-MAEYOM")
TARGET_SECONDS = 60.0


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def seed(dsn: str, organization: str, count: int, offset: int, month: date) -> list[dict[str, object]]:
    """Register ``count`` recipients through the application; return the registry's people."""
    from application.allowance import recipient_id
    from domain.actors import Actor
    from domain.allowance import AllowanceRules, Recipient, month_text
    from onestop.bootstrap import build_back_office
    from onestop.settings import Settings

    settings = Settings.from_env({"ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": "bench-" + secrets.token_hex(8), "ONESTOP_POOL_SIZE": "2", **h.KEY_ENV})
    app = build_back_office(settings)
    rules = AllowanceRules()
    actor = Actor(sub="bench-seed", role="system")
    today = datetime.now(timezone.utc)
    people: list[dict[str, object]] = []
    try:
        batch = []
        for i in range(count):
            nid = h.national_id(offset + i, first="5")
            birth = date(1930 + (i * 7) % 35, 1 + i % 12, 1 + i % 28)
            person: dict[str, object] = {"national_id": nid, "birth_date": birth.isoformat(), "organization": organization, "alive": True}
            if i % 200 == 1:
                person.update(alive=False, died_on=date(today.year - 1, 5, 1).isoformat())
            elif i % 200 == 2:
                person.update(organization="SAO-MAEYOM" if organization != "SAO-MAEYOM" else "MUN-PHRAE", moved_on=date(today.year - 2, 3, 1).isoformat())
            people.append(person)
            account = ("999" if i % 200 == 3 else "100") + f"{offset + i:08d}"
            payout = {"kind": "promptpay", "account": nid} if i % 4 == 0 else {"kind": "bank", "account": account}
            batch.append(Recipient.register(
                id=recipient_id(organization, app.subject_ref(nid)), at=today, actor=actor, national_id=nid, organization=organization,
                birth_date=birth.isoformat(), payout=payout, start_month=month_text(month), band_amount_satang=rules.band_for(birth, month),
                request_id=None))
            if len(batch) == 5000:
                app.save(*batch)
                batch = []
        if batch:
            app.save(*batch)
    finally:
        app.close()
    return people


def catch_up_register(dsn: str) -> float:
    from onestop.bootstrap import build_back_office, build_register
    from onestop.settings import Settings

    settings = Settings.from_env({"ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": "bench", "ONESTOP_POOL_SIZE": "2", **h.KEY_ENV})
    app = build_back_office(settings)
    try:
        started = time.perf_counter()
        build_register(app).catch_up()
        return time.perf_counter() - started
    finally:
        app.close()


async def load_registry(url: str, people: list[dict[str, object]]) -> None:
    async with aiohttp.ClientSession() as session:
        for start in range(0, len(people), 5_000):
            async with session.post(f"{url}/admin/people", json={"people": people[start:start + 5_000]}) as response:
                assert response.status == 200, await response.text()


async def measure_run(dsn: str, organization: str, month: str, children: list[h.Child]) -> tuple[float, dict[str, object]]:
    """Start the run as the API does and wait for its last batch; seconds and the summary."""
    from domain.actors import Actor
    from onestop.bootstrap import build_back_office
    from onestop.settings import Settings

    settings = Settings.from_env({"ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": "bench", "ONESTOP_POOL_SIZE": "2", **h.KEY_ENV})
    app = build_back_office(settings)
    officer = Actor(sub="bench-officer", role="admin")
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        summary, _ = await asyncio.to_thread(app.start_run, organization, month, officer)
        run_id = summary["id"]
        batch_ids: list[str] | None = None
        # Poll the log, not the summary (which folds every batch): planned, and every batch settled.
        while True:
            for child in children:
                if child.proc.poll() is not None:
                    raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM onestop_events WHERE originator_id = $1::uuid AND topic = 'onestop:AllowanceRun.Planned') AS planned,"
                " (SELECT count(*) FROM onestop_events WHERE originator_id = $1::uuid AND topic = 'onestop:AllowanceRun.Failed') AS failed", run_id)
            if row["failed"]:
                raise RuntimeError(f"the run failed: {await asyncio.to_thread(app.run_summary, summary['id'])}")
            if row["planned"]:
                if batch_ids is None:
                    batch_ids = (await asyncio.to_thread(app.get_run, UUID(run_id))).batch_ids
                settled = await conn.fetchval(
                    "SELECT count(*) FROM onestop_events WHERE topic = 'onestop:DisbursementBatch.Settled' AND originator_id = ANY($1::uuid[])",
                    batch_ids)
                if settled == len(batch_ids):
                    break
            await asyncio.sleep(0.25)
        seconds = time.perf_counter() - started
        final = await asyncio.to_thread(app.run_summary, UUID(run_id))
        return seconds, final
    finally:
        await conn.close()
        app.close()


async def baseline(dsn: str, registry_url: str, bank_url: str, people: list[dict[str, object]], month: str) -> float:
    """The same outside work from one loop, disbursements COPYed into a plain table."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE IF NOT EXISTS bench_disbursements (recipient text, month text, amount int, status text, transfer_id text)")
    ids = [str(p["national_id"]) for p in people]
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        gate = asyncio.Semaphore(4)

        async def check(chunk: list[str]) -> list[dict[str, object]]:
            async with gate, session.post(f"{registry_url}/people/status", json={"national_ids": chunk}) as response:
                return (await response.json())["people"]

        answers = await asyncio.gather(*(check(ids[i:i + 5000]) for i in range(0, len(ids), 5000)))
        alive = [a["national_id"] for answer in answers for a in answer if a["alive"]]
        gate_bank = asyncio.Semaphore(16)

        async def pay(chunk: list[str]) -> list[tuple[str, str, int, str, str | None]]:
            lines = [{"key": f"baseline:{nid}:{month}", "amount_satang": 60_000, "kind": "promptpay", "account": nid} for nid in chunk]
            async with gate_bank, session.post(f"{bank_url}/transfers/bulk", json={"value_date": f"{month}-10", "lines": lines}) as response:
                result = (await response.json())["lines"]
            return [(line["key"], month, 60_000, line["status"], line.get("transfer_id")) for line in result]

        paid = await asyncio.gather(*(pay(alive[i:i + 1000]) for i in range(0, len(alive), 1000)))
        await conn.copy_records_to_table("bench_disbursements", records=[r for chunk in paid for r in chunk])
    seconds = time.perf_counter() - started
    await conn.close()
    return seconds


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[50_000, 200_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--worker-threads", type=int, default=8)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    small, large = sorted(args.sizes)
    dbname = await h.create_database("onestop_bench")
    dsn = h.db_dsn(dbname)
    log_dir = Path(tempfile.mkdtemp(prefix="onestop-allowance-bench-"))
    onestop = h.onestop_command()
    registry_port, bank_port = h.free_port(), h.free_port()
    registry_url, bank_url = f"http://127.0.0.1:{registry_port}", f"http://127.0.0.1:{bank_port}"
    env = {**os.environ, "ONESTOP_DATABASE_URL": dsn, "ONESTOP_JWT_SECRET": "bench-" + secrets.token_hex(8),
           "ONESTOP_SECRETS_KEY": "b25lc3RvcC10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE=", "ONESTOP_BROKER_URL": BROKER_URL,
           "ONESTOP_REGISTRY_URL": registry_url, "ONESTOP_BANK_URL": bank_url, "ONESTOP_POOL_SIZE": "4", **h.KEY_ENV,
           "ONESTOP_JOBS_QUEUE": f"onestop-bench-{secrets.token_hex(4)}", "ONESTOP_WORKER_THREADS": str(args.worker_threads),
           "ONESTOP_OUTSIDE_TIMEOUT_SECONDS": "60"}
    children: list[h.Child] = []
    today = datetime.now(timezone.utc).date()
    month = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    month_text = f"{month.year:04d}-{month.month:02d}"
    failed = False
    try:
        migrate = await asyncio.create_subprocess_exec(onestop, "migrate", env=env)
        assert await migrate.wait() == 0, "onestop migrate failed"
        sims = [h.start_child("registry", [onestop, "simulate", "registry", "--port", str(registry_port)], env, log_dir),
                h.start_child("bank", [onestop, "simulate", "bank", "--port", str(bank_port)], env, log_dir)]
        children += sims
        await h.wait_http_ok(f"{registry_url}/health", sims)
        await h.wait_http_ok(f"{bank_url}/health", sims)

        print(f"OneStop elderly-allowance run; {os.cpu_count()} cores; PostgreSQL {await h.server_version()}; month {month_text}")
        warmup = 1000
        sizes = {warmup: ORGANIZATIONS[2], small: ORGANIZATIONS[0], large: ORGANIZATIONS[1]}
        people_of: dict[int, list[dict[str, object]]] = {}
        for i, (size, organization) in enumerate(sizes.items()):
            started = time.perf_counter()
            people_of[size] = await asyncio.to_thread(seed, dsn, organization, size, i * 1_000_000, month)
            await load_registry(registry_url, people_of[size])
            print(f"seeded {size:,} recipients of {organization} in {time.perf_counter() - started:.1f} s (not measured)")
        view_seconds = await asyncio.to_thread(catch_up_register, dsn)
        print(f"register view caught up with {warmup + small + large:,} registrations in {view_seconds:.1f} s (the projector's work; not measured)")

        workers = [h.start_child("dispatcher", [onestop, "dispatcher"], env, log_dir),
                   h.start_child("worker", [onestop, "worker"], env, log_dir)]
        children += workers
        await asyncio.sleep(3)
        figures: dict[int, float] = {}
        print(f"\n{'recipients':>10} {'seconds':>8} {'disb/s':>8} {'paid':>8} {'refused':>8} {'ended':>6} {'baseline s':>10} {'ratio':>6}")
        for size, organization in sizes.items():
            seconds, summary = await measure_run(dsn, organization, month_text, workers)
            if size == warmup:  # connections, imports and the first messages: not measured
                continue
            base = await baseline(dsn, registry_url, bank_url, people_of[size], month_text)
            figures[size] = seconds
            disbursements = int(summary["paid"]) + int(summary["refused"])  # type: ignore[call-overload]
            print(f"{size:>10,} {seconds:>8.1f} {disbursements / seconds:>8.0f} {summary['paid']:>8,} {summary['refused']:>8,}"
                  f" {summary['ended']:>6,} {base:>10.1f} {seconds / base:>6.1f}")
            if summary["status"] != "completed":
                failed = True
                print(f"  run not completed: {summary}")
        per_recipient = (figures[large] - figures[small]) / (large - small)
        fixed = figures[large] - per_recipient * large
        print(f"\ntarget for {large:,}: <= {TARGET_SECONDS:.0f} s: {'PASS' if figures[large] <= TARGET_SECONDS else 'FAIL'}")
        print(f"extrapolated for 1,000,000 recipients: {fixed + per_recipient * 1_000_000:.0f} s "
              f"({fixed:.1f} s fixed + {per_recipient * 1_000_000:.0f} ms per 1,000 recipients)")
        print("\npeak resident memory (VmHWM):")
        for child in children:
            print(f"  {child.name:<11} {peak_rss_mb(child.proc.pid):8.0f} MB")
        print(f"  {'bench':<11} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:8.0f} MB (seeding and polling)")
    finally:
        h.stop_children(children)
        if args.keep_db:
            print(f"kept database {dbname}; logs in {log_dir}")
        else:
            await h.drop_database(dbname)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
