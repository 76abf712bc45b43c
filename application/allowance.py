"""Elderly-allowance use cases: the register of recipients and the monthly run.

The run is three steps, each a job the dispatcher sends from the log (the outbox):
`start_run` records ``AllowanceRun.Started``; the plan job asks the registry about every
recipient in bulk and calls `plan_run`, which saves the run's plan, every `DisbursementBatch`
and the recipients it ends or moves up a band in ONE transaction (so a crash leaves either no
plan or the whole plan); each batch's job sends it to the bank and calls `settle_batch`. Every
step is safe to run twice: a plan or a settlement already recorded is left as it is, and the
bank's idempotency key is the recipient and the month, so a line is never paid twice.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any, Iterable, Mapping, Sequence
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.base import BackOfficeBase
from application.errors import Forbidden, NotFound
from application.ids import ID_NAMESPACE
from domain.actors import Actor
from domain.allowance import (
    COMPLETED,
    FAILED,
    REFUSED,
    RUNNING,
    AllowanceRun,
    DisbursementBatch,
    Recipient,
    RegistryStatus,
    RunTally,
    chunks,
    decide,
    month_text,
    parse_month,
)
from domain.calendar import bangkok_day
from domain.errors import InvalidCommand
from domain.service_request import ServiceRequest

ELDERLY_ALLOWANCE = "welfare.elderly-allowance"
DEFAULT_BATCH_LINES = 1000
SAVE_BATCHES = 10  # batches per transaction while a plan is saved


def recipient_id(organization: str, subject: str) -> UUID:
    """A recipient's id on an organisation's register. ``subject`` is the person's keyed reference
    (``BackOfficeBase.subject_ref``: the blind index of the national ID), so the id is the same for
    the same person, which keeps them on a register once, but cannot be computed from a national
    ID without the key."""
    return uuid5(ID_NAMESPACE, f"recipient\n{organization}\n{subject}")


def unkeyed_recipient_id(organization: str, national_id: str) -> UUID:
    """The id a recipient registered before ids were keyed has (made from the plain national
    ID): looked up, so that such a person is not registered again, and never made any more."""
    return uuid5(ID_NAMESPACE, f"recipient\n{organization}\n{national_id}")


def run_id(organization: str, month: str) -> UUID:
    return uuid5(ID_NAMESPACE, f"allowance-run\n{organization}\n{month}")


def batch_id(run: UUID, attempt: int, number: int) -> UUID:
    return uuid5(run, f"{attempt}/{number}")


def transfer_key(recipient: str, month: str) -> str:
    """The bank's idempotency key of one month's payment to one recipient."""
    return f"allowance:{recipient}:{month}"


def mask_account(account: str) -> str:
    return "X" * max(0, len(account) - 4) + account[-4:]


def describe_recipient(r: Recipient, position: int | None = None) -> dict[str, Any]:
    return {
        "id": str(r.id), "national_id": r.national_id, "organization": r.organization, "birth_date": r.birth_date,
        "payout": {"kind": r.payout["kind"], "account": mask_account(str(r.payout.get("account", "")))},
        "start_month": r.start_month, "band_amount_satang": r.band_amount_satang, "status": r.status,
        "reasons": list(r.reasons), "last_month": r.last_month, "request_id": r.request_id,
        "version": r.version, "position": position,
    }


def check_staff_of(actor: Actor, organization: str) -> None:
    """Officers act for their own organisation; admins for any."""
    if actor.role == "admin" or (actor.role == "officer" and actor.org == organization):
        return
    raise Forbidden(f"only an officer of {organization} or an admin may do this", [("organization", f"is not {actor.org or 'yours'}")])


class AllowanceOffice(BackOfficeBase):
    """The elderly-allowance use cases; BackOffice builds on them."""

    batch_lines = DEFAULT_BATCH_LINES

    # -- the register ------------------------------------------------------------------------

    def _register_recipient(self, request: ServiceRequest, actor: Actor, at: Any) -> Recipient | None:
        """An approved registration puts the applicant on the register (once per organisation)."""
        registry = request.registry or {}
        birth = registry.get("birth_date")
        if not birth:
            return None
        national_id = request.applicant["national_id"]
        rid = recipient_id(request.organization, self.subject_ref(national_id))
        for registered in (rid, unkeyed_recipient_id(request.organization, national_id)):
            try:
                self.repository.get(registered)
                return None  # already on this organisation's register
            except AggregateNotFoundError:
                pass
        day = bangkok_day(at)
        rules = self.allowance_rules(day, request.organization)
        start = rules.start_month(date.fromisoformat(birth), day)
        account = request.details.get("bank_account")
        payout = {"kind": "bank", "account": account} if account else {"kind": "promptpay", "account": national_id}
        return Recipient.register(
            id=rid, at=at, actor=actor, channel="counter", national_id=national_id, organization=request.organization,
            birth_date=birth, payout=payout, start_month=month_text(start),
            band_amount_satang=rules.band_for(date.fromisoformat(birth), start), request_id=str(request.id),
        )

    def get_recipient(self, rid: UUID) -> Recipient:
        try:
            recipient = self.repository.get(rid)
        except AggregateNotFoundError:
            raise NotFound("no such recipient") from None
        if not isinstance(recipient, Recipient):
            raise NotFound("no such recipient")
        return recipient

    def read_recipient(self, rid: UUID, actor: Actor) -> dict[str, Any]:
        recipient = self.get_recipient(rid)
        check_staff_of(actor, recipient.organization)
        return describe_recipient(recipient)

    def change_recipient(self, rid: UUID, action: str, reason: str, actor: Actor) -> dict[str, Any]:
        """Suspend or resume a recipient, with the reason."""
        recipient = self.get_recipient(rid)
        check_staff_of(actor, recipient.organization)
        at = self.clock.now()
        if action == "suspend":
            recipient.suspend(reason, actor, at)
        elif action == "resume":
            recipient.resume(reason, actor, at)
        else:
            raise InvalidCommand(f"unknown action {action!r}", [("action", "must be suspend or resume")])
        return describe_recipient(recipient, self._save(recipient))

    # -- runs --------------------------------------------------------------------------------

    def get_run(self, rid: UUID) -> AllowanceRun:
        try:
            run = self.repository.get(rid)
        except AggregateNotFoundError:
            raise NotFound("no such allowance run") from None
        if not isinstance(run, AllowanceRun):
            raise NotFound("no such allowance run")
        return run

    def start_run(self, organization: str, month: str, actor: Actor) -> tuple[dict[str, Any], bool]:
        """Start the run of ``organization`` for ``month``, or answer with the one already
        started (after asking it to send again the lines the bank refused, if it is finished).
        Returns the run's state and whether it was created now."""
        if organization not in self.directory:
            raise InvalidCommand("unknown organisation", [("organization", f"{organization} is not a known organisation")])
        check_staff_of(actor, organization)
        first = parse_month(month)
        at = self.clock.now()
        today = bangkok_day(at)
        if first < today.replace(day=1):
            raise InvalidCommand("a run is for the current or a later month", [("month", f"must be {month_text(today)} or later")])
        rid = run_id(organization, month)
        rules = self.allowance_rules(today, organization)
        run = AllowanceRun.start(id=rid, at=at, actor=actor, organization=organization, month=month,
                                 value_date=rules.payment_date(first).isoformat())
        try:
            position = self.save_at(run)
            return self.run_summary(rid) | {"position": position}, True
        except IntegrityError:
            pass
        run = self.get_run(rid)
        summary = self.run_summary(rid)
        if summary["status"] == COMPLETED and summary["refused"] > 0:
            run.request_retry(actor, at)
            try:
                position = self.save_at(run)
            except IntegrityError:
                position = None
            summary = self.run_summary(rid) | {"position": position}
        return summary, False

    def plan_run(self, rid: UUID, attempt: int, recipients: Sequence[Mapping[str, Any]], registry: Mapping[str, Mapping[str, Any]],
                 actor: Actor) -> bool:
        """Decide the run for each recipient and save the plan with its batches (one transaction).
        ``recipients`` are the organisation's register rows, ``registry`` the registry's answer
        per national ID (attempt 0 only). False when this attempt was planned already."""
        run = self.get_run(rid)
        if attempt in run.planned_attempts or run.failure is not None:
            return False
        at = self.clock.now()
        month = parse_month(run.month)
        rules = self.allowance_rules(rules_day_of(month, self), run.organization)
        changed: list[Any] = []
        lines: list[list[Any]] = []
        suspended = ended = 0
        if attempt == 0:
            for row in recipients:
                status = RegistryStatus.from_answer(registry[row["national_id"]]) if row["national_id"] in registry else None
                decision = decide(rules, status=row["status"], start_month=row["start_month"], birth=_day(row["birth_date"]),
                                  organization=run.organization, month=month, registry=status)
                if decision.action == "pay":
                    lines.append(_line(row, decision.amount_satang))
                    if decision.amount_satang != row["band_amount_satang"]:
                        recipient = self.get_recipient(UUID(str(row["id"])))
                        recipient.change_band(decision.amount_satang, run.month, actor, at)
                        changed.append(recipient)
                elif decision.action == "suspended":
                    suspended += 1
                elif decision.action == "end":
                    ended += 1
                    recipient = self.get_recipient(UUID(str(row["id"])))
                    recipient.end(decision.reason, decision.last_month, actor, at)
                    changed.append(recipient)
        else:
            # A retry sends again what the bank refused, to the recipient's payout account now.
            by_id = {str(row["id"]): row for row in recipients}
            for rec, (status, _, previous) in sorted(self._tally(run).outcome.items()):
                if status == REFUSED:
                    lines.append(_line(by_id[rec], previous[3]) if rec in by_id else previous)
        # Batches are saved a few at a time (a 200,000-line plan is tens of megabytes: one
        # transaction of that size stalls the recorder's pipeline), and the run's Planned event
        # last, with the recipients it ends. A plan interrupted between saves is resumed by the
        # job's next delivery: the batches already saved are kept, and only the recipients in
        # none of them are batched again, so nobody is paid twice or skipped.
        saved = list(self._saved_batches(rid, attempt))
        in_saved = {line[0] for batch in saved for line in batch.lines}
        total = len(lines) if attempt else len(in_saved | {line[0] for line in lines})
        lines = [line for line in lines if line[0] not in in_saved]
        batches = [
            DisbursementBatch.prepare(id=batch_id(rid, attempt, n), at=at, actor=actor, run_id=str(rid), organization=run.organization,
                                      month=run.month, value_date=run.value_date, attempt=attempt, number=n, lines=list(chunk))
            for n, chunk in enumerate(chunks(lines, self.batch_lines), start=len(saved))
        ]
        try:
            for group in chunks(batches, SAVE_BATCHES):
                self.save(*group)
            run.plan(attempt, [b.id for b in [*saved, *batches]], total, suspended, ended, actor, at)
            self.save(run, *changed)
        except IntegrityError:
            return False  # planned by another worker meanwhile
        return True

    def _saved_batches(self, rid: UUID, attempt: int) -> Iterable[DisbursementBatch]:
        number = 0
        while True:
            try:
                yield self.get_batch(batch_id(rid, attempt, number))
            except NotFound:
                return
            number += 1

    def settle_batch(self, bid: UUID, results: list[list[Any]], actor: Actor) -> bool:
        """The bank's answer for one batch; False when it was recorded already."""
        batch = self.get_batch(bid)
        if not batch.settle(results, actor, self.clock.now()):
            return False
        try:
            self.save(batch)
        except IntegrityError:
            return False
        return True

    def fail_run(self, rid: UUID, reason: str, actor: Actor) -> None:
        run = self.get_run(rid)
        run.fail(reason, actor, self.clock.now())
        try:
            self.save(run)
        except IntegrityError:
            pass

    def get_batch(self, bid: UUID) -> DisbursementBatch:
        try:
            batch = self.repository.get(bid)
        except AggregateNotFoundError:
            raise NotFound("no such disbursement batch") from None
        if not isinstance(batch, DisbursementBatch):
            raise NotFound("no such disbursement batch")
        return batch

    def _batches(self, run: AllowanceRun) -> Iterable[DisbursementBatch]:
        for bid in run.batch_ids:
            yield self.get_batch(UUID(bid))

    def _tally(self, run: AllowanceRun) -> RunTally:
        tally = RunTally()
        for batch in self._batches(run):
            tally.add_batch(batch.lines, batch.results)
        return tally.finish()

    def run_summary(self, rid: UUID, actor: Actor | None = None) -> dict[str, Any]:
        run = self.get_run(rid)
        if actor is not None:
            check_staff_of(actor, run.organization)
        tally = RunTally()
        unsettled = 0
        for batch in self._batches(run):
            tally.add_batch(batch.lines, batch.results)
            unsettled += not batch.settled
        tally.finish()
        if run.failure is not None:
            status = FAILED
        elif not run.planned or unsettled or run.requested_attempt not in run.planned_attempts | {0}:
            status = RUNNING
        else:
            status = COMPLETED
        return {
            "id": str(run.id), "organization": run.organization, "month": run.month, "value_date": run.value_date,
            "status": status, "progress": {"done": tally.done, "total": len(tally.outcome)},
            "paid": tally.paid, "refused": tally.refused, "suspended": run.suspended, "ended": run.ended,
            "total_satang": tally.total_satang,
            "by_band": {band: figures for band, figures in sorted(tally.by_band.items(), key=lambda kv: int(kv[0]))},
            "attempt": max(run.planned_attempts, default=0), "failure": run.failure, "version": run.version,
        }

    def run_report_csv(self, rid: UUID, actor: Actor) -> str:
        """The run's report for the Department of Local Administration: one row per line."""
        run = self.get_run(rid)
        check_staff_of(actor, run.organization)
        tally = self._tally(run)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["organization", "month", "value_date", "recipient_id", "national_id", "band_baht", "amount_baht",
                         "payout_kind", "status", "reason"])
        for rec, (status, reason, line) in sorted(tally.outcome.items(), key=lambda kv: kv[1][2][1]):
            writer.writerow([run.organization, run.month, run.value_date, rec, line[1], line[2] // 100, f"{line[3] / 100:.2f}",
                             line[4], status, reason or ""])
        return out.getvalue()


def rules_day_of(month: date, app: BackOfficeBase) -> date:
    """The day whose rules a month's run uses: the month's payment day."""
    return month.replace(day=app.allowance_rules(month).payment_day)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _line(row: Mapping[str, Any], amount: int) -> list[Any]:
    """A batch line (LINE_FIELDS): the band is the amount, a whole month."""
    payout = row["payout"]
    return [str(row["id"]), row["national_id"], amount, amount, payout["kind"], payout.get("account") or row["national_id"]]
