"""The jobs stack for tests: simulators as processes (`onestop simulate`), the API in-process,
a projector, and the dispatcher and worker either in-process on the real RabbitMQ or as
`onestop dispatcher` / `onestop worker` processes that a test can kill."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import tempfile
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import aiohttp
import dramatiq

from onestop.bootstrap import build_dispatcher, build_job_runtime
from onestop.settings import Settings
from tests.conftest import JWT_SECRET, KEY_ENV, ROOT, SECRETS_KEY, free_port, unavailable
from tests.integration.api_harness import Harness, eventually, token

RABBITMQ_URL = os.environ.get("ONESTOP_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672")
CALLBACK_SECRET = "bank-callback-secret-for-tests-0123456789"


def rabbitmq_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


LOG_DIR = Path(tempfile.gettempdir()) / "onestop-test-processes"


def start_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``onestop <args>`` in its own process group; its output goes to a file under
    LOG_DIR (see ``process_log``), so that a failing test can show what the process said."""
    LOG_DIR.mkdir(exist_ok=True)
    log_path = LOG_DIR / f"{args[0]}-{uuid.uuid4().hex[:8]}.log"
    with open(log_path, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "onestop.cli", *args], cwd=ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    process.log_path = log_path  # type: ignore[attr-defined]
    return process


def process_log(process: subprocess.Popen[bytes], lines: int = 40) -> str:
    """The process's exit status and the last ``lines`` lines of its output."""
    path = getattr(process, "log_path", None)
    tail = path.read_text(errors="replace").splitlines()[-lines:] if path and path.exists() else []
    return "\n".join([f"$ {' '.join(map(str, process.args[3:]))}  (exit status: {process.poll()})", *tail])


def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def delete_queues(queue: str) -> None:
    """Delete a test's jobs queue and its delay and dead-letter queues from the broker, so that
    runs do not leave queues behind on the machine's RabbitMQ."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
    try:
        channel = connection.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    finally:
        connection.close()


def forget(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` and delete its log."""
    kill(process)
    path = getattr(process, "log_path", None)
    if path is not None:
        path.unlink(missing_ok=True)


