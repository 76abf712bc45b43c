"""Settings: read from the environment once, into one frozen object."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from domain.errors import OneStopError
from api.limits import LimitSettings
from infrastructure.integrations.delivery import DEFAULT_SCHEDULE

DEMO_BILLER_ID = "099400016601001"
# The edge limits' defaults are the limiter's own (api/limits.py).
_LIMITS = LimitSettings()


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
    webhooks_allow_private: bool = False
    job_max_retries: int = 8
    job_min_backoff_ms: int = 1000
    job_max_backoff_ms: int = 300_000
    outside_timeout_seconds: float = 10.0
    worker_threads: int = 16
    # Empty: derived from the database (infrastructure.jobs.database_identity.jobs_queue).
    jobs_queue: str = ""
    allowance_batch_lines: int = 1000  # disbursements per bank bulk transfer (and per batch event)
    # Webhook retry schedule (seconds after the first attempt), and live-stream heartbeats.
    webhook_schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    webhook_timeout_seconds: float = 10.0
    webhook_stranded_seconds: float = 60.0
    webhook_sweep_seconds: float = 5.0
    sse_heartbeat_seconds: float = 15.0
    # ONESTOP_SECRETS_KEY: the AES-256-GCM key that encrypts webhook secrets at rest.
    secrets_key: bytes | None = field(default=None, repr=False)
    # ONESTOP_BLIND_INDEX_KEY: the HMAC-SHA-256 key of subject references (access log, lookups).
    blind_index_key: bytes | None = field(default=None, repr=False)
    # The access log's batches: flushed every this many milliseconds, or sooner at this many rows.
    access_log_flush_ms: int = 200
    access_log_batch_rows: int = 500
    # Abuse limits (api/limits.py): token buckets per subject, per client address and per
    # (bank provider, address); open live streams per subject; slow clients dropped.
    rate_limits: bool = _LIMITS.enabled
    rate_subject_per_second: float = _LIMITS.subject_per_second
    rate_subject_burst: int = _LIMITS.subject_burst
    rate_ip_per_second: float = _LIMITS.ip_per_second
    rate_ip_burst: int = _LIMITS.ip_burst
    rate_notice_per_second: float = _LIMITS.notice_per_second
    rate_notice_burst: int = _LIMITS.notice_burst
    sse_max_streams_per_subject: int = _LIMITS.sse_max_streams_per_subject
    header_timeout_seconds: float = _LIMITS.header_timeout_seconds
    body_timeout_seconds: float = _LIMITS.body_timeout_seconds
    # Operations: a follower with events waiting that has not moved for this long is stalled;
    # a pending job this old is sent again; how often the sweeps look.
    stall_seconds: float = 30.0
    job_stale_seconds: float = 300.0
    job_sweep_seconds: float = 30.0
    # Browsers (api/cors.py, api/streams.py): origins allowed to call the API cross-origin, with
    # credentials; how long a live-stream ticket may wait to be redeemed.
    cors_origins: tuple[str, ...] = ()
    stream_ticket_ttl_seconds: float = 60.0
    # Identity (README "Signing in"): HS256 development tokens only when dev_tokens; the trusted
    # OIDC issuers' file; where browser sign-in may return to; the API's public origin.
    dev_tokens: bool = False
    oidc_issuers_file: Path | None = None
    jwks_min_refresh_seconds: float = 10.0
    sign_in_origins: tuple[str, ...] = ()
    public_url: str | None = None  # ONESTOP_PUBLIC_URL: also printed in receipts' QR codes (the verify URL)
    # Personal data (infrastructure/privacy/): the master key that wraps each person's data key
    # (ONESTOP_MASTER_KEY, or read from ONESTOP_MASTER_KEY_FILE), older master keys still
    # accepted during a rotation, and the cache of unwrapped keys (the blind-index key is above).
    master_key: bytes | None = field(default=None, repr=False)
    master_key_file: Path | None = None
    master_key_previous: tuple[bytes, ...] = field(default=(), repr=False)
    encrypt_personal_data: bool = True
    key_cache_size: int = 50_000
    key_cache_seconds: float = 300.0
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

    def require_master_key(self) -> bytes:
        """The master key of personal data; SettingsError when it is not set: every process
        that reads or writes events needs it, and refuses to start without it."""
        if self.master_key is None:
            raise SettingsError(
                "ONESTOP_MASTER_KEY or ONESTOP_MASTER_KEY_FILE is required: personal data in the event log is encrypted"
                " with keys wrapped by it. Give the base64 of 32 random bytes (`python -c \"import base64, os;"
                " print(base64.b64encode(os.urandom(32)).decode())\"`), or a file holding it (`onestop run` makes one in"
                " ONESTOP_DATA_DIR). Keep it apart from the database and its backups: without it no personal data reads."
            )
        return self.master_key

    def require_blind_index_key(self) -> bytes:
        """The key of the national-ID blind index; SettingsError when it is not set."""
        if self.blind_index_key is None:
            raise SettingsError(
                "ONESTOP_BLIND_INDEX_KEY is required: national IDs are looked up, and readers of personal data recorded,"
                " by a keyed blind index (HMAC-SHA-256); keep it apart from ONESTOP_SECRETS_KEY."
                " Give the base64 of 32 random bytes (`onestop run` makes one in ONESTOP_DATA_DIR); it must stay the"
                " same for the life of the database"
            )
        return self.blind_index_key

    def with_database(self, url: str) -> Settings:
        return replace(self, database_url=url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, require_secret: bool = True) -> Settings:
        env = os.environ if env is None else env
        database_url = env.get("ONESTOP_DATABASE_URL") or None
        secret = env.get("ONESTOP_JWT_SECRET", "")
        dev_tokens = env.get("ONESTOP_DEV_TOKENS", "0").strip()
        if dev_tokens not in ("0", "1", ""):
            raise SettingsError(f"ONESTOP_DEV_TOKENS must be 1 (accept HS256 development tokens) or 0, not {dev_tokens!r}")
        if not secret:
            # The secret signs development tokens only: without them it is never used.
            if database_url is not None and require_secret and dev_tokens == "1":
                raise SettingsError("ONESTOP_JWT_SECRET is required when ONESTOP_DEV_TOKENS=1 and ONESTOP_DATABASE_URL is set")
            secret = secrets.token_urlsafe(32)
        biller = env.get("ONESTOP_PROMPTPAY_BILLER_ID") or DEMO_BILLER_ID
        if not (len(biller) == 15 and biller.isdigit()):
            raise SettingsError("ONESTOP_PROMPTPAY_BILLER_ID must be 15 digits (13-digit tax ID + 2-digit suffix)")
        numbers: dict[str, float] = {}
        for name, default in (("PORT", 8080), ("POOL_SIZE", 4), ("JOB_MAX_RETRIES", 8), ("JOB_MIN_BACKOFF_MS", 1000),
                              ("JOB_MAX_BACKOFF_MS", 300_000), ("OUTSIDE_TIMEOUT_SECONDS", 10), ("WORKER_THREADS", 16), ("ALLOWANCE_BATCH_LINES", 1000),
                              ("WEBHOOK_TIMEOUT_SECONDS", 10), ("WEBHOOK_STRANDED_SECONDS", 60), ("WEBHOOK_SWEEP_SECONDS", 5),
                              ("SSE_HEARTBEAT_SECONDS", 15), ("JWT_MAX_TTL", 43_200), ("RATE_SUBJECT_PER_SECOND", 20), ("RATE_SUBJECT_BURST", 40),
                              ("RATE_IP_PER_SECOND", 50), ("RATE_IP_BURST", 100), ("RATE_NOTICE_PER_SECOND", 200),
                              ("RATE_NOTICE_BURST", 1000), ("SSE_MAX_STREAMS_PER_SUBJECT", 5), ("HEADER_TIMEOUT_SECONDS", 10),
                              ("BODY_TIMEOUT_SECONDS", 30), ("STREAM_TICKET_TTL_SECONDS", 60), ("JWKS_MIN_REFRESH_SECONDS", 10)):
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
        if not 1 <= numbers["STREAM_TICKET_TTL_SECONDS"] <= 3600:
            raise SettingsError("ONESTOP_STREAM_TICKET_TTL_SECONDS must be from 1 to 3600 seconds")
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
        # Where browser sign-in may return to: its own list, else the CORS allowlist (one parser for both).
        cors_origins = parse_origins(env.get("ONESTOP_CORS_ORIGINS", ""))
        sign_in_origins = (parse_origins(env["ONESTOP_SIGN_IN_ORIGINS"], "ONESTOP_SIGN_IN_ORIGINS")
                           if env.get("ONESTOP_SIGN_IN_ORIGINS") else cors_origins)
        public_url = (env.get("ONESTOP_PUBLIC_URL") or "").rstrip("/") or None
        if public_url is not None and not public_url.startswith(("http://", "https://")):
            raise SettingsError("ONESTOP_PUBLIC_URL must be the API's origin as browsers reach it, such as https://onestop.example.go.th")
        privacy = _privacy_settings(env)
        return cls(
            **privacy,
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
            webhooks_allow_private=env.get("ONESTOP_WEBHOOKS_ALLOW_PRIVATE") == "1",
            job_max_retries=int(numbers["JOB_MAX_RETRIES"]),
            job_min_backoff_ms=int(numbers["JOB_MIN_BACKOFF_MS"]),
            job_max_backoff_ms=int(numbers["JOB_MAX_BACKOFF_MS"]),
            outside_timeout_seconds=numbers["OUTSIDE_TIMEOUT_SECONDS"],
            worker_threads=max(1, int(numbers["WORKER_THREADS"])),
            allowance_batch_lines=min(5000, max(1, int(numbers["ALLOWANCE_BATCH_LINES"]))),
            jobs_queue=env.get("ONESTOP_JOBS_QUEUE") or "",
            webhook_schedule=schedule,
            webhook_timeout_seconds=numbers["WEBHOOK_TIMEOUT_SECONDS"],
            webhook_stranded_seconds=numbers["WEBHOOK_STRANDED_SECONDS"],
            webhook_sweep_seconds=numbers["WEBHOOK_SWEEP_SECONDS"],
            sse_heartbeat_seconds=numbers["SSE_HEARTBEAT_SECONDS"],
            secrets_key=secrets_key,
            access_log_flush_ms=int(_seconds(env, "ACCESS_LOG_FLUSH_MS", 200)),
            access_log_batch_rows=int(_seconds(env, "ACCESS_LOG_BATCH_ROWS", 500)),
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
            cors_origins=cors_origins,
            stream_ticket_ttl_seconds=numbers["STREAM_TICKET_TTL_SECONDS"],
            dev_tokens=dev_tokens == "1",
            oidc_issuers_file=Path(env["ONESTOP_OIDC_ISSUERS"]) if env.get("ONESTOP_OIDC_ISSUERS") else None,
            jwks_min_refresh_seconds=numbers["JWKS_MIN_REFRESH_SECONDS"],
            sign_in_origins=sign_in_origins,
            public_url=public_url,
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


def parse_origins(raw: str, setting: str = "ONESTOP_CORS_ORIGINS") -> tuple[str, ...]:
    """ONESTOP_CORS_ORIGINS: comma-separated origins, each ``scheme://host[:port]`` as a browser
    sends it in ``Origin`` (lower case, no path, no default port). ``*`` and ``null`` are refused:
    every origin allowed is allowed to send credentials, so each must be named."""
    origins: list[str] = []
    for part in raw.split(","):
        text = part.strip()
        if not text:
            continue
        problem = f"{setting}: {text!r} is not an origin such as https://oss.example.go.th or http://127.0.0.1:5173"
        if text in ("*", "null"):
            raise SettingsError(f"{setting} must name each origin; {text!r} is not allowed")
        parts = urlsplit(text.rstrip("/") if text.count("/") == 3 else text)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or parts.fragment \
                or parts.username is not None or parts.password is not None:
            raise SettingsError(problem)
        try:
            port = parts.port
        except ValueError:
            raise SettingsError(problem) from None
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        default = {"http": 80, "https": 443}[parts.scheme]
        origin = f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)
def _key(env: Mapping[str, str], name: str, value: str) -> bytes:
    from infrastructure.secret_box import parse_key

    try:
        return parse_key(value)
    except ValueError as error:
        raise SettingsError(f"{name} {error}: it must be the base64 of 32 random bytes") from None


def _privacy_settings(env: Mapping[str, str]) -> dict[str, object]:
    """The personal-data settings (keys, encryption switch, key cache)."""
    result: dict[str, object] = {}
    key_file = env.get("ONESTOP_MASTER_KEY_FILE") or None
    if env.get("ONESTOP_MASTER_KEY"):
        result["master_key"] = _key(env, "ONESTOP_MASTER_KEY", env["ONESTOP_MASTER_KEY"])
    elif key_file is not None:
        path = Path(key_file)
        try:
            text = path.read_text()
        except OSError as error:
            raise SettingsError(f"ONESTOP_MASTER_KEY_FILE {key_file} cannot be read ({error.strerror}): without the master key"
                                " no personal data can be read or written") from None
        result["master_key"] = _key(env, f"ONESTOP_MASTER_KEY_FILE ({key_file})", text)
    if key_file is not None:
        result["master_key_file"] = Path(key_file)
    if env.get("ONESTOP_MASTER_KEY_PREVIOUS"):
        result["master_key_previous"] = tuple(
            _key(env, "ONESTOP_MASTER_KEY_PREVIOUS", part) for part in env["ONESTOP_MASTER_KEY_PREVIOUS"].split(",") if part.strip()
        )
    if env.get("ONESTOP_BLIND_INDEX_KEY"):
        result["blind_index_key"] = _key(env, "ONESTOP_BLIND_INDEX_KEY", env["ONESTOP_BLIND_INDEX_KEY"])
    switch = env.get("ONESTOP_ENCRYPT_PERSONAL_DATA", "on").strip().lower()
    if switch not in ("on", "off"):
        raise SettingsError(f"ONESTOP_ENCRYPT_PERSONAL_DATA must be on or off, not {switch!r}")
    result["encrypt_personal_data"] = switch == "on"
    for name, default in (("KEY_CACHE_SIZE", 50_000), ("KEY_CACHE_SECONDS", 300)):
        raw = env.get(f"ONESTOP_{name}", str(default))
        try:
            number = float(raw)
        except ValueError:
            raise SettingsError(f"ONESTOP_{name} must be a number, not {raw!r}") from None
        if number <= 0:
            raise SettingsError(f"ONESTOP_{name} must be greater than zero")
        result[name.lower()] = int(number) if name == "KEY_CACHE_SIZE" else number
    return result
