"""The API checked by machine: schemathesis generates valid and invalid calls from the OpenAPI
document for every operation, as a citizen and as an officer, against `onestop api` and
`onestop projector` running as processes on the real PostgreSQL.

Every call must answer without a server error and as the document says (status codes, content
types, headers, bodies), and a refused call (4xx) must leave the stored event count unchanged.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import sys
import time
import urllib.request
from typing import Any, Iterator

import psycopg
import pytest

from api.auth import make_token
from tests.conftest import JWT_SECRET, KEY_ENV, ROOT, SECRETS_KEY, create_database, drop_database, free_port, settings_for

import schemathesis  # noqa: E402  (a test dependency: missing, the suite fails, as it should under CI)
from hypothesis import HealthCheck, settings  # noqa: E402

pytestmark = pytest.mark.postgres

EXAMPLES_PER_OPERATION = int(os.environ.get("ONESTOP_FUZZ_EXAMPLES", "25"))
CITIZEN_ID = "3100600445635"
BANK_SECRET = "fuzz-bank-secret"
# Statuses that a call valid by the schema may still get because of who is calling or what exists:
# a citizen may not act as an officer (403), a random id names nothing (404), a business rule
# refuses the change (409, 412, 422: the national ID checksum, an organisation that does not offer
# the service...), and a read asked to wait for a position not yet in the views (503, Retry-After).
BUSINESS_REFUSALS = ["2xx", "401", "403", "404", "409", "412", "422", "429"]


def _onestop() -> list[str]:
    """The program of this checkout, as `onestop` runs it (python -m, so this tree's code runs)."""
    return [sys.executable, "-m", "onestop.cli"]


class Stack:
    def __init__(self, database_url: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        env = {
            **os.environ,
            "ONESTOP_DATABASE_URL": database_url,
            "ONESTOP_JWT_SECRET": JWT_SECRET, **KEY_ENV,
            "ONESTOP_DEV_TOKENS": "1",
            "ONESTOP_PORT": str(self.port),
            "ONESTOP_POOL_SIZE": "3",
            "ONESTOP_BANK_CALLBACK_SECRET": BANK_SECRET,
            "ONESTOP_RATE_LIMITS": "off",
            "ONESTOP_WEBHOOKS_ALLOW_PRIVATE": "0",
            "ONESTOP_SECRETS_KEY": SECRETS_KEY,
        }
        # The API's log goes to a file, not a pipe nobody reads while it runs (a full pipe would stall it).
        # ONESTOP_FUZZ_API_LOG=<file> keeps it, to read the traceback behind a 500.
        kept = os.environ.get("ONESTOP_FUZZ_API_LOG")
        self.api_log = open(kept, "w+") if kept else tempfile.TemporaryFile("w+")
        self.processes = [
            subprocess.Popen([*_onestop(), "api"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self.api_log, text=True),
            subprocess.Popen([*_onestop(), "projector"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ]
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/v1/openapi.json", timeout=2):
                    return
            except OSError:
                if self.processes[0].poll() is not None or time.monotonic() > deadline:
                    self.close()
                    self.api_log.seek(0)
                    raise AssertionError("onestop api did not start: " + self.api_log.read())
                time.sleep(0.2)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def stack(postgres_server: str) -> Iterator[Stack]:
    url = create_database(postgres_server, "onestop_fuzz")
    try:
        subprocess.run([*_onestop(), "migrate"], cwd=ROOT, env={**os.environ, "ONESTOP_DATABASE_URL": url, "ONESTOP_JWT_SECRET": JWT_SECRET, **KEY_ENV},
                       check=True, capture_output=True, timeout=120)
        running = Stack(url)
        try:
            yield running
        finally:
            running.close()
    finally:
        drop_database(postgres_server, url)


@pytest.fixture(scope="module")
def conninfo(stack: Stack) -> str:
    return settings_for(stack.database_url).database.conninfo()


@pytest.fixture(scope="module")
def api_schema(stack: Stack) -> Any:
    config = schemathesis.config.SchemathesisConfig.from_dict({
        "checks": {"positive_data_acceptance": {"expected-statuses": BUSINESS_REFUSALS}},
    })
    return schemathesis.openapi.from_url(f"{stack.base}/v1/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")

TOKENS = {
    "citizen": make_token(JWT_SECRET, sub=CITIZEN_ID, role="citizen"),
    "officer": make_token(JWT_SECRET, sub="officer.saensuk", role="officer", org="MUN-SAENSUK"),
}


def _event_count(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        return conn.execute("SELECT count(*) FROM onestop_events").fetchone()[0]


def _leaves_out_authorization(case: Any) -> bool:
    """A negative case whose headers leave out the required Authorization on purpose: adding a
    token would make it a valid call, which the API rightly accepts (401 is what it must answer)."""
    header = case.meta.components.get("header") if case.meta is not None else None
    return header is not None and not header.mode.is_positive and not (case.headers and "Authorization" in case.headers)


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented_and_refusals_write_nothing(case: Any, stack: Stack, conninfo: str) -> None:
    for role, token in TOKENS.items():
        headers = {"Authorization": f"Bearer {token}"}
        if (case.headers and "Authorization" in case.headers) or _leaves_out_authorization(case):
            headers = {}
        before = _event_count(conninfo)
        response = case.call_and_validate(base_url=stack.base, headers=headers, timeout=30)
        if response.status_code >= 400:
            after = _event_count(conninfo)
            assert after == before, f"{case.method} {case.formatted_path} as {role} answered {response.status_code} but wrote {after - before} events"
