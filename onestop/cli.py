"""The `onestop` command: one console script, a subcommand per process.

This is the outermost ring: it reads Settings once, asks the composition root for the parts,
and starts the api, projector and the other processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from onestop.settings import Settings, SettingsError
from infrastructure.eventstore.following import start_thread
from onestop.processes import GRACE_SECONDS, stop_on_signals

log = logging.getLogger("onestop")


def _settings(require_secret: bool = True) -> Settings:
    try:
        return Settings.from_env(require_secret=require_secret)
    except SettingsError as error:
        sys.exit(f"onestop: {error}")


def _need_secrets_key(settings: Settings) -> Settings:
    """Processes that create or deliver webhooks keep their secrets encrypted: no key, no start."""
    try:
        settings.require_secrets_key()
    except SettingsError as error:
        sys.exit(f"onestop: {error}")
    return settings


def _need_database(settings: Settings) -> Settings:
    if settings.database_url is None:
        sys.exit("onestop: set ONESTOP_DATABASE_URL (or use `onestop run`, which starts an embedded PostgreSQL)")
    return settings


def cmd_migrate(args: argparse.Namespace) -> None:
    from onestop.bootstrap import migrate

    settings = _need_database(_settings(require_secret=False))
    migrate(settings)
    print("schema is up to date")


def cmd_token(args: argparse.Namespace) -> None:
    from api.auth import make_token

    settings = _settings(require_secret=False)
    if not settings.dev_tokens:
        sys.exit("onestop: development tokens are off (ONESTOP_DEV_TOKENS is not 1), and the API refuses them. Get a real token"
                 " from a trusted issuer (ONESTOP_OIDC_ISSUERS): citizens sign in with ThaiD, staff with their organisation's"
                 " provider; a browser signs in at /v1/auth/{issuer}/login. On one machine, `onestop run` prints sign-in links"
                 " and tokens of its OIDC simulators. For development only, set ONESTOP_DEV_TOKENS=1 on the API and here.")
    if not os.environ.get("ONESTOP_JWT_SECRET"):
        sys.exit("onestop: set ONESTOP_JWT_SECRET to the secret the API uses")
    ttl = settings.jwt_max_ttl_seconds if args.ttl is None else args.ttl
    if not 0 < ttl <= settings.jwt_max_ttl_seconds:
        sys.exit(f"onestop: --ttl must be from 1 to {settings.jwt_max_ttl_seconds} seconds (ONESTOP_JWT_MAX_TTL); the API refuses longer-lived tokens")
    try:
        print(make_token(settings.jwt_secret, sub=args.sub, role=args.role, org=args.org, ttl_seconds=ttl, pid=args.pid, ial=args.ial))
    except ValueError as error:
        sys.exit(f"onestop: {error}")


def cmd_api(args: argparse.Namespace) -> None:
    from aiohttp import web

    from api.server import run as serve
    from onestop.bootstrap import build_api

    settings = _need_secrets_key(_need_database(_settings()))
    try:
        settings.require_blind_index_key()
    except SettingsError as error:
        sys.exit(f"onestop: {error}")
    from onestop.connection_budget import check_server, process_budget

    try:
        check_server(settings, sum(process_budget(settings, "api").values()), "onestop api")
    except SettingsError as error:
        sys.exit(f"onestop: {error}")
    host = args.host or settings.host
    port = args.port or settings.port

    async def make() -> web.Application:
        return await build_api(settings)

    print(f"OneStop API listening on http://{host}:{port}", flush=True)
    # SIGTERM: stop accepting, finish in-flight requests within the grace period, exit 0.
    serve(make(), host, port, shutdown_timeout=GRACE_SECONDS)


def cmd_projector(args: argparse.Namespace) -> None:
    from onestop.bootstrap import build_back_office, build_followers, build_views
    from infrastructure.errors import ProjectorBusy
    from infrastructure.views.projector import Projector

    settings = _need_database(_settings(require_secret=False))
    # One connection: catch-up and the followers run one after another (the lock has its own).
    # A rebuild writes on one while it decodes the next batch, which may read personal-data keys
    # on another (and it reads the log on a third, its own).
    app = build_back_office(settings, pool_max=2 if args.rebuild else 1)
    projector = Projector(app, build_views(app), batch_size=args.batch_size or (10_000 if args.rebuild else 2000), followers=build_followers(app))
    if args.retry_failed:
        try:
            applied, still = projector.retry_failed()
        finally:
            app.close()
        print(f"applied {len(applied)} set-aside events" + (f" (positions {', '.join(map(str, applied))})" if applied else ""))
        for failure in still:
            print(f"  still set aside: {failure.describe()}")
        sys.exit(1 if still else 0)
    if args.rebuild:
        before = projector.views.checksum()
        started = time.monotonic()
        total = max(app.recorder.max_notification_id() or 0, 1)

        def progress(done: int, position: int) -> None:
            print(f"\rrebuilding: {done} events, position {position}/{total} ({100 * position // total}%)", end="", flush=True)

        try:
            count = projector.rebuild(settings.database.conninfo(), progress)
        except ProjectorBusy as error:
            sys.exit(f"onestop: {error}")
        elapsed = time.monotonic() - started
        after = projector.views.checksum()
        # The rate counts applying the log; building the secondary indexes again is apart.
        applying = projector.fold_seconds or elapsed
        print(f"\nrebuilt {count} events in {applying:.2f}s ({count / applying if applying else 0:,.0f} events/s);"
              f" indexes built again in {projector.index_seconds:.2f}s; {elapsed:.2f}s in all;"
              f" {projector.fold_cpu_seconds:.2f}s CPU in this process applying the log")
        for table, checksum in after.items():
            same = "same as before" if before.get(table) == checksum else f"was {before.get(table)}"
            print(f"  {table}: {checksum} ({same})")
        # The views must never diverge silently: say which events they do not reflect.
        failures = projector.set_aside()
        if failures:
            print(f"{len(failures)} events set aside (the views do not reflect them; fix the cause, then run"
                  f" `onestop projector --retry-failed`):")
            for failure in failures:
                print(f"  {failure.describe()}")
        app.close()
        return
    stop = stop_on_signals()
    print("projector following the event log", flush=True)
    thread = start_thread("projector", projector.run, stop, settings.database.conninfo())
    stop.wait()
    # The loop ends its step, lets go of the election lock and closes its connection.
    thread.join(timeout=GRACE_SECONDS)
    app.close()


def _serve_jobs(settings: Settings, *, dispatch: bool, work: bool, threads: int) -> None:
    """Run the dispatcher, a worker, or both (the embedded case, on the in-process broker)."""
    import dramatiq

    from onestop.bootstrap import build_dispatcher, build_job_runtime
    from onestop.webhooks_process import declare_webhook_delivery
    from workers.broker import setup_broker

    from infrastructure.jobs.database_identity import database_marker, jobs_queue

    broker = setup_broker(settings.broker_url)
    import workers.actors as actors

    marker = database_marker(settings)
    queue = jobs_queue(settings, marker)
    actors.declare(broker, queue)

    declare_webhook_delivery(settings, broker)  # a worker delivers webhooks too

    stop = stop_on_signals()
    worker = None
    runtime = None
    if work:
        runtime = build_job_runtime(settings)
        actors.install(runtime)
        worker = dramatiq.Worker(broker, worker_threads=threads)
        worker.start()
        print(f"worker running {threads} threads on {'the in-process broker' if settings.broker_url is None else 'the broker'}, queue {queue}", flush=True)
    follower = None
    if dispatch:
        # With a worker here, one event store pool serves both (onestop.connection_budget).
        dispatcher = build_dispatcher(settings, broker, marker, app=runtime.app if runtime is not None else None)
        follower = start_thread("dispatcher", dispatcher.run, stop, settings.database.conninfo())
        print("dispatcher following the event log", flush=True)
        from infrastructure.jobs.sweeps import Sweeper
        from onestop.bootstrap import build_sweeper_send

        from onestop.bootstrap import daily_reconciliation

        sweeper = Sweeper(dispatcher.app, build_sweeper_send(settings, broker, marker), stale_seconds=settings.job_stale_seconds,
                          retry_grace_seconds=settings.job_max_backoff_ms / 1000, reconcile=daily_reconciliation(settings))
        # Supervised: a sweeper that loses its connection ends the process, and the supervisor
        # restarts it (the sweeps are idempotent and elected).
        start_thread("sweeper", sweeper.run, stop, settings.database.conninfo(), daemon=True, every_seconds=settings.job_sweep_seconds)
    stop.wait()
    # Stop taking work, finish what is in hand (within the grace period), then exit 0.
    if follower is not None:
        follower.join(timeout=GRACE_SECONDS)
    if worker is not None:
        from dramatiq.asyncio import get_event_loop_thread

        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            loop_thread.run_coroutine(actors.runtime().close())
        worker.stop(timeout=int(GRACE_SECONDS * 1000))


def cmd_dispatcher(args: argparse.Namespace) -> None:
    settings = _need_database(_settings(require_secret=False))
    if settings.broker_url is None:
        sys.exit("onestop: the dispatcher needs ONESTOP_BROKER_URL (without one, `onestop jobs` runs dispatcher and worker together)")
    _serve_jobs(settings, dispatch=True, work=False, threads=0)


def cmd_worker(args: argparse.Namespace) -> None:
    settings = _need_database(_settings(require_secret=False))
    if settings.broker_url is None:
        sys.exit("onestop: a worker needs ONESTOP_BROKER_URL (without one, `onestop jobs` runs dispatcher and worker together)")
    _need_secrets_key(settings)  # the worker also delivers webhooks from the broker's queue
    _serve_jobs(settings, dispatch=False, work=True, threads=args.threads or settings.worker_threads)


def cmd_jobs(args: argparse.Namespace) -> None:
    settings = _need_database(_settings(require_secret=False))
    if settings.broker_url is not None:
        _need_secrets_key(settings)  # on a shared broker its worker also takes webhook deliveries
    _serve_jobs(settings, dispatch=True, work=True, threads=args.threads or settings.worker_threads)


def cmd_audit(args: argparse.Namespace) -> None:
    """`onestop audit verify`: recompute the hash chain from the log; exit 1 when broken."""
    import json

    import asyncpg

    from infrastructure.audit.audit_chain import verify_chain

    settings = _need_database(_settings(require_secret=False))

    async def verify() -> dict[str, Any]:
        conn = await asyncpg.connect(settings.database.url())
        try:
            return (await verify_chain(conn)).as_dict()
        finally:
            await conn.close()

    verdict = asyncio.run(verify())
    print(json.dumps(verdict, indent=2))
    sys.exit(0 if verdict["status"] == "intact" else 1)


def cmd_webhooks(args: argparse.Namespace) -> None:
    from onestop.webhooks_process import serve_webhooks

    serve_webhooks(_need_secrets_key(_need_database(_settings(require_secret=False))))


def cmd_run(args: argparse.Namespace) -> None:
    from onestop.runner import run_all

    run_all(args)


def cmd_reconcile(args: argparse.Namespace) -> None:
    from datetime import date, datetime, timedelta

    from domain.calendar import BANGKOK
    from domain.errors import OneStopError
    from onestop.bootstrap import reconcile

    settings = _need_database(_settings(require_secret=False))
    try:
        day = date.fromisoformat(args.day) if args.day else datetime.now(BANGKOK).date() - timedelta(days=1)
    except ValueError:
        sys.exit("onestop: --day must be a date as YYYY-MM-DD")
    try:
        results = asyncio.run(reconcile(settings, day))
    except (OneStopError, SettingsError) as error:
        sys.exit(f"onestop: {error}")
    for result in results:
        print(f"{result['organization']} {result['day']}: matched {result['matched']['count']} ({result['matched']['amount_satang']} satang),"
              f" missing {len(result['missing'])}, unknown {len(result['unknown'])}, mismatched {len(result['mismatched'])}")
    sys.exit(0 if all(r["balanced"] for r in results) else 1)


def cmd_simulate(args: argparse.Namespace) -> None:
    from simulators.cli import run_bank, run_oidc, run_registry

    {"registry": run_registry, "bank": run_bank, "oidc": run_oidc}[args.system](args.rest)


def cmd_keys(args: argparse.Namespace) -> None:
    """`onestop keys rotate`: re-wrap every person's data key with a new master key; events are
    not touched."""
    from onestop.privacy_commands import rotate_master_key

    settings = _need_database(_settings(require_secret=False))
    new_file = Path(args.new_key_file) if args.new_key_file else None
    if new_file is None and settings.master_key_file is None:
        sys.exit("onestop: give --new-key-file PATH (a new key is written there if the file does not exist);"
                 " with ONESTOP_MASTER_KEY_FILE the key in that file is replaced")
    result = rotate_master_key(settings, new_file)
    print(json.dumps(result, indent=2))


def cmd_retention(args: argparse.Namespace) -> None:
    """`onestop retention report|sweep`: who retention erases (report: nobody is erased)."""
    from onestop.privacy_commands import retention

    settings = _need_database(_settings(require_secret=False))
    print(json.dumps(retention(settings, sweep=args.action == "sweep"), indent=2, ensure_ascii=False))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=os.environ.get("ONESTOP_LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="onestop", description="OneStop back office")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create or update the schema (idempotent)").set_defaults(fn=cmd_migrate)
    p = sub.add_parser("api", help="serve the HTTP API")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(fn=cmd_api)
    p = sub.add_parser("projector", help="keep the views current")
    p.add_argument("--rebuild", action="store_true", help="rebuild every view from the start of the log, then exit")
    p.add_argument("--batch-size", type=int, help="events per transaction (default 2000; 10000 with --rebuild)")
    p.add_argument("--retry-failed", action="store_true",
                   help="apply the events the views set aside again (after fixing the cause), then exit; 1 if some still fail")
    p.set_defaults(fn=cmd_projector)
    p = sub.add_parser("token", help="print a development token")
    p.add_argument("--role", required=True)
    p.add_argument("--sub", required=True)
    p.add_argument("--org")
    p.add_argument("--pid")
    p.add_argument("--ial", help="a citizen's identity assurance level, such as 2.3 (default: none, not checked)")
    p.add_argument("--ttl", type=int, help="seconds the token lives (default and most: ONESTOP_JWT_MAX_TTL, 43200)")
    p.set_defaults(fn=cmd_token)
    p = sub.add_parser("run", help="everything for one machine (embedded PostgreSQL unless ONESTOP_DATABASE_URL is set)")
    p.add_argument("--no-demo", action="store_true", help="do not add demo requests")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("simulate", help="run a simulator of an outside system")
    p.add_argument("system", choices=["registry", "bank", "oidc"])
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_simulate)
    sub.add_parser("dispatcher", help="enqueue a job for each event that needs outside work").set_defaults(fn=cmd_dispatcher)
    for name, fn, text in (("worker", cmd_worker, "run jobs from the broker"),
                           ("jobs", cmd_jobs, "dispatcher and worker in one process (in-process broker when ONESTOP_BROKER_URL is unset)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--threads", type=int, help="worker threads (default ONESTOP_WORKER_THREADS, 16)")
        p.set_defaults(fn=fn)
    p = sub.add_parser("audit", help="auditors' tools")
    p.add_argument("action", choices=["verify"], help="verify: recompute the event log's hash chain and report the first break")
    p.set_defaults(fn=cmd_audit)
    sub.add_parser("webhooks", help="deliver webhooks: follow the published feed and enqueue deliveries").set_defaults(fn=cmd_webhooks)
    p = sub.add_parser("keys", help="keys of personal data")
    p.add_argument("action", choices=["rotate"], help="rotate: re-wrap every data key with a new master key (events are not touched)")
    p.add_argument("--new-key-file", help="file of the new master key (created with a random key if missing); default: replace"
                                          " the key in ONESTOP_MASTER_KEY_FILE, keeping the old one as <file>.previous")
    p.set_defaults(fn=cmd_keys)
    p = sub.add_parser("retention", help="erase people whose every request passed its retention period")
    p.add_argument("action", choices=["report", "sweep"], help="report: list who would be erased (dry run); sweep: erase them")
    p.set_defaults(fn=cmd_retention)
    p = sub.add_parser("reconcile", help="match the bank's settlement file of a day to the receipts; exit 1 when something does not match")
    p.add_argument("--day", help="the Bangkok day, YYYY-MM-DD (default: yesterday)")
    p.set_defaults(fn=cmd_reconcile)
    args = parser.parse_args(argv)
    try:
        args.fn(args)
    except SettingsError as error:  # a missing or malformed setting: say which, without a traceback
        sys.exit(f"onestop: {error}")


if __name__ == "__main__":
    main()
