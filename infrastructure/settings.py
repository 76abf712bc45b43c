"""Settings: read from the environment once, into one frozen object."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from domain.errors import OneStopError

DEMO_BILLER_ID = "099400016601001"


class SettingsError(OneStopError):
    """A setting is missing or malformed."""


@dataclass(frozen=True)
class DatabaseAddress:
    host: str
    port: int
    dbname: str
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> DatabaseAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            raise SettingsError("ONESTOP_DATABASE_URL must be a postgresql:// URL")
        query = parse_qs(parts.query)
        host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
        return cls(
            host=host,
            port=int(query.get("port", [parts.port or 5432])[0]),
            dbname=unquote(parts.path.lstrip("/")) or "postgres",
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
        )

    def conninfo(self) -> str:
        return f"host={self.host} port={self.port} dbname={self.dbname} user={self.user} password={self.password}"

    def url(self) -> str:
        if self.host.startswith("/"):
            return f"postgresql://{self.user}:{self.password}@/{self.dbname}?host={self.host}&port={self.port}"
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = Path(".onestop")
    host: str = "127.0.0.1"
    port: int = 8080
    jwt_secret: str = ""
    promptpay_biller_id: str = DEMO_BILLER_ID
    pool_size: int = 4
    fees_file: Path | None = None
    broker_url: str | None = None
    registry_url: str | None = None
    bank_url: str | None = None
    bank_callback_secret: str = ""
    webhooks_allow_private: bool = False
    job_max_retries: int = 8
    job_min_backoff_ms: int = 1000
    job_max_backoff_ms: int = 300_000
    outside_timeout_seconds: float = 10.0
    worker_threads: int = 16
    # Empty: derived from the database (infrastructure.database_identity.jobs_queue).
    jobs_queue: str = ""
    # Webhook retry schedule (seconds after the first attempt), and live-stream heartbeats.
    webhook_schedule: tuple[float, ...] = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)
    webhook_timeout_seconds: float = 10.0
    webhook_stranded_seconds: float = 60.0
    webhook_sweep_seconds: float = 5.0
    sse_heartbeat_seconds: float = 15.0
    # Operations: a follower with events waiting that has not moved for this long is stalled;
    # a pending job this old is sent again; how often the sweeps look.
    stall_seconds: float = 30.0
    job_stale_seconds: float = 300.0
    job_sweep_seconds: float = 30.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def database(self) -> DatabaseAddress:
        if self.database_url is None:
            raise SettingsError("no database URL: start the embedded PostgreSQL first")
        return DatabaseAddress.from_url(self.database_url)

    def with_database(self, url: str) -> Settings:
        return replace(self, database_url=url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, require_secret: bool = True) -> Settings:
        env = os.environ if env is None else env
        database_url = env.get("ONESTOP_DATABASE_URL") or None
        secret = env.get("ONESTOP_JWT_SECRET", "")
        if not secret:
            if database_url is not None and require_secret:
                raise SettingsError("ONESTOP_JWT_SECRET is required when ONESTOP_DATABASE_URL is set")
            secret = secrets.token_urlsafe(32)
        biller = env.get("ONESTOP_PROMPTPAY_BILLER_ID") or DEMO_BILLER_ID
        if not (len(biller) == 15 and biller.isdigit()):
            raise SettingsError("ONESTOP_PROMPTPAY_BILLER_ID must be 15 digits (13-digit tax ID + 2-digit suffix)")
        numbers: dict[str, float] = {}
        for name, default in (("PORT", 8080), ("POOL_SIZE", 4), ("JOB_MAX_RETRIES", 8), ("JOB_MIN_BACKOFF_MS", 1000),
                              ("JOB_MAX_BACKOFF_MS", 300_000), ("OUTSIDE_TIMEOUT_SECONDS", 10), ("WORKER_THREADS", 16),
                              ("WEBHOOK_TIMEOUT_SECONDS", 10), ("WEBHOOK_STRANDED_SECONDS", 60), ("WEBHOOK_SWEEP_SECONDS", 5),
                              ("SSE_HEARTBEAT_SECONDS", 15)):
            raw = env.get(f"ONESTOP_{name}", str(default))
            try:
                numbers[name] = float(raw)
            except ValueError:
                raise SettingsError(f"ONESTOP_{name} must be a number, not {raw!r}") from None
            if numbers[name] < 0:
                raise SettingsError(f"ONESTOP_{name} must not be negative")
        port, pool_size = int(numbers["PORT"]), int(numbers["POOL_SIZE"])
        schedule = cls.webhook_schedule
        if env.get("ONESTOP_WEBHOOK_SCHEDULE"):
            try:
                schedule = tuple(float(part) for part in env["ONESTOP_WEBHOOK_SCHEDULE"].split(","))
            except ValueError:
                raise SettingsError("ONESTOP_WEBHOOK_SCHEDULE must be comma-separated seconds, such as 0,5,300") from None
            if any(step < 0 for step in schedule):
                raise SettingsError("ONESTOP_WEBHOOK_SCHEDULE must be comma-separated non-negative seconds")
        return cls(
            database_url=database_url,
            data_dir=Path(env.get("ONESTOP_DATA_DIR", ".onestop")),
            host=env.get("ONESTOP_HOST", "127.0.0.1"),
            port=port,
            jwt_secret=secret,
            promptpay_biller_id=biller,
            pool_size=pool_size,
            fees_file=Path(env["ONESTOP_FEES_FILE"]) if env.get("ONESTOP_FEES_FILE") else None,
            broker_url=env.get("ONESTOP_BROKER_URL") or None,
            registry_url=env.get("ONESTOP_REGISTRY_URL") or None,
            bank_url=env.get("ONESTOP_BANK_URL") or None,
            bank_callback_secret=env.get("ONESTOP_BANK_CALLBACK_SECRET", ""),
            webhooks_allow_private=env.get("ONESTOP_WEBHOOKS_ALLOW_PRIVATE") == "1",
            job_max_retries=int(numbers["JOB_MAX_RETRIES"]),
            job_min_backoff_ms=int(numbers["JOB_MIN_BACKOFF_MS"]),
            job_max_backoff_ms=int(numbers["JOB_MAX_BACKOFF_MS"]),
            outside_timeout_seconds=numbers["OUTSIDE_TIMEOUT_SECONDS"],
            worker_threads=max(1, int(numbers["WORKER_THREADS"])),
            jobs_queue=env.get("ONESTOP_JOBS_QUEUE") or "",
            webhook_schedule=schedule,
            webhook_timeout_seconds=numbers["WEBHOOK_TIMEOUT_SECONDS"],
            webhook_stranded_seconds=numbers["WEBHOOK_STRANDED_SECONDS"],
            webhook_sweep_seconds=numbers["WEBHOOK_SWEEP_SECONDS"],
            sse_heartbeat_seconds=numbers["SSE_HEARTBEAT_SECONDS"],
            stall_seconds=_seconds(env, "STALL_SECONDS", 30),
            job_stale_seconds=_seconds(env, "JOB_STALE_SECONDS", 300),
            job_sweep_seconds=_seconds(env, "JOB_SWEEP_SECONDS", 30),
        )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(f"ONESTOP_{name}") or str(default)
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"ONESTOP_{name} must be a number of seconds, not {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"ONESTOP_{name} must be positive")
    return value
