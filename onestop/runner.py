"""`onestop run`: everything for one machine, as child processes of this one.

Without ONESTOP_DATABASE_URL it starts the embedded PostgreSQL in ONESTOP_DATA_DIR, so the
one-machine path runs the same code as production.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from onestop.settings import Settings
from infrastructure.eventstore.following import Backoff
from onestop.processes import GRACE_SECONDS, stop_on_signals

log = logging.getLogger("onestop.run")


def _secret(data_dir: Path, name: str = "jwt_secret") -> str:
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


def _wait_for_health(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def seed_demo(settings: Settings) -> int:
    """File a few demo requests through the real use cases, once, on an empty log."""
    from application.commands import SubmitCommand
    from domain.actors import Actor
    from onestop.bootstrap import build_back_office

    app = build_back_office(settings)
    try:
        if app.recorder.max_notification_id():
            return 0
        citizen = Actor(sub="3100600445635", role="citizen", pid="3100600445635")
        officer = Actor(sub="officer.saensuk", role="officer", org="MUN-SAENSUK")
        applicant = {"national_id": "3100600445635", "name": "สมชาย ใจดี"}
        bodies: list[tuple[Actor, dict[str, Any]]] = [
            (citizen, {"service": "complaint", "organization": "MUN-SAENSUK", "channel": "web", "applicant": applicant,
                       "details": {"subject": "ไฟถนนดับ", "description": "ไฟถนนหน้าบ้านดับมาสามคืน", "location": "ซอยแสนสุข 5"}}),
            (citizen, {"service": "local.flyer-permit", "organization": "MUN-SAENSUK", "channel": "mobile", "applicant": applicant,
                       "details": {"description": "ประกาศงานวัด", "area": "ตลาดหนองมน", "start_date": "2026-12-01", "end_date": "2026-12-07", "quantity": 200}}),
            (officer, {"service": "civil.certified-copy", "organization": "MUN-SAENSUK", "channel": "counter", "applicant": applicant,
                       "details": {"document": "house-registration", "copies": 2}}),
        ]
        for i, (actor, body) in enumerate(bodies):
            app.submit(SubmitCommand(body=body, actor=actor, request_hash=f"demo-{i}", idempotency_key=f"demo-{i}"))
        return len(bodies)
    finally:
        app.close()


SIMULATED_ISSUERS = """# Written by `onestop run`: its OIDC simulators, trusted as issuers (README "Signing in").
[[issuer]]
name = "thaid"
url = "{citizen}"
audience = "onestop"
kind = "citizen"
client_id = "onestop"

