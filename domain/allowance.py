"""The elderly allowance (เบี้ยยังชีพผู้สูงอายุ): its rules, the register of recipients and the
monthly run that pays them.

The figures and dates come from the rules file (`AllowanceRules`, built from
``[[elderly_allowance]]`` and ``[[elderly_allowance_criterion]]``); this module holds the
arithmetic of months, ages and bands, and the aggregates:

- `Recipient`: one person on an organisation's register (registered when an officer approves a
  ``welfare.elderly-allowance`` request), active, suspended or ended.
- `AllowanceRun`: one organisation's run for one month; its id comes from the organisation and
  the month, so asking twice names the same run.
- `DisbursementBatch`: up to a few thousand disbursements of one run, prepared in one event and
  settled (paid or refused, per line) in one more: the monthly run is a real batch (about 11
  million people nationwide), and one event per line would spend the write lock per person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence
from uuid import UUID

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate

from domain.actors import Actor
from domain.errors import DomainError, InvalidCommand, TransitionNotAllowed

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

ACTIVE = "active"
SUSPENDED = "suspended"
ENDED = "ended"
RECIPIENT_STATUSES = (ACTIVE, SUSPENDED, ENDED)

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"

PAID = "paid"
REFUSED = "refused"

# A batch line, in this order (lists keep 200,000 lines small in the log).
LINE_FIELDS = ("recipient_id", "national_id", "band_satang", "amount_satang", "payout_kind", "payout_account")
RESULT_FIELDS = ("recipient_id", "status", "reason", "transfer_id")

MOVED_UNTIL_FISCAL_YEAR_END = "fiscal-year-end"
MOVED_UNTIL_MOVE_MONTH = "move-month"
MOVED_RULES = (MOVED_UNTIL_FISCAL_YEAR_END, MOVED_UNTIL_MOVE_MONTH)

OPERATORS = ("equals", "not_equals", "at_most", "at_least", "in")


class AllowanceError(DomainError):
    """An elderly-allowance rule was broken."""


# -- months and ages ---------------------------------------------------------------------------


def parse_month(value: str) -> date:
    """``"2026-12"`` → 1 December 2026. Raises `InvalidCommand` naming ``month``."""
    if not isinstance(value, str) or not MONTH.match(value):
        raise InvalidCommand("month must be YYYY-MM", [("month", "must be a month such as 2026-12")])
    return date(int(value[:4]), int(value[5:7]), 1)


def month_text(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def previous_month_end(month: date) -> date:
    return month - timedelta(days=1)


def age_on(birth: date, day: date) -> int:
    """Completed years on ``day`` (a birthday counts from that day)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def birthday(birth: date, years: int) -> date:
    """The day a person turns ``years`` (29 February turns on 1 March in common years)."""
    try:
        return birth.replace(year=birth.year + years)
    except ValueError:
        return date(birth.year + years, 3, 1)


def fiscal_year(day: date) -> int:
    """The Thai fiscal year (1 October to 30 September) of ``day``, by the Gregorian year it ends in."""
    return day.year + 1 if day.month >= 10 else day.year


