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
    jwt_max_ttl_seconds: int = 43_200
    promptpay_biller_id: str = DEMO_BILLER_ID
    pool_size: int = 4
    fees_file: Path | None = None  # ONESTOP_FEES_FILE: an alias of rules_file, kept for old deployments
    rules_file: Path | None = None
    broker_url: str | None = None
    registry_url: str | None = None
    bank_url: str | None = None
    bank_callback_secret: str = ""
    public_url: str | None = None  # ONESTOP_PUBLIC_URL: the API's public base URL, printed in receipts' QR codes
    webhooks_allow_private: bool = False
    job_max_retries: int = 8
    job_min_backoff_ms: int = 1000
    job_max_backoff_ms: int = 300_000
    outside_timeout_seconds: float = 10.0
    worker_threads: int = 16
    # Empty: derived from the database (infrastructure.jobs.database_identity.jobs_queue).
    jobs_queue: str = ""
    # Webhook retry schedule (seconds after the first attempt), and live-stream heartbeats.
    webhook_schedule: tuple[float, ...] = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)
    webhook_timeout_seconds: float = 10.0
    webhook_stranded_seconds: float = 60.0
    webhook_sweep_seconds: float = 5.0
    sse_heartbeat_seconds: float = 15.0
    # ONESTOP_SECRETS_KEY: the AES-256-GCM key that encrypts webhook secrets at rest.
    secrets_key: bytes | None = field(default=None, repr=False)
    # Abuse limits (api/limits.py): token buckets per subject, per client address and per
    # (bank provider, address); open live streams per subject; slow clients dropped.
    rate_limits: bool = True
    rate_subject_per_second: float = 20.0
    rate_subject_burst: int = 40
    rate_ip_per_second: float = 50.0
    rate_ip_burst: int = 100
    rate_notice_per_second: float = 200.0
    rate_notice_burst: int = 1000
    sse_max_streams_per_subject: int = 5
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
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

    def require_secrets_key(self) -> bytes:
        """The key for secrets kept at rest; SettingsError when it is not set (processes that
        create or deliver webhooks need it)."""
        if self.secrets_key is None:
            raise SettingsError(
                "ONESTOP_SECRETS_KEY is required to keep webhook secrets: the base64 of 32 random bytes, such as the"
                " output of `python -c \"import base64, os; print(base64.b64encode(os.urandom(32)).decode())\"`"
                " (`onestop run` makes one and keeps it in ONESTOP_DATA_DIR)"
            )
        return self.secrets_key

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
                              ("SSE_HEARTBEAT_SECONDS", 15), ("JWT_MAX_TTL", 43_200), ("RATE_SUBJECT_PER_SECOND", 20), ("RATE_SUBJECT_BURST", 40),
                              ("RATE_IP_PER_SECOND", 50), ("RATE_IP_BURST", 100), ("RATE_NOTICE_PER_SECOND", 200),
                              ("RATE_NOTICE_BURST", 1000), ("SSE_MAX_STREAMS_PER_SUBJECT", 5), ("HEADER_TIMEOUT_SECONDS", 10),
                              ("BODY_TIMEOUT_SECONDS", 30)):
            raw = env.get(f"ONESTOP_{name}", str(default))
            try:
                numbers[name] = float(raw)
            except ValueError:
                raise SettingsError(f"ONESTOP_{name} must be a number, not {raw!r}") from None
            if numbers[name] < 0:
                raise SettingsError(f"ONESTOP_{name} must not be negative")
        if numbers["JWT_MAX_TTL"] < 1:
            raise SettingsError("ONESTOP_JWT_MAX_TTL must be at least 1 second")
        port, pool_size = int(numbers["PORT"]), int(numbers["POOL_SIZE"])
        rate_limits = env.get("ONESTOP_RATE_LIMITS", "on").strip().lower()
        if rate_limits not in ("on", "off"):
            raise SettingsError(f"ONESTOP_RATE_LIMITS must be on or off, not {rate_limits!r}")
        for name in ("RATE_SUBJECT_PER_SECOND", "RATE_SUBJECT_BURST", "RATE_IP_PER_SECOND", "RATE_IP_BURST",
                     "RATE_NOTICE_PER_SECOND", "RATE_NOTICE_BURST", "SSE_MAX_STREAMS_PER_SUBJECT",
                     "HEADER_TIMEOUT_SECONDS", "BODY_TIMEOUT_SECONDS"):
            if numbers[name] <= 0:
                raise SettingsError(f"ONESTOP_{name} must be greater than zero (ONESTOP_RATE_LIMITS=off turns the limits off)")
        for rate, burst in (("RATE_SUBJECT_PER_SECOND", "RATE_SUBJECT_BURST"), ("RATE_IP_PER_SECOND", "RATE_IP_BURST"),
                            ("RATE_NOTICE_PER_SECOND", "RATE_NOTICE_BURST")):
            if numbers[burst] < 1:
                raise SettingsError(f"ONESTOP_{burst} must be at least 1")
        schedule = cls.webhook_schedule
        if env.get("ONESTOP_WEBHOOK_SCHEDULE"):
            try:
                schedule = tuple(float(part) for part in env["ONESTOP_WEBHOOK_SCHEDULE"].split(","))
            except ValueError:
                raise SettingsError("ONESTOP_WEBHOOK_SCHEDULE must be comma-separated seconds, such as 0,5,300") from None
            if any(step < 0 for step in schedule):
                raise SettingsError("ONESTOP_WEBHOOK_SCHEDULE must be comma-separated non-negative seconds")
        secrets_key = None
        if env.get("ONESTOP_SECRETS_KEY"):
            from infrastructure.secret_box import parse_key

            try:
                secrets_key = parse_key(env["ONESTOP_SECRETS_KEY"])
            except ValueError as error:
                raise SettingsError(f"ONESTOP_SECRETS_KEY {error}: it must be the base64 of 32 random bytes") from None
        return cls(
            database_url=database_url,
            data_dir=Path(env.get("ONESTOP_DATA_DIR", ".onestop")),
            host=env.get("ONESTOP_HOST", "127.0.0.1"),
            port=port,
            jwt_secret=secret,
            jwt_max_ttl_seconds=int(numbers["JWT_MAX_TTL"]),
            promptpay_biller_id=biller,
            pool_size=pool_size,
            fees_file=Path(env["ONESTOP_FEES_FILE"]) if env.get("ONESTOP_FEES_FILE") else None,
            rules_file=Path(env["ONESTOP_RULES_FILE"]) if env.get("ONESTOP_RULES_FILE") else None,
            broker_url=env.get("ONESTOP_BROKER_URL") or None,
            registry_url=env.get("ONESTOP_REGISTRY_URL") or None,
            bank_url=env.get("ONESTOP_BANK_URL") or None,
            bank_callback_secret=env.get("ONESTOP_BANK_CALLBACK_SECRET", ""),
            public_url=env.get("ONESTOP_PUBLIC_URL") or None,
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
            secrets_key=secrets_key,
            rate_limits=rate_limits == "on",
            rate_subject_per_second=numbers["RATE_SUBJECT_PER_SECOND"],
            rate_subject_burst=int(numbers["RATE_SUBJECT_BURST"]),
            rate_ip_per_second=numbers["RATE_IP_PER_SECOND"],
            rate_ip_burst=int(numbers["RATE_IP_BURST"]),
            rate_notice_per_second=numbers["RATE_NOTICE_PER_SECOND"],
            rate_notice_burst=int(numbers["RATE_NOTICE_BURST"]),
            sse_max_streams_per_subject=int(numbers["SSE_MAX_STREAMS_PER_SUBJECT"]),
            header_timeout_seconds=numbers["HEADER_TIMEOUT_SECONDS"],
            body_timeout_seconds=numbers["BODY_TIMEOUT_SECONDS"],
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
