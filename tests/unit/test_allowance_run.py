"""The monthly run's use cases on the in-memory event store: planning, an interrupted plan
resumed, settling, the tally and a second run."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Iterator
from uuid import UUID

import pytest

from application.allowance import recipient_id, unkeyed_recipient_id
from application.back_office import BackOffice
from application.errors import Forbidden
from application.ports import Clock, ReferenceIssuer
from domain.actors import Actor
from domain.allowance import Recipient
from domain.organizations import SEED_ORGANIZATIONS, Directory
from onestop.rules_file import load_rules
from onestop.settings import DEMO_BILLER_ID
from tests.conftest import SUBJECT_INDEX

ORG = "MUN-SAENSUK"
OFFICER = Actor(sub="officer-1", role="officer", org=ORG)
SYSTEM = Actor(sub="onestop-worker", role="system")
RULES = load_rules()


class FixedClock(Clock):
    def now(self) -> datetime:
        return datetime(2026, 12, 3, 3, 0, tzinfo=timezone.utc)


class NoReferences(ReferenceIssuer):
    def issue(self, count: int, at: datetime) -> list[str]:
        return []


@pytest.fixture
def app() -> Iterator[BackOffice]:
    office = BackOffice({"PERSISTENCE_MODULE": "eventsourcing.popo"}, directory=Directory(SEED_ORGANIZATIONS),
                        fees=RULES.fee_schedule(date(2026, 12, 3)), rules=RULES, biller_id=DEMO_BILLER_ID,
                        references=NoReferences(), clock=FixedClock(), subject_index=SUBJECT_INDEX)
    office.batch_lines = 7
    yield office
    office.close()


def _register(app: BackOffice, count: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        nid = f"{1_000_000_000_000 + i}"
        birth = date(1940 + i % 30, 1 + i % 12, 5)
        rid = recipient_id(ORG, SUBJECT_INDEX.reference(nid))
        app.save(Recipient.register(id=rid, at=FixedClock().now(), actor=SYSTEM, national_id=nid, organization=ORG,
                                    birth_date=birth.isoformat(), payout={"kind": "bank", "account": f"{'999' if i == 3 else '100'}{i:07d}"},
                                    start_month="2027-01", band_amount_satang=0, request_id=None))
        rows.append({"id": rid, "national_id": nid, "birth_date": birth, "payout": {"kind": "bank", "account": f"{'999' if i == 3 else '100'}{i:07d}"},
                     "start_month": "2027-01", "band_amount_satang": 0, "status": "active"})
    return rows


def _lines_by_recipient(app: BackOffice, run_id: UUID) -> dict[str, int]:
    seen: dict[str, int] = {}
    for batch in app._batches(app.get_run(run_id)):
        for line in batch.lines:
            seen[line[0]] = seen.get(line[0], 0) + 1
    return seen


def _lines_by_recipient_of(app: BackOffice, run_id: UUID) -> list[str]:
    """Recipients in the batches of attempt 0 saved so far (the run's plan may not list them yet)."""
    return [line[0] for batch in app._saved_batches(run_id, 0) for line in batch.lines]


def test_a_plan_interrupted_between_saves_is_resumed_without_paying_anyone_twice_or_skipping_anyone(app: BackOffice, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _register(app, 40)
    summary, created = app.start_run(ORG, "2027-01", OFFICER)
    assert created and summary["status"] == "running"
    run_id = UUID(summary["id"])

    saves = {"n": 0}
    real_save = app.save

    def save_then_die(*aggregates: Any) -> Any:
        saves["n"] += 1
        if saves["n"] == 2:
            raise RuntimeError("worker killed")
        return real_save(*aggregates)

    with monkeypatch.context() as patch:
        patch.setattr("application.allowance.SAVE_BATCHES", 2)
        patch.setattr(app, "save", save_then_die)
        with pytest.raises(RuntimeError):
            app.plan_run(run_id, 0, rows, {}, SYSTEM)
    assert not app.get_run(run_id).planned
    first_saved = set(_lines_by_recipient_of(app, run_id))
    assert len(first_saved) == 14  # two batches of 7 were saved before the crash
    # Meanwhile the registry says the last person died last month: the resumed plan keeps the
    # lines already saved and batches only who is in none of them.
    dead = rows[-1]
    assert str(dead["id"]) not in first_saved
    assert app.plan_run(run_id, 0, rows, {dead["national_id"]: {"alive": False, "died_on": "2026-11-20"}}, SYSTEM)
    seen = _lines_by_recipient(app, run_id)
    eligible = {str(r["id"]) for r in rows if RULES.elderly_allowance(date(2027, 1, 10)).band_for(r["birth_date"], date(2027, 1, 1)) > 0}
    assert first_saved <= set(seen)
    assert set(seen) == eligible - {str(dead["id"])}
    assert set(seen.values()) == {1}
    assert app.get_recipient(dead["id"]).status == "ended"
    assert app.plan_run(run_id, 0, rows, {}, SYSTEM) is False  # planned already


def test_settled_batches_make_the_run_completed_with_its_figures_and_a_second_run_retries_only_the_refused(app: BackOffice) -> None:
    rows = _register(app, 20)
    summary, _ = app.start_run(ORG, "2027-01", OFFICER)
    run_id = UUID(summary["id"])
    app.plan_run(run_id, 0, rows, {}, SYSTEM)
    for batch in app._batches(app.get_run(run_id)):
        results = [[line[0], "refused" if line[5].startswith("999") else "paid", "account closed" if line[5].startswith("999") else None, "T"]
                   for line in batch.lines]
        assert app.settle_batch(batch.id, results, SYSTEM)
        assert not app.settle_batch(batch.id, results, SYSTEM)  # an answer recorded twice counts once
    done = app.run_summary(run_id)
    amounts = [RULES.elderly_allowance(date(2027, 1, 10)).band_for(r["birth_date"], date(2027, 1, 1)) for r in rows]
    assert done["status"] == "completed" and done["paid"] == 19 and done["refused"] == 1
    assert done["total_satang"] == sum(amounts) - amounts[3]
    assert sum(b["count"] for b in done["by_band"].values()) == 19
    again, created = app.start_run(ORG, "2027-01", OFFICER)
    assert not created and again["id"] == str(run_id) and again["status"] == "running"
    assert app.plan_run(run_id, 1, rows, {}, SYSTEM)
    retry = [b for b in app._batches(app.get_run(run_id)) if b.attempt == 1]
    assert [line[0] for b in retry for line in b.lines] == [str(rows[3]["id"])]
    csv_text = app.run_report_csv(run_id, OFFICER)
    assert csv_text.count("\r\n") == 21 and "account closed" in csv_text


def test_only_officers_of_the_organisation_start_its_run(app: BackOffice) -> None:
    with pytest.raises(Forbidden):
        app.start_run(ORG, "2027-01", Actor(sub="o", role="officer", org="MUN-PHRAE"))


def _approved_registration(national_id: str) -> Any:
    """What registering reads of an approved elderly-allowance request."""
    from types import SimpleNamespace
    from uuid import uuid4

    return SimpleNamespace(id=uuid4(), organization=ORG, applicant={"national_id": national_id, "name": "ผู้สูงอายุ"},
                           registry={"birth_date": "1950-04-01"}, details={"bank_account": "1000000001"})


def test_a_recipients_id_is_made_from_the_keyed_blind_index_and_registering_twice_keeps_one(app: BackOffice) -> None:
    nid = "1000000000001"
    recipient = app._register_recipient(_approved_registration(nid), OFFICER, FixedClock().now())
    assert recipient is not None and recipient.id == recipient_id(ORG, SUBJECT_INDEX.reference(nid))
    assert recipient.id != unkeyed_recipient_id(ORG, nid)  # the national ID alone does not give it
    app.save(recipient)
    assert app._register_recipient(_approved_registration(nid), OFFICER, FixedClock().now()) is None


def test_a_recipient_registered_before_ids_were_keyed_is_not_registered_again(app: BackOffice) -> None:
    nid = "1000000000002"
    app.save(Recipient.register(id=unkeyed_recipient_id(ORG, nid), at=FixedClock().now(), actor=SYSTEM, national_id=nid, organization=ORG,
                                birth_date="1950-04-01", payout={"kind": "bank", "account": "1000000002"}, start_month="2027-01",
                                band_amount_satang=60_000, request_id=None))
    assert app._register_recipient(_approved_registration(nid), OFFICER, FixedClock().now()) is None
