"""Fixtures for servers. Tests that need a server skip with the reason when run locally without
one, and fail when CI is set."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from domain.national_id import national_id_check_digit
from infrastructure.privacy.keys import BlindIndex
from infrastructure.secret_box import parse_key
from onestop.settings import DatabaseAddress, Settings


def national_id(n: int, first: str = "1") -> str:
    """A valid Thai national ID made from ``n`` (distinct ``n``, distinct IDs)."""
    head = f"{first}{n:011d}"
    return head + str(national_id_check_digit(head))

IN_CI = bool(os.environ.get("CI"))
ROOT = Path(__file__).resolve().parent.parent
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
# ONESTOP_SECRETS_KEY of the tests: the base64 of 32 bytes.
SECRETS_KEY = "b25lc3RvcC10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE="
# ONESTOP_MASTER_KEY and ONESTOP_BLIND_INDEX_KEY of the tests: base64 of 32 bytes each.
MASTER_KEY = "b25lc3RvcC10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM="
BLIND_INDEX_KEY = "b25lc3RvcC10ZXN0LWJsaW5kLWluZGV4LWtleS0zMiE="
# What every `onestop` process of the tests needs besides the database and the JWT secret.
KEY_ENV = {"ONESTOP_MASTER_KEY": MASTER_KEY, "ONESTOP_BLIND_INDEX_KEY": BLIND_INDEX_KEY}
# The blind index under that key: ids derived from a person (recipients, booking ledgers) are made from it.
SUBJECT_INDEX = BlindIndex(parse_key(BLIND_INDEX_KEY))


def unavailable(reason: str) -> None:
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_url() -> str | None:
    """The machine's PostgreSQL, or the embedded one when none is reachable."""
    url = os.environ.get("ONESTOP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        with psycopg.connect(DatabaseAddress.from_url(url).conninfo(), connect_timeout=3):
            return url
    except psycopg.OperationalError:
        pass
    if IN_CI:
        return None
    try:
        from onestop.embedded_db import start_embedded

        _, embedded_url = start_embedded(ROOT / ".onestop-test")
        return embedded_url
    except Exception:  # no embedded PostgreSQL on this platform
        return None


@pytest.fixture(scope="session")
def postgres_server() -> str:
    url = _server_url()
    if url is None:
        unavailable("no PostgreSQL at 127.0.0.1:5432 and no embedded PostgreSQL")
    return url  # type: ignore[return-value]


def create_database(server_url: str, prefix: str = "onestop_test") -> str:
    address = DatabaseAddress.from_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(address.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return DatabaseAddress(address.host, address.port, name, address.user, address.password).url()


def drop_database(server_url: str, url: str) -> None:
    address = DatabaseAddress.from_url(server_url)
    name = DatabaseAddress.from_url(url).dbname
    with psycopg.connect(address.conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings_for(url: str, **extra: str) -> Settings:
    env = {"ONESTOP_DATABASE_URL": url, "ONESTOP_JWT_SECRET": JWT_SECRET, "ONESTOP_DEV_TOKENS": "1", "ONESTOP_POOL_SIZE": "4", "ONESTOP_SECRETS_KEY": SECRETS_KEY,
           "ONESTOP_MASTER_KEY": MASTER_KEY, "ONESTOP_BLIND_INDEX_KEY": BLIND_INDEX_KEY, **extra}
    return Settings.from_env(env)


@pytest.fixture(scope="session")
def database_url(postgres_server: str) -> Iterator[str]:
    """A fresh database for the session, with the schema."""
    from onestop.bootstrap import migrate

    url = create_database(postgres_server)
    migrate(settings_for(url))
    yield url
    drop_database(postgres_server, url)


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings on an emptied database: every test starts from an empty log and empty views."""
    with psycopg.connect(DatabaseAddress.from_url(database_url).conninfo(), autocommit=True) as conn:
        tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
    return settings_for(database_url)