# -- the rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """One eligibility criterion as data: a fact about the applicant (from the registry's answer
    or the request's details), an operator and a value. ``when_missing`` says what an unknown
    fact means: ``pass`` (a declaration not asked for) or ``refuse``."""

    code: str
    fact: str
    operator: str
    value: Any
    reason: str
    when_missing: str = "pass"
    effective_from: date = date(1900, 1, 1)
    until: date | None = None  # the day it stops applying (a repealed criterion), exclusive

    def refusal(self, facts: Mapping[str, Any]) -> str | None:
        if self.fact not in facts or facts[self.fact] is None:
            return None if self.when_missing == "pass" else f"{self.reason} (no {self.fact} given)"
        have = facts[self.fact]
        ok = {
            "equals": lambda: have == self.value,
            "not_equals": lambda: have != self.value,
            "at_most": lambda: isinstance(have, (int, float)) and have <= self.value,
            "at_least": lambda: isinstance(have, (int, float)) and have >= self.value,
            "in": lambda: have in self.value,
        }[self.operator]()
        return None if ok else self.reason


@dataclass(frozen=True)
class AllowanceRules:
    """The elderly-allowance rules in force on one day (see the rules file for each source)."""

    bands: tuple[tuple[int, int], ...] = ((60, 60_000), (70, 70_000), (80, 80_000), (90, 100_000))  # (from age, satang a month)
    counted_on: tuple[int, int] = (9, 1)  # (month, day) of the fiscal year's end year on which age is counted
    register_years_ahead: int = 1  # a person may register in the fiscal year before the one they qualify in
    payment_day: int = 10
    moved_paid_until: str = MOVED_UNTIL_FISCAL_YEAR_END
    paid_through_death_month: bool = True
    criteria: tuple[Criterion, ...] = ()

    @property
    def min_age(self) -> int:
        return self.bands[0][0]

    def amount_for_age(self, age: int) -> int:
        """0 under the first band; else the band's monthly amount in satang."""
        return next((amount for floor, amount in reversed(self.bands) if age >= floor), 0)

    def band_for(self, birth: date, month: date) -> int:
        """The amount for ``month``: a new band is paid from the month after the birthday that
        reaches it, so the age counted is the age on the last day of the month before."""
        return self.amount_for_age(age_on(birth, previous_month_end(month)))

    def qualifying_fiscal_year(self, birth: date) -> int:
        """The first fiscal year whose counting day (1 September) finds the person 60 or over."""
        year = birth.year + self.min_age
        return year if (birth.month, birth.day) <= self.counted_on else year + 1

    def registration_refusal(self, birth: date, today: date) -> str | None:
        """None when a person born on ``birth`` may register on ``today``: from the fiscal year
        before the one in which they qualify."""
        first = self.qualifying_fiscal_year(birth)
        if first <= fiscal_year(today) + self.register_years_ahead:
            return None
        opens = date(first - self.register_years_ahead - 1, 10, 1)
        return (f"the applicant is {age_on(birth, today)} and qualifies from the fiscal year ending {first};"
                f" registration opens on {opens.isoformat()}")

    def criteria_refusal(self, facts: Mapping[str, Any], today: date) -> str | None:
        for criterion in self.criteria:
            if criterion.effective_from <= today and (criterion.until is None or today < criterion.until):
                reason = criterion.refusal(facts)
                if reason is not None:
                    return f"{criterion.code}: {reason}"
        return None

    def start_month(self, birth: date, approved_on: date) -> date:
        """The first month paid: the month after the 60th birthday, and not before the month
        after the registration was approved."""
        return max(next_month(birthday(birth, self.min_age)), next_month(approved_on))

    def payment_date(self, month: date) -> date:
        return month.replace(day=self.payment_day)

    def last_month_after_move(self, moved_on: date) -> date:
        """The last month the old organisation pays a person who moved away."""
        if self.moved_paid_until == MOVED_UNTIL_FISCAL_YEAR_END:
            return date(fiscal_year(moved_on), 9, 1)
        return moved_on.replace(day=1)

    def last_month_after_death(self, died_on: date) -> date:
        month = died_on.replace(day=1)
        return month if self.paid_through_death_month else previous_month_end(month).replace(day=1)


def check_rules(name: str, rules: AllowanceRules) -> None:
    """Refuse unusable allowance rules, naming the entry."""
    if not rules.bands:
        raise AllowanceError(f"{name}: bands are required")
    ages = [a for a, _ in rules.bands]
    if ages != sorted(set(ages)) or any(amount <= 0 for _, amount in rules.bands):
        raise AllowanceError(f"{name}: bands must rise by age and pay a positive amount")
    if not 1 <= rules.payment_day <= 28:
        raise AllowanceError(f"{name}: payment_day must be from 1 to 28")
    if rules.moved_paid_until not in MOVED_RULES:
        raise AllowanceError(f"{name}: moved_paid_until must be one of {', '.join(MOVED_RULES)}")


# -- what a run decides for one recipient ------------------------------------------------------


