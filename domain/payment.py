"""The Payment aggregate: a fee owed for a request, or land-and-building tax owed on a notice,
paid by PromptPay QR or in cash."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate

from domain.actors import Actor
from domain.errors import PaymentNotOpen

AWAITING_PAYMENT = "awaiting_payment"
PAID = "paid"
EXPIRED = "expired"
REFUNDED = "refunded"
PAYMENT_STATUSES = (AWAITING_PAYMENT, PAID, EXPIRED, REFUNDED)


class Payment(BaseAggregate[UUID]):
    TOPIC = "onestop:Payment"

    class Event(AggregateEvent):
        actor: dict[str, Any]
        channel: str

    class Opened(Event, AggregateCreated):
        TOPIC = "onestop:Payment.Opened"
        request_id: UUID
        reference: str
        organization: str
        amount_satang: int
        promptpay_payload: str
        expires_at: datetime
        # A payment of land-and-building tax belongs to a notice, not a request (request_id None):
        # the notice, the instalment paid (None: everything due) and the split of the amount
        # into tax, surcharge and interest as of the day it was opened.
        notice_id: UUID | None = None
        instalment: int | None = None
        breakdown: dict[str, int] | None = None

    class Received(Event):
        TOPIC = "onestop:Payment.Received"
        amount_satang: int
        method: str  # cash | promptpay
        provider_payment_id: str | None

        def apply(self, payment: Payment) -> None:
            payment.status = PAID
            payment.paid_amount_satang = self.amount_satang
            payment.method = self.method
            payment.provider_payment_ids.append(self.provider_payment_id)

    class Discrepancy(Event):
        """Money arrived that does not match what is owed; officers must look."""

        TOPIC = "onestop:Payment.Discrepancy"
        amount_satang: int
        provider_payment_id: str | None
        reason: str

        def apply(self, payment: Payment) -> None:
            payment.discrepancies.append({"amount_satang": self.amount_satang, "reason": self.reason})
            payment.provider_payment_ids.append(self.provider_payment_id)

    class ChargeCreated(Event):
        """The bank issued a bill-payment charge for this payment."""

        TOPIC = "onestop:Payment.ChargeCreated"
        charge_id: str

        def apply(self, payment: Payment) -> None:
            payment.charge_id = self.charge_id

    class ReceivedAfterExpiry(Event):
        """Money arrived for a payment that had already expired: it is to be refunded."""

        TOPIC = "onestop:Payment.ReceivedAfterExpiry"
        amount_satang: int
        provider_payment_id: str | None

        def apply(self, payment: Payment) -> None:
            payment.paid_amount_satang = self.amount_satang
            payment.provider_payment_ids.append(self.provider_payment_id)
            payment.refund_due = True

    class ReceiptIssued(Event):
        """The official receipt for the money received (saved with it, in one transaction)."""

        TOPIC = "onestop:Payment.ReceiptIssued"
        receipt_id: UUID
        receipt_number: str

        def apply(self, payment: Payment) -> None:
            payment.receipt = {"id": str(self.receipt_id), "number": self.receipt_number}

    class Expired(Event):
        TOPIC = "onestop:Payment.Expired"
        reason: str

        def apply(self, payment: Payment) -> None:
            payment.status = EXPIRED

    class Refunded(Event):
        TOPIC = "onestop:Payment.Refunded"
        amount_satang: int
        refund_id: str | None
        reason: str

        def apply(self, payment: Payment) -> None:
            payment.status = REFUNDED
            payment.refund_due = False

    def __init__(
        self,
        *,
        request_id: UUID | None,
        reference: str,
        organization: str,
        amount_satang: int,
        promptpay_payload: str,
        expires_at: datetime,
        actor: dict[str, Any],
        notice_id: UUID | None = None,
        instalment: int | None = None,
        breakdown: dict[str, int] | None = None,
    ) -> None:
        self.request_id = request_id
        self.notice_id = notice_id
        self.instalment = instalment
        self.breakdown = breakdown
        self.reference = reference
        self.organization = organization
        self.amount_satang = amount_satang
        self.promptpay_payload = promptpay_payload
        self.expires_at = expires_at
        self.status = AWAITING_PAYMENT
        self.paid_amount_satang = 0
        self.method: str | None = None
        self.provider_payment_ids: list[str | None] = []
        self.discrepancies: list[dict[str, Any]] = []
        self.charge_id: str | None = None
        self.refund_due = False
        self.receipt: dict[str, str] | None = None

    @classmethod
    def open(cls, *, id: UUID, at: datetime, actor: Actor, channel: str, **fields: Any) -> Payment:
        """Open a payment owed for a request or a tax notice."""
        return cls._create(cls.Opened, id=id, timestamp=at, actor=actor.as_dict(), channel=channel, **fields)

    def has_seen(self, provider_payment_id: str) -> bool:
        return provider_payment_id in self.provider_payment_ids

    def receive(self, amount_satang: int, method: str, provider_payment_id: str | None, actor: Actor, channel: str, at: datetime) -> None:
        if self.status != AWAITING_PAYMENT:
            raise PaymentNotOpen(f"payment is {self.status}")
        if amount_satang != self.amount_satang:
            raise PaymentNotOpen(f"amount {amount_satang} does not match the {self.amount_satang} satang owed")
        self.trigger_event(self.Received, amount_satang=amount_satang, method=method,
                           provider_payment_id=provider_payment_id, actor=actor.as_dict(), channel=channel, timestamp=at)

    def record_receipt(self, receipt_id: UUID, receipt_number: str, actor: Actor, channel: str, at: datetime) -> None:
        if self.status != PAID or self.receipt is not None:
            raise PaymentNotOpen("a receipt is issued once, for a payment received")
        self.trigger_event(self.ReceiptIssued, receipt_id=receipt_id, receipt_number=receipt_number,
                           actor=actor.as_dict(), channel=channel, timestamp=at)

    def record_discrepancy(self, amount_satang: int, provider_payment_id: str | None, reason: str, actor: Actor, at: datetime) -> None:
        self.trigger_event(self.Discrepancy, amount_satang=amount_satang, provider_payment_id=provider_payment_id,
                           reason=reason, actor=actor.as_dict(), channel="system", timestamp=at)

    def expire(self, reason: str, actor: Actor, channel: str, at: datetime) -> None:
        if self.status != AWAITING_PAYMENT:
            raise PaymentNotOpen(f"payment is {self.status}")
        self.trigger_event(self.Expired, reason=reason, actor=actor.as_dict(), channel=channel, timestamp=at)

    def record_charge(self, charge_id: str, actor: Actor, at: datetime) -> None:
        self.trigger_event(self.ChargeCreated, charge_id=charge_id, actor=actor.as_dict(), channel="system", timestamp=at)

    def receive_after_expiry(self, amount_satang: int, provider_payment_id: str | None, actor: Actor, at: datetime) -> None:
        self.trigger_event(self.ReceivedAfterExpiry, amount_satang=amount_satang, provider_payment_id=provider_payment_id,
                           actor=actor.as_dict(), channel="system", timestamp=at)

    def refund(self, refund_id: str | None, reason: str, actor: Actor, at: datetime) -> None:
        if self.status != PAID and not self.refund_due:
            raise PaymentNotOpen(f"only a paid payment can be refunded; this one is {self.status}")
        self.trigger_event(self.Refunded, amount_satang=self.paid_amount_satang, refund_id=refund_id,
                           reason=reason, actor=actor.as_dict(), channel="system", timestamp=at)


class UnmatchedPayment(BaseAggregate[UUID]):
    """Money the bank reported for a reference that matches no payment: kept so that it can be
    returned or matched by hand. Its id comes from the bank's payment id, so a notice sent twice
    is recorded once."""

    TOPIC = "onestop:UnmatchedPayment"

    class Event(AggregateEvent):
        actor: dict[str, Any]
        channel: str

    class Recorded(Event, AggregateCreated):
        TOPIC = "onestop:UnmatchedPayment.Recorded"
        provider: str
        provider_payment_id: str
        reference: str
        amount_satang: int

    def __init__(self, *, provider: str, provider_payment_id: str, reference: str, amount_satang: int, actor: dict[str, Any]) -> None:
        self.provider = provider
        self.provider_payment_id = provider_payment_id
        self.reference = reference
        self.amount_satang = amount_satang

    @classmethod
    def record(cls, *, id: UUID, at: datetime, actor: Actor, **fields: Any) -> UnmatchedPayment:
        return cls._create(cls.Recorded, id=id, timestamp=at, actor=actor.as_dict(), channel="system", **fields)