@dataclass
class JobsStack:
    harness: Harness
    settings: Settings
    registry_url: str
    bank_url: str
    env: dict[str, str]
    http: aiohttp.ClientSession
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _stops: list[Callable[[], None]] = field(default_factory=list)

    # -- outside systems ---------------------------------------------------------------------
    async def get(self, url: str) -> Any:
        async with self.http.get(url) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def set_faults(self, url: str, **faults: Any) -> None:
        async with self.http.put(f"{url}/admin/faults", json=faults) as response:
            assert response.status == 200, await response.text()

    async def stats(self, url: str) -> dict[str, Any]:
        return await self.get(f"{url}/admin/stats")

    async def people(self, **query: Any) -> list[dict[str, Any]]:
        q = "&".join(f"{k}={v}" for k, v in {"limit": 1000, **query}.items())
        return (await self.get(f"{self.registry_url}/people?{q}"))["items"]

    async def houses(self, organization: str) -> list[dict[str, Any]]:
        return (await self.get(f"{self.registry_url}/houses?limit=1000&organization={organization}"))["items"]

    async def pay(self, payload: str) -> dict[str, Any]:
        """What a banking app does after scanning the QR code (retried while the bank fails)."""
        for _ in range(100):
            async with self.http.post(f"{self.bank_url}/pay", json={"payload": payload}, headers={"Idempotency-Key": payload}) as response:
                if response.status == 201:
                    return await response.json()
                assert response.status >= 500, await response.text()
            await asyncio.sleep(0.05)
        raise AssertionError("the bank never took the payment")

    # -- the back office ----------------------------------------------------------------------
    async def request(self, request_id: str) -> dict[str, Any]:
        response = await self.harness.client.get(f"/v1/service-requests/{request_id}", headers=ADMIN)
        return await response.json() if response.status == 200 else {}

    async def wait_status(self, request_id: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            state = await self.request(request_id)
            return state if state.get("status") in statuses else None
        return await eventually(check, timeout, what=f"request {request_id} to become {statuses}")

    async def submit_as(self, person: dict[str, Any], service: str, details: dict[str, Any], organization: str | None = None) -> dict[str, Any]:
        body = {"service": service, "organization": organization or person["organization"], "channel": "web",
                "applicant": {"national_id": person["national_id"], "name": f"{person['first_name_th']} {person['last_name_th']}"},
                "details": details}
        return await self.harness.submit(body, headers=token("citizen", person["national_id"]))

    # -- processes -------------------------------------------------------------------------------
    def start(self, command: str) -> subprocess.Popen[bytes]:
        process = start_process([command], self.env)
        self.processes.append(process)
        return process

    def start_in_process_jobs(self, broker: dramatiq.Broker, *, dispatcher: bool = True, worker: bool = True, threads: int = 8) -> None:
        import workers.actors as actors

        actors.declare(broker, self.settings.jobs_queue)
        if worker:
            actors.install(build_job_runtime(self.settings))
            dramatiq_worker = dramatiq.Worker(broker, worker_threads=threads, queues={self.settings.jobs_queue})
            dramatiq_worker.start()

            def stop_worker() -> None:
                from dramatiq.asyncio import get_event_loop_thread

                get_event_loop_thread().run_coroutine(actors.runtime().close())
                dramatiq_worker.stop(timeout=5000)
                actors.runtime().app.close()

            self._stops.append(stop_worker)
        if dispatcher:
            stop = threading.Event()
            dispatch = build_dispatcher(self.settings, broker)
            thread = threading.Thread(target=dispatch.run, args=(stop, self.settings.database.conninfo()), kwargs={"poll_seconds": 0.2}, daemon=True)
            thread.start()
            self._stops.append(lambda: (stop.set(), thread.join(10), dispatch.app.close()))

    def describe_processes(self) -> str:
        """What each process the test started said last, for a failure message."""
        return "\n\n".join(process_log(p) for p in self.processes)

    def stop_all(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()
        for process in self.processes:
            forget(process)


ADMIN = token("admin", "admin.test")


def stack_settings(settings: Settings, registry_url: str, bank_url: str, **changes: Any) -> Settings:
    return replace(settings, broker_url=RABBITMQ_URL, registry_url=registry_url, bank_url=bank_url,
                   bank_callback_secret=CALLBACK_SECRET, jobs_queue=f"onestop-test-{uuid.uuid4().hex[:10]}",
                   job_min_backoff_ms=50, job_max_backoff_ms=500, job_max_retries=30, outside_timeout_seconds=1.0,
                   # These tests submit and poll in bursts from one token, and the bank notifies from loopback.
                   rate_limits=False, **changes)


def process_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "ONESTOP_DATABASE_URL": settings.database_url or "",
        "ONESTOP_JWT_SECRET": JWT_SECRET, **KEY_ENV,
        "ONESTOP_DEV_TOKENS": "1",
        "ONESTOP_BROKER_URL": settings.broker_url or "",
        "ONESTOP_REGISTRY_URL": settings.registry_url or "",
        "ONESTOP_BANK_URL": settings.bank_url or "",
        "ONESTOP_BANK_CALLBACK_SECRET": CALLBACK_SECRET,
        "ONESTOP_SECRETS_KEY": SECRETS_KEY,
        "ONESTOP_JOBS_QUEUE": settings.jobs_queue,
        "ONESTOP_JOB_MIN_BACKOFF_MS": str(settings.job_min_backoff_ms),
        "ONESTOP_JOB_MAX_BACKOFF_MS": str(settings.job_max_backoff_ms),
        "ONESTOP_JOB_MAX_RETRIES": str(settings.job_max_retries),
        "ONESTOP_OUTSIDE_TIMEOUT_SECONDS": str(settings.outside_timeout_seconds),
        "ONESTOP_PROMPTPAY_BILLER_ID": settings.promptpay_biller_id,
        "ONESTOP_RATE_LIMITS": "on" if settings.rate_limits else "off",
    }


async def wait_http(url: str, timeout: float = 20) -> None:
    async with aiohttp.ClientSession() as session:
        async def up() -> bool:
            try:
                async with session.get(url) as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False
        await eventually(up, timeout, what=url)


def simulator_processes(biller_id: str) -> tuple[str, str, list[subprocess.Popen[bytes]]]:
    registry_port, bank_port = free_port(), free_port()
    env = {**os.environ, "ONESTOP_BANK_CALLBACK_SECRET": CALLBACK_SECRET}
    processes = [
        start_process(["simulate", "registry", "--port", str(registry_port), "--timeout-seconds", "1.5"], env),
        start_process(["simulate", "bank", "--port", str(bank_port), "--biller-id", biller_id, "--timeout-seconds", "1.5",
                       "--late-seconds", "0.5", "--callback-secret", CALLBACK_SECRET], env),
    ]
    return f"http://127.0.0.1:{registry_port}", f"http://127.0.0.1:{bank_port}", processes


def require_rabbitmq() -> None:
    if not rabbitmq_reachable():
        unavailable("no RabbitMQ at 127.0.0.1:5672")