@dataclass(frozen=True)
class RegistryStatus:
    """What the registry's batch answer says of one person."""

    found: bool = True
    alive: bool = True
    died_on: date | None = None
    organization: str | None = None
    moved_on: date | None = None

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> RegistryStatus:
        def day(key: str) -> date | None:
            value = answer.get(key)
            return date.fromisoformat(value) if value else None
        return cls(bool(answer.get("found", True)), bool(answer.get("alive", True)), day("died_on"), answer.get("organization"), day("moved_on"))


@dataclass(frozen=True)
class Decision:
    """``pay`` (with the amount), ``suspended`` (not paid this month, still on the register),
    ``end`` (taken off the register, with ``last_month``), or ``not_due`` (starts later)."""

    action: str
    amount_satang: int = 0
    reason: str = ""
    last_month: str | None = None


def decide(rules: AllowanceRules, *, status: str, start_month: str, birth: date, organization: str,
           month: date, registry: RegistryStatus | None) -> Decision:
    """What the run for ``month`` does for one recipient."""
    if status == ENDED:
        return Decision("not_due", reason="ended")
    if parse_month(start_month) > month:
        return Decision("not_due", reason="starts later")
    if registry is not None and not registry.found:
        return Decision("suspended", reason="not found in the civil registry")
    if registry is not None and (not registry.alive or registry.died_on):
        last = rules.last_month_after_death(registry.died_on) if registry.died_on else previous_month_end(month).replace(day=1)
        if month > last:
            return Decision("end", reason="deceased", last_month=month_text(last))
    if registry is not None and registry.organization and registry.organization != organization:
        moved_on = registry.moved_on or month
        last = rules.last_month_after_move(moved_on)
        if month > last:
            return Decision("end", reason=f"moved to {registry.organization}", last_month=month_text(last))
    if status == SUSPENDED:
        return Decision("suspended", reason="suspended by an officer")
    amount = rules.band_for(birth, month)
    if amount <= 0:
        return Decision("not_due", reason="under the first band")
    return Decision("pay", amount_satang=amount)


# -- the aggregates ----------------------------------------------------------------------------


class Recipient(BaseAggregate[UUID]):
    """One person on an organisation's register of elderly-allowance recipients."""

    TOPIC = "onestop:Recipient"

    class Event(AggregateEvent):
        actor: dict[str, Any]
        channel: str

    class Registered(Event, AggregateCreated):
        TOPIC = "onestop:Recipient.Registered"
        national_id: str
        organization: str
        birth_date: str
        payout: dict[str, Any]  # {"kind": "bank", "account": ...} or {"kind": "promptpay", "national_id": ...}
        start_month: str
        band_amount_satang: int
        request_id: str | None

    class Suspended(Event):
        TOPIC = "onestop:Recipient.Suspended"
        reason: str

        def apply(self, recipient: Recipient) -> None:
            recipient.status = SUSPENDED
            recipient.reasons.append({"status": SUSPENDED, "reason": self.reason})

    class Resumed(Event):
        TOPIC = "onestop:Recipient.Resumed"
        reason: str

        def apply(self, recipient: Recipient) -> None:
            recipient.status = ACTIVE
            recipient.reasons.append({"status": ACTIVE, "reason": self.reason})

    class Ended(Event):
        TOPIC = "onestop:Recipient.Ended"
        reason: str
        last_month: str | None

        def apply(self, recipient: Recipient) -> None:
            recipient.status = ENDED
            recipient.last_month = self.last_month
            recipient.reasons.append({"status": ENDED, "reason": self.reason})

    class BandChanged(Event):
        TOPIC = "onestop:Recipient.BandChanged"
        band_amount_satang: int
        month: str

        def apply(self, recipient: Recipient) -> None:
            recipient.band_amount_satang = self.band_amount_satang

    def __init__(self, *, national_id: str, organization: str, birth_date: str, payout: dict[str, Any], start_month: str,
                 band_amount_satang: int, request_id: str | None, actor: dict[str, Any], channel: str) -> None:
        self.national_id = national_id
        self.organization = organization
        self.birth_date = birth_date
        self.payout = payout
        self.start_month = start_month
        self.band_amount_satang = band_amount_satang
        self.request_id = request_id
        self.status = ACTIVE
        self.last_month: str | None = None
        self.reasons: list[dict[str, str]] = []

    @classmethod
    def register(cls, *, id: UUID, at: datetime, actor: Actor, channel: str = "system", **fields: Any) -> Recipient:
        return cls._create(cls.Registered, id=id, timestamp=at, actor=actor.as_dict(), channel=channel, **fields)

    def _emit(self, event_class: type[Event], actor: Actor, channel: str, at: datetime, **data: Any) -> None:
        self.trigger_event(event_class, timestamp=at, actor=actor.as_dict(), channel=channel, **data)

    def suspend(self, reason: str, actor: Actor, at: datetime) -> None:
        if self.status != ACTIVE:
            raise TransitionNotAllowed(f"only an active recipient can be suspended; this one is {self.status}")
        self._emit(self.Suspended, actor, "counter", at, reason=reason)

    def resume(self, reason: str, actor: Actor, at: datetime) -> None:
        if self.status != SUSPENDED:
            raise TransitionNotAllowed(f"only a suspended recipient can be resumed; this one is {self.status}")
        self._emit(self.Resumed, actor, "counter", at, reason=reason)

    def end(self, reason: str, last_month: str | None, actor: Actor, at: datetime) -> None:
        if self.status != ENDED:
            self._emit(self.Ended, actor, "system", at, reason=reason, last_month=last_month)

    def change_band(self, amount_satang: int, month: str, actor: Actor, at: datetime) -> None:
        if amount_satang != self.band_amount_satang:
            self._emit(self.BandChanged, actor, "system", at, band_amount_satang=amount_satang, month=month)


