"""Matching the bank's settlement lines to the day's PromptPay receipts."""

from __future__ import annotations

from datetime import date, datetime, timezone
from uuid import uuid4

from domain.reconciliation import UNASSIGNED, Reconciliation, reconcile


def line(reference: str, amount: int, bank_id: str) -> dict:
    return {"bank_payment_id": bank_id, "reference": reference, "amount_satang": amount}


def receipt(number: str, org: str, reference: str, amount: int) -> dict:
    return {"number": number, "organization": org, "reference": reference, "amount_satang": amount}


def test_lines_and_receipts_are_matched_missing_unknown_or_mismatched_per_organisation() -> None:
    receipts = [
        receipt("R2570000001", "MUN-SAENSUK", "OS690000001", 1000),
        receipt("R2570000002", "MUN-SAENSUK", "OS690000002", 500),  # the bank did not settle it
        receipt("R2570000001", "SAO-BANBUENG", "OS690000003", 700),
        receipt("R2570000002", "SAO-BANBUENG", "OS690000004", 900),  # settled for another amount
    ]
    lines = [
        line("OS690000001", 1000, "PAY-1"),
        line("OS690000003", 700, "PAY-2"),
        line("OS690000004", 950, "PAY-3"),
        line("OS690000009", 300, "PAY-4"),  # a payment of SAENSUK's that has no receipt (e.g. after expiry)
        line("XX1", 200, "PAY-5"),  # matches nothing at all
    ]
    results = reconcile(lines, receipts, {"OS690000009": "MUN-SAENSUK"}.get)
    saensuk = results["MUN-SAENSUK"].as_dict()
    assert (saensuk["matched_count"], saensuk["matched_satang"]) == (1, 1000)
    assert [m["receipt_number"] for m in saensuk["missing"]] == ["R2570000002"]
    assert [u["bank_payment_id"] for u in saensuk["unknown"]] == ["PAY-4"]
    banbueng = results["SAO-BANBUENG"].as_dict()
    assert banbueng["matched_count"] == 1 and banbueng["mismatched"][0] == {
        "receipt_number": "R2570000002", "reference": "OS690000004", "receipt_satang": 900, "settled_satang": 950, "bank_payment_id": "PAY-3"}
    assert [u["reference"] for u in results[UNASSIGNED].unknown] == ["XX1"]


def test_a_run_that_finds_nothing_new_records_nothing() -> None:
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    reconciliation = Reconciliation.open(id=uuid4(), organization="MUN-SAENSUK", day=date(2026, 11, 30), at=at)
    result = reconcile([line("A1", 1, "P1")], [receipt("R1", "MUN-SAENSUK", "A1", 1)], lambda _: None)["MUN-SAENSUK"].as_dict()
    assert reconciliation.record(result, 1, at) is True
    assert reconciliation.record(result, 1, at) is False
    assert reconciliation.runs == 1
