"""The TaxNotice aggregate: one owner's land-and-building tax for one organisation and tax year.

A notice keeps the figures it was issued with (parcels, tax, reduction, due date, instalments):
a later change of the rules file does not touch it. Payments fill the instalments in order;
what is due on a day (with the surcharge and interest of s.68-70 once late) is computed from
the notice by `domain.land_tax.amount_due`.
"""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate

from domain.actors import Actor
from domain.errors import DomainError, TransitionNotAllowed
from domain.land_tax import AmountDue, Instalment, WarningNotice, amount_due

ISSUED, PARTLY_PAID, PAID, OVERDUE = "issued", "partly_paid", "paid", "overdue"
NOTICE_STATUSES = (ISSUED, PARTLY_PAID, PAID, OVERDUE)


class NothingToPay(TransitionNotAllowed):
    """The notice has nothing due (it is paid), or not that instalment."""


class NoticeNumberInvalid(DomainError):
    """A notice number must be a bank reference: only 0-9 and A-Z, at most 20 characters."""


def notice_number(tax_year: int, notice_id: UUID) -> str:
    """The notice's bill-payment Ref1: ``LT``, the tax year's last two digits, and the first 16
    characters of the base-32 form of the notice's id (A-Z and 2-7). Derived from the id, so
    issuing again gives the same number; only ``[0-9A-Z]``, 20 characters."""
    number = f"LT{tax_year % 100:02d}{base64.b32encode(notice_id.bytes)[:16].decode()}"
    if not (len(number) <= 20 and number.isascii() and number.isalnum() and number.upper() == number):
        raise NoticeNumberInvalid(number)
    return number


class TaxNotice(BaseAggregate[UUID]):
    TOPIC = "onestop:TaxNotice"

    class Event(AggregateEvent):
        actor: dict[str, Any]
        channel: str

    class Issued(Event, AggregateCreated):
        TOPIC = "onestop:TaxNotice.Issued"
        number: str
        organization: str
        tax_year: int
        owner_id: str
        owner_kind: str
        owner_name: str
        parcels: list[dict[str, Any]]
        tax_satang: int  # to pay: the parcels' tax less the reduction
        reduction_satang: int
        due_date: str  # ISO date
        instalments: list[dict[str, Any]] | None  # [{n, amount_satang, due_date}]

    class PaymentOpened(Event):
        """A PromptPay payment was opened for this notice. Every payment of a notice has the
        notice number as Ref1, so the notice keeps the open ones to tell them apart."""

        TOPIC = "onestop:TaxNotice.PaymentOpened"
        payment_id: UUID
        instalment: int | None
        amount_satang: int

        def apply(self, notice: TaxNotice) -> None:
            notice.open_payments[str(self.payment_id)] = self.amount_satang

    class PaymentReceived(Event):
        """Money for this notice arrived (QR or cash): the tax part fills the instalments."""

        TOPIC = "onestop:TaxNotice.PaymentReceived"
        payment_id: UUID
        instalment: int | None
        tax_satang: int
        surcharge_satang: int
        interest_satang: int
        paid_on: str  # ISO date, Bangkok

        def apply(self, notice: TaxNotice) -> None:
            notice.paid_satang += self.tax_satang
            notice.penalties_paid_satang += self.surcharge_satang + self.interest_satang
            notice.payment_ids.append(str(self.payment_id))
            notice.open_payments.pop(str(self.payment_id), None)

    class WarningRecorded(Event):
        """An officer served a warning notice (s.61) with a payment deadline."""

        TOPIC = "onestop:TaxNotice.WarningRecorded"
        received_on: str
        deadline: str

        def apply(self, notice: TaxNotice) -> None:
            notice.warning = {"received_on": self.received_on, "deadline": self.deadline}

    def __init__(self, *, number: str, organization: str, tax_year: int, owner_id: str, owner_kind: str, owner_name: str,
                 parcels: list[dict[str, Any]], tax_satang: int, reduction_satang: int, due_date: str,
                 instalments: list[dict[str, Any]] | None, actor: dict[str, Any]) -> None:
        self.number = number
        self.organization = organization
        self.tax_year = tax_year
        self.owner_id = owner_id
        self.owner_kind = owner_kind
        self.owner_name = owner_name
        self.parcels = parcels
        self.tax_satang = tax_satang
        self.reduction_satang = reduction_satang
        self.due_date = due_date
        self.instalments = instalments
        self.paid_satang = 0
        self.penalties_paid_satang = 0
        self.payment_ids: list[str] = []
        self.open_payments: dict[str, int] = {}  # payment id -> amount, in the order opened
        self.warning: dict[str, str] | None = None

    @classmethod
    def issue(cls, *, id: UUID, at: datetime, actor: Actor, channel: str, **fields: Any) -> TaxNotice:
        return cls._create(cls.Issued, id=id, timestamp=at, actor=actor.as_dict(), channel=channel, **fields)

    def open_payment(self, payment_id: UUID, instalment: int | None, amount_satang: int, actor: Actor, channel: str, at: datetime) -> None:
        self.trigger_event(self.PaymentOpened, payment_id=payment_id, instalment=instalment, amount_satang=amount_satang,
                           actor=actor.as_dict(), channel=channel, timestamp=at)

    def open_payment_for(self, amount_satang: int, other_than: str) -> str | None:
        """The newest payment still open for this amount, other than ``other_than``."""
        for payment_id, amount in reversed(self.open_payments.items()):
            if amount == amount_satang and payment_id != other_than:
                return payment_id
        return None

    def receive_payment(self, payment_id: UUID, instalment: int | None, tax_satang: int, surcharge_satang: int,
                        interest_satang: int, paid_on: date, actor: Actor, channel: str, at: datetime) -> None:
        if str(payment_id) in self.payment_ids:
            return
        self.trigger_event(self.PaymentReceived, payment_id=payment_id, instalment=instalment, tax_satang=tax_satang,
                           surcharge_satang=surcharge_satang, interest_satang=interest_satang, paid_on=paid_on.isoformat(),
                           actor=actor.as_dict(), channel=channel, timestamp=at)

    def record_warning(self, received_on: date, deadline: date, actor: Actor, at: datetime) -> None:
        if self.paid_satang >= self.tax_satang:
            raise NothingToPay("the notice is paid; there is nothing to warn about")
        if deadline < received_on:
            raise TransitionNotAllowed("the warning's deadline is before the day it is served")
        self.trigger_event(self.WarningRecorded, received_on=received_on.isoformat(), deadline=deadline.isoformat(),
                           actor=actor.as_dict(), channel="counter", timestamp=at)


