"""`onestop run`: everything for one machine, as child processes of this one.

Without ONESTOP_DATABASE_URL it starts the embedded PostgreSQL in ONESTOP_DATA_DIR, so the
one-machine path runs the same code as production.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from onestop.settings import Settings


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


def banner(settings: Settings, base: str, *, generated_secret: bool) -> str:
    """What `onestop run` prints once the API is up. It never shows a secret: development
    tokens only when the JWT secret is one `run` generated (in the data dir); a secret the
    operator supplied makes tokens only through `onestop token`."""
    from api.auth import make_token

    lines = [f"\nOneStop is running at {base}/v1  (OpenAPI: {base}/v1/openapi.json)"]
    if generated_secret:
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
    migrate(settings)
    if not args.no_demo:
        seed_demo(settings)

    extra = _extra_processes(settings, env)
    commands = {"api": ["api"], "projector": ["projector"], **extra}
    children: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> None:
        children[name] = subprocess.Popen([sys.executable, "-m", "onestop.cli", *commands[name]], env=env)

    for name in commands:
        start(name)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    base = f"http://{settings.host}:{settings.port}"
    if _wait_for_health(f"{base}/v1/health", 60):
        print(banner(settings, base, generated_secret=generated_secret), flush=True)
    else:
        print("onestop: the API did not become healthy within 60 s", file=sys.stderr, flush=True)
    try:
        while not stopping:
            for name, child in list(children.items()):
                if child.poll() is not None and not stopping:
                    print(f"onestop: {name} exited with {child.returncode}; restarting", file=sys.stderr, flush=True)
                    time.sleep(1)
                    start(name)
            time.sleep(0.5)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if server is not None:
            server.cleanup()


def _extra_processes(settings: Settings, env: dict[str, str]) -> dict[str, list[str]]:
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