[[issuer]]
name = "staff"
url = "{staff}"
audience = "onestop"
kind = "staff"
role_claim = "onestop_role"
org_claim = "onestop_org"
client_id = "onestop"
"""


def _simulator_token(url: str, login: str) -> str:
    """A bearer token from an OIDC simulator's admin endpoint ("(unavailable)" if it is not up)."""
    import json

    request = urllib.request.Request(f"{url}/admin/tokens", data=json.dumps({"login": login}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(json.loads(response.read())["access_token"])
    except (OSError, ValueError, KeyError):
        return "(unavailable: the simulator did not answer)"


def banner(settings: Settings, base: str, *, generated_secret: bool, issuers: dict[str, str] | None = None) -> str:
    """What `onestop run` prints once the API is up. It never shows a secret. With its OIDC
    simulators (``issuers``: name → URL) it prints sign-in links and their tokens; otherwise
    development tokens only when the JWT secret is one `run` generated (in the data dir); a
    secret the operator supplied makes tokens only through `onestop token`."""
    from api.auth import make_token

    lines = [f"\nOneStop is running at {base}/v1  (OpenAPI: {base}/v1/openapi.json)"]
    if issuers:
        citizen, staff = issuers["thaid"], issuers["staff"]
        lines += [
            f"sign in with a browser (OIDC simulators: ThaiD-shaped at {citizen}, staff at {staff}):",
            f"  as citizen 3100600445635 (ial 2.3):  {base}/v1/auth/thaid/login?login_hint=3100600445635",
            f"  as officer of MUN-SAENSUK:           {base}/v1/auth/staff/login?login_hint=officer.saensuk",
            f"  as admin:                            {base}/v1/auth/staff/login?login_hint=admin.ops",
            "bearer tokens from the same simulators (1 h; more from POST <simulator>/admin/tokens {\"login\": ...}):",
            f"  citizen 3100600445635:  {_simulator_token(citizen, '3100600445635')}",
            f"  officer, MUN-SAENSUK:   {_simulator_token(staff, 'officer.saensuk')}",
            f"  admin:                  {_simulator_token(staff, 'admin.ops')}",
        ]
    elif generated_secret:
        ttl = settings.jwt_max_ttl_seconds
        lines += [
            f"development tokens, signed with the generated secret in {(settings.data_dir / 'jwt_secret').resolve()}:",
            f"  admin:                    {make_token(settings.jwt_secret, sub='dev-admin', role='admin', ttl_seconds=ttl)}",
            f"  officer, MUN-SAENSUK:     {make_token(settings.jwt_secret, sub='officer.saensuk', role='officer', org='MUN-SAENSUK', ttl_seconds=ttl)}",
            f"  citizen 3100600445635:    {make_token(settings.jwt_secret, sub='3100600445635', role='citizen', ttl_seconds=ttl)}",
        ]
    else:
        lines.append("ONESTOP_JWT_SECRET was supplied: make tokens with `onestop token` (no tokens are printed)")
    return "\n".join(lines)


def run_all(args: argparse.Namespace) -> None:
    from onestop.bootstrap import migrate

    settings = Settings.from_env(require_secret=False)
    env = dict(os.environ)
    # One machine's console: warnings and the banner, not every access line of every process.
    env.setdefault("ONESTOP_LOG_LEVEL", "WARNING")
    server = None
    if settings.database_url is None:
        from onestop.embedded_db import start_embedded

        print(f"starting the embedded PostgreSQL in {settings.data_dir.resolve()}", flush=True)
        server, url = start_embedded(settings.data_dir)
        settings = settings.with_database(url)
        env["ONESTOP_DATABASE_URL"] = url
    generated_secret = not os.environ.get("ONESTOP_JWT_SECRET")
    if generated_secret:
        env["ONESTOP_JWT_SECRET"] = _secret(settings.data_dir)
    if not os.environ.get("ONESTOP_SECRETS_KEY"):
        # token_urlsafe(32) is the URL-safe base64 of 32 random bytes: the key's format.
        env["ONESTOP_SECRETS_KEY"] = _secret(settings.data_dir, "secrets_key")
    if not os.environ.get("ONESTOP_MASTER_KEY") and not os.environ.get("ONESTOP_MASTER_KEY_FILE"):
        # The master key of personal data stays in its file (processes read it from there), so
        # that `onestop keys rotate` can replace it.
        _secret(settings.data_dir, "master_key")
        env["ONESTOP_MASTER_KEY_FILE"] = str((settings.data_dir / "master_key").resolve())
    if not os.environ.get("ONESTOP_BLIND_INDEX_KEY"):
        env["ONESTOP_BLIND_INDEX_KEY"] = _secret(settings.data_dir, "blind_index_key")
    settings = Settings.from_env(env)
    _check_connection_budget(settings)
    migrate(settings)
    if not args.no_demo:
        seed_demo(settings)

    if generated_secret:
        # Development tokens are on only where `run` made the secret itself (README "Signing in").
        env.setdefault("ONESTOP_DEV_TOKENS", "1")
    issuers = _simulated_issuers(settings, env)
    extra = _extra_processes(settings, env, issuers)
    commands = {"api": ["api"], "projector": ["projector"], **extra}
    supervisor = Supervisor(commands, env)
    stop = stop_on_signals()
    supervisor.start_all()
    base = f"http://{settings.host}:{settings.port}"
    if _wait_for_health(f"{base}/v1/health", 60) and all(_wait_for_health(f"{url}/health", 20) for url in issuers.values()):
        print(banner(settings, base, generated_secret=generated_secret, issuers=issuers), flush=True)
    else:
        print("onestop: the API did not become healthy within 60 s", file=sys.stderr, flush=True)
    try:
        while not stop.is_set():
            supervisor.check()
            stop.wait(0.5)
    finally:
        supervisor.stop_all()
        if server is not None:
            server.cleanup()


def describe_exit(returncode: int) -> str:
    """'exit status 70' or 'signal SIGKILL'."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


class Supervisor:
    """Runs each command as a child process and restarts a child that exits, after a capped
    exponential backoff (reset once the child has run for ``stable_seconds``), logging why it
    ended: what systemd or Kubernetes do in production, for one machine."""

    def __init__(self, commands: dict[str, list[str]], env: dict[str, str], *, stable_seconds: float = 60.0,
                 backoff: Callable[[], Backoff] = lambda: Backoff(initial=1.0, maximum=30.0)) -> None:
        self.commands = commands
        self.env = env
        self.stable_seconds = stable_seconds
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.started_at: dict[str, float] = {}
        self.restart_at: dict[str, float] = {}
        self.backoffs = {name: backoff() for name in commands}
        self.restarts: dict[str, int] = dict.fromkeys(commands, 0)

    def start(self, name: str) -> None:
        self.children[name] = subprocess.Popen([sys.executable, "-m", "onestop.cli", *self.commands[name]], env=self.env)
        self.started_at[name] = time.monotonic()

    def start_all(self) -> None:
        for name in self.commands:
            self.start(name)

    def check(self) -> None:
        """Note children that ended and restart those whose backoff has passed."""
        now = time.monotonic()
        for name, child in list(self.children.items()):
            if name in self.restart_at:
                if now >= self.restart_at[name]:
                    del self.restart_at[name]
                    self.restarts[name] += 1
                    log.warning("restarting %s", name)
                    self.start(name)
                continue
            if child.poll() is None:
                if now - self.started_at[name] >= self.stable_seconds:
                    self.backoffs[name].reset()
                continue
            delay = self.backoffs[name].next()
            log.warning("%s (pid %d) ended with %s after %.1fs; restarting in %.1fs",
                        name, child.pid, describe_exit(child.returncode), now - self.started_at[name], delay)
            self.restart_at[name] = now + delay

    def stop_all(self) -> None:
        """SIGTERM to every child, then wait for them to finish their work (the grace period)."""
        running = [c for c in self.children.values() if c.poll() is None]
        for child in running:
            child.terminate()
        deadline = time.monotonic() + GRACE_SECONDS + 5
        for name, child in self.children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within the grace period; killing it", name)
                child.kill()
                child.wait()


def _check_connection_budget(settings: Settings) -> None:
    """Refuse to start, saying what to change, when the server cannot hold the processes'
    connections (onestop.connection_budget)."""
    from onestop.connection_budget import check_server, run_budget
    from onestop.settings import SettingsError

    budget = run_budget(settings)
    try:
        check_server(settings, sum(budget.values()), "onestop run (" + ", ".join(f"{name} {n}" for name, n in budget.items()) + ")")
    except SettingsError as error:
        sys.exit(f"onestop: {error}")


def _simulated_issuers(settings: Settings, env: dict[str, str]) -> dict[str, str]:
    """Unless ONESTOP_OIDC_ISSUERS names real issuers: two OIDC simulators (ThaiD-shaped for
    citizens, a staff provider), trusted through an issuers file in the data dir. The processes
    are added by ``_extra_processes``; this returns name → URL."""
    if env.get("ONESTOP_OIDC_ISSUERS"):
        return {}
    host = settings.host
    issuers = {"thaid": f"http://{host}:{_free_port(host)}", "staff": f"http://{host}:{_free_port(host)}"}
    path = settings.data_dir / "oidc_issuers.toml"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(SIMULATED_ISSUERS.format(citizen=issuers["thaid"], staff=issuers["staff"]), encoding="utf-8")
    env["ONESTOP_OIDC_ISSUERS"] = str(path.resolve())
    return issuers


def _extra_processes(settings: Settings, env: dict[str, str], issuers: dict[str, str] | None = None) -> dict[str, list[str]]:
    """The outside-work processes: simulators of the registry and the bank (unless
    ONESTOP_REGISTRY_URL / ONESTOP_BANK_URL name real ones), the dispatcher and a worker (one
    process on the in-process broker when ONESTOP_BROKER_URL is unset)."""
    processes: dict[str, list[str]] = {}
    host = settings.host
    if settings.registry_url is None:
        port = _free_port(host)
        env["ONESTOP_REGISTRY_URL"] = f"http://{host}:{port}"
        processes["registry simulator"] = ["simulate", "registry", "--host", host, "--port", str(port)]
    if settings.bank_url is None:
        port = _free_port(host)
        env["ONESTOP_BANK_URL"] = f"http://{host}:{port}"
        processes["bank simulator"] = [
            "simulate", "bank", "--host", host, "--port", str(port), "--biller-id", settings.promptpay_biller_id,
            "--callback-url", f"http://{host}:{settings.port}/v1/payment-notifications/sim-bank",
        ]
    for name, url in (issuers or {}).items():
        port = url.rsplit(":", 1)[1]
        processes[f"{name} simulator"] = ["simulate", "oidc", "--kind", "citizen" if name == "thaid" else "staff", "--host", host,
                                          "--port", port, "--issuer", url]
    if not env.get("ONESTOP_BANK_CALLBACK_SECRET"):
        env["ONESTOP_BANK_CALLBACK_SECRET"] = _secret(settings.data_dir, "bank_callback_secret")
    if settings.broker_url is None:
        processes["jobs"] = ["jobs"]
    else:
        processes["dispatcher"] = ["dispatcher"]
        processes["worker"] = ["worker"]
    processes["webhooks"] = ["webhooks"]
    return processes


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