# -- what is due, from a notice's figures (an aggregate's or a view row's) --------------------------


def plan_of(instalments: list[dict[str, Any]] | None) -> list[Instalment] | None:
    if not instalments:
        return None
    return [Instalment(i["n"], i["amount_satang"], date.fromisoformat(str(i["due_date"]))) for i in instalments]


def warning_of(warning: dict[str, Any] | None) -> WarningNotice | None:
    if not warning:
        return None
    return WarningNotice(date.fromisoformat(warning["received_on"]), date.fromisoformat(warning["deadline"]))


def due_on(tax_satang: int, due_date: str, instalments: list[dict[str, Any]] | None, paid_satang: int,
           warning: dict[str, Any] | None, on: date) -> AmountDue:
    """What the owner must pay on ``on`` to be up to date (s.52, s.68-70)."""
    return amount_due(tax_satang, date.fromisoformat(due_date), on, paid_satang=paid_satang, plan=plan_of(instalments),
                      warning=warning_of(warning))


def settle_all_on(tax_satang: int, due_date: str, instalments: list[dict[str, Any]] | None, paid_satang: int,
                  warning: dict[str, Any] | None, on: date) -> AmountDue:
    """What settles the whole notice on ``on``: every unpaid satang, with penalties where late."""
    due = due_on(tax_satang, due_date, instalments, paid_satang, warning, on)
    unpaid = max(tax_satang - paid_satang, 0)
    if due.surcharge_satang or due.interest_satang or due.instalments_ended:
        return due
    return AmountDue(unpaid, 0, 0)


def instalment_statuses(instalments: list[dict[str, Any]] | None, paid_satang: int, on: date) -> list[dict[str, Any]] | None:
    """Each instalment with ``status``: paid, overdue (its date passed unpaid) or unpaid."""
    if not instalments:
        return None
    covered, out = paid_satang, []
    for i in instalments:
        if covered >= i["amount_satang"]:
            status = PAID
            covered -= i["amount_satang"]
        else:
            covered = 0
            status = OVERDUE if on > date.fromisoformat(str(i["due_date"])) else "unpaid"
        out.append({"n": i["n"], "amount_satang": i["amount_satang"], "due_date": str(i["due_date"]), "status": status})
    return out


def notice_status(tax_satang: int, due_date: str, instalments: list[dict[str, Any]] | None, paid_satang: int,
                  warning: dict[str, Any] | None, on: date) -> str:
    if paid_satang >= tax_satang:
        return PAID
    due = due_on(tax_satang, due_date, instalments, paid_satang, warning, on)
    if due.surcharge_satang or due.interest_satang or due.instalments_ended:
        return OVERDUE
    return PARTLY_PAID if paid_satang > 0 else ISSUED
