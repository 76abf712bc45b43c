"""The payment-notice signature: the README's worked example, and the freshness window."""

from __future__ import annotations

import re

import pytest

from application.bank_signature import MAX_AHEAD_SECONDS, MAX_SKEW_SECONDS, NoticeNotAuthentic, check_notice, notice_signature
from tests.conftest import ROOT


def _readme_example() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Payment notices, for banks", 1)[1]
    rows = dict(re.findall(r"^\| `?([\w-]+)`? \| `([^`]*)`", section, re.M))
    return {name: rows[name] for name in ("secret", "timestamp", "provider", "body", "X-Bank-Signature")}


def test_the_readme_worked_example_is_the_signature_onestop_computes_and_accepts() -> None:
    example = _readme_example()
    body = example["body"].encode()
    digest = notice_signature(example["secret"], example["timestamp"], example["provider"], body)
    assert digest == example["X-Bank-Signature"]
    check_notice(example["secret"], example["timestamp"], digest, example["provider"], body, now=float(example["timestamp"]) + 10)


def test_the_example_is_refused_once_it_is_more_than_five_minutes_old_or_from_the_future() -> None:
    example = _readme_example()
    body, moment = example["body"].encode(), int(example["timestamp"])
    # Five seconds ahead pass for the clocks' drift; a minute ahead is from the future.
    check_notice(example["secret"], example["timestamp"], example["X-Bank-Signature"], example["provider"], body, now=moment - MAX_AHEAD_SECONDS)
    for now in (moment + MAX_SKEW_SECONDS + 1, moment - MAX_AHEAD_SECONDS - 1, moment - 60, moment - MAX_SKEW_SECONDS - 1):
        with pytest.raises(NoticeNotAuthentic) as refused:
            check_notice(example["secret"], example["timestamp"], example["X-Bank-Signature"], example["provider"], body, now=now)
        assert refused.value.field == "X-Bank-Timestamp"


def test_without_a_callback_secret_no_notice_is_accepted() -> None:
    with pytest.raises(NoticeNotAuthentic):
        check_notice("", "1764547200", notice_signature("", "1764547200", "sim-bank", b"{}"), "sim-bank", b"{}", now=1764547200)
