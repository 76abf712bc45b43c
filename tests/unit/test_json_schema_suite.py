"""The official JSON-Schema-Test-Suite (draft 2020-12) against OneStop's validator wrapper, for
every keyword and format that OneStop's schemas use.

The suite is read from the jsonschema sdist that scripts/setup-venv.sh downloads into
.cache/json-schema-test-suite/ (not in git). Without it the test skips locally and fails under CI.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from api.payment_notices import NOTICE_SCHEMA
from api.subscriptions import SUBSCRIPTION_SCHEMA
from application.back_office import ACTION_SCHEMAS, RECORD_CASH_SCHEMA
from application.json_schema import check
from domain.catalogue import SERVICES
from domain.submission import SUBMISSION_SCHEMA

SDIST = Path(__file__).resolve().parents[2] / ".cache" / "json-schema-test-suite" / "jsonschema-4.26.0.tar.gz"
SUITE = "jsonschema-4.26.0/json/tests/draft2020-12/"
# Keywords that only describe (no assertion), and so have no suite file to run.
ANNOTATIONS = {"description", "title", "examples", "default"}


def onestop_schemas() -> list[dict[str, Any]]:
    return [SUBMISSION_SCHEMA, NOTICE_SCHEMA, SUBSCRIPTION_SCHEMA, RECORD_CASH_SCHEMA,
            *ACTION_SCHEMAS.values(), *(s.details_schema for s in SERVICES.values())]


def _walk(schema: Any) -> Iterator[tuple[str, Any]]:
    if not isinstance(schema, dict):
        return
    for keyword, value in schema.items():
        yield keyword, value
        if keyword == "properties":
            for sub in value.values():
                yield from _walk(sub)
        elif keyword == "items":
            yield from _walk(value)


def used_keywords() -> set[str]:
    return {k for schema in onestop_schemas() for k, _ in _walk(schema)} - ANNOTATIONS


def used_formats() -> set[str]:
    return {v for schema in onestop_schemas() for k, v in _walk(schema) if k == "format"}


def _suite() -> tarfile.TarFile:
    if not SDIST.exists():
        reason = f"the JSON-Schema-Test-Suite is not at {SDIST}; run scripts/setup-venv.sh"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
        pytest.skip(reason)
    return tarfile.open(SDIST)


def _cases(files: list[str]) -> list[tuple[str, Any, Any, bool]]:
    cases = []
    with _suite() as tar:
        for name in files:
            member = tar.extractfile(SUITE + name)
            assert member is not None, f"the suite has no {name}"
            for group in json.load(member):
                for test in group["tests"]:
                    cases.append((f"{name}: {group['description']}: {test['description']}", group["schema"], test["data"], test["valid"]))
    return cases


def test_onestop_uses_only_keywords_that_the_suite_covers_here() -> None:
    assert used_keywords() == {
        "type", "properties", "required", "additionalProperties", "enum", "minLength", "maxLength",
        "pattern", "minimum", "maximum", "format", "items", "maxItems",
    }
    # The custom "month" has no suite file; tests/unit/test_validation.py covers it.
    assert used_formats() == {"date", "date-time", "month"}


def test_the_validator_passes_the_official_suite_for_every_keyword_onestop_uses() -> None:
    # format.json checks that formats are only annotations by default; OneStop asserts them,
    # so its formats run against the suite's optional/format/ files instead.
    keywords = sorted(used_keywords() - {"format"})
    formats = sorted(used_formats() - {"month"}) + ["uuid"]
    cases = _cases([f"{k}.json" for k in keywords] + [f"optional/format/{f}.json" for f in formats])
    assert len(cases) > 300
    wrong = [name for name, schema, data, valid in cases if (check(schema, data) == []) != valid]
    assert wrong == []