class AllowanceRun(BaseAggregate[UUID]):
    """One organisation's allowance run for one month."""

    TOPIC = "onestop:AllowanceRun"

    class Event(AggregateEvent):
        actor: dict[str, Any]
        channel: str

    class Started(Event, AggregateCreated):
        TOPIC = "onestop:AllowanceRun.Started"
        organization: str
        month: str
        value_date: str

    class Planned(Event):
        """The registry was asked about everyone; the batches to pay are prepared (same save)."""

        TOPIC = "onestop:AllowanceRun.Planned"
        attempt: int
        batch_ids: list[str]
        total: int
        suspended: int
        ended: int

        def apply(self, run: AllowanceRun) -> None:
            run.attempt = self.attempt
            run.batch_ids.extend(self.batch_ids)
            if self.attempt == 0:
                run.total, run.suspended, run.ended = self.total, self.suspended, self.ended
            run.planned_attempts.add(self.attempt)

    class RetryRequested(Event):
        """Lines the bank refused are sent again (their idempotency keys stay the same)."""

        TOPIC = "onestop:AllowanceRun.RetryRequested"
        attempt: int

        def apply(self, run: AllowanceRun) -> None:
            run.requested_attempt = self.attempt

    class Failed(Event):
        TOPIC = "onestop:AllowanceRun.Failed"
        reason: str

        def apply(self, run: AllowanceRun) -> None:
            run.failure = self.reason

    def __init__(self, *, organization: str, month: str, value_date: str, actor: dict[str, Any], channel: str) -> None:
        self.organization = organization
        self.month = month
        self.value_date = value_date
        self.attempt = -1
        self.requested_attempt = 0
        self.planned_attempts: set[int] = set()
        self.batch_ids: list[str] = []
        self.total = 0
        self.suspended = 0
        self.ended = 0
        self.failure: str | None = None

    @classmethod
    def start(cls, *, id: UUID, at: datetime, actor: Actor, organization: str, month: str, value_date: str) -> AllowanceRun:
        return cls._create(cls.Started, id=id, timestamp=at, actor=actor.as_dict(), channel="counter",
                           organization=organization, month=month, value_date=value_date)

    @property
    def planned(self) -> bool:
        return 0 in self.planned_attempts

    def plan(self, attempt: int, batch_ids: Sequence[UUID], total: int, suspended: int, ended: int, actor: Actor, at: datetime) -> None:
        if attempt in self.planned_attempts:
            raise TransitionNotAllowed(f"attempt {attempt} of this run is already planned")
        self.trigger_event(self.Planned, timestamp=at, actor=actor.as_dict(), channel="system", attempt=attempt,
                           batch_ids=[str(b) for b in batch_ids], total=total, suspended=suspended, ended=ended)

    def request_retry(self, actor: Actor, at: datetime) -> int:
        attempt = max(self.planned_attempts, default=0) + 1
        self.trigger_event(self.RetryRequested, timestamp=at, actor=actor.as_dict(), channel="counter", attempt=attempt)
        return attempt

    def fail(self, reason: str, actor: Actor, at: datetime) -> None:
        if self.failure is None:
            self.trigger_event(self.Failed, timestamp=at, actor=actor.as_dict(), channel="system", reason=reason)


class DisbursementBatch(BaseAggregate[UUID]):
    """Up to a few thousand disbursements of one run, sent to the bank in one bulk transfer."""

    TOPIC = "onestop:DisbursementBatch"

    class Event(AggregateEvent):
        actor: dict[str, Any]
        channel: str

    class Prepared(Event, AggregateCreated):
        TOPIC = "onestop:DisbursementBatch.Prepared"
        run_id: str
        organization: str
        month: str
        value_date: str
        attempt: int
        number: int
        lines: list[list[Any]]  # LINE_FIELDS

    class Settled(Event):
        """The bank's answer, per line (RESULT_FIELDS)."""

        TOPIC = "onestop:DisbursementBatch.Settled"
        results: list[list[Any]]

        def apply(self, batch: DisbursementBatch) -> None:
            batch.results = self.results

    def __init__(self, *, run_id: str, organization: str, month: str, value_date: str, attempt: int, number: int,
                 lines: list[list[Any]], actor: dict[str, Any], channel: str) -> None:
        self.run_id = run_id
        self.organization = organization
        self.month = month
        self.value_date = value_date
        self.attempt = attempt
        self.number = number
        self.lines = lines
        self.results: list[list[Any]] | None = None

    @classmethod
    def prepare(cls, *, id: UUID, at: datetime, actor: Actor, **fields: Any) -> DisbursementBatch:
        return cls._create(cls.Prepared, id=id, timestamp=at, actor=actor.as_dict(), channel="system", **fields)

    @property
    def settled(self) -> bool:
        return self.results is not None

    def settle(self, results: list[list[Any]], actor: Actor, at: datetime) -> bool:
        """Record the bank's answer; False (nothing recorded) when it was recorded already."""
        if self.settled:
            return False
        self.trigger_event(self.Settled, timestamp=at, actor=actor.as_dict(), channel="system", results=results)
        return True


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@dataclass
class RunTally:
    """The run's figures, folded from its batches."""

    total: int = 0
    done: int = 0
    paid: int = 0
    refused: int = 0
    suspended: int = 0
    ended: int = 0
    total_satang: int = 0
    by_band: dict[str, dict[str, int]] = field(default_factory=dict)
    outcome: dict[str, list[Any]] = field(default_factory=dict)  # recipient id → [status, reason, line]

    def add_batch(self, lines: list[list[Any]], results: list[list[Any]] | None) -> None:
        answers = {r[0]: r for r in results} if results else {}
        for line in lines:
            answer = answers.get(line[0])
            if answer is not None:
                self.outcome[line[0]] = [answer[1], answer[2], line]
            elif line[0] not in self.outcome:
                self.outcome[line[0]] = ["unsent", "", line]

    def finish(self) -> RunTally:
        for status, _, line in self.outcome.values():
            if status == PAID:
                self.paid += 1
                self.total_satang += line[3]
                band = self.by_band.setdefault(str(line[2]), {"count": 0, "satang": 0})
                band["count"] += 1
                band["satang"] += line[3]
            elif status == REFUSED:
                self.refused += 1
        self.done = self.paid + self.refused
        return self
