"""Official receipts (ใบเสร็จรับเงิน): one for every payment received, numbered per organisation
and fiscal year without gaps, and the receipt book that hands out the numbers.

Why a book aggregate: the number is taken by an event on the organisation's book for the fiscal
year, saved in the same transaction as the payment's receipt and the receipt itself. Two payments
that take the same number conflict on the book's version (the event store's unique key on
originator id and version), so one of them is refused and tried again with the next number; a
crash before the commit loses the payment, the receipt and the number together. So numbers are
never skipped and never repeated, and a void keeps its number.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import AggregateCreated, AggregateEvent, BaseAggregate

from domain.actors import Actor
from domain.calendar import buddhist_era_year
from domain.errors import InvalidCommand, TransitionNotAllowed

ISSUED = "issued"
VOID = "void"


def fiscal_year(day: date) -> int:
    """The Thai fiscal year (ปีงบประมาณ) of a day, in the Buddhist era: 1 October of one year to
    30 September of the next, named after the later year, so 1 Oct 2569 – 30 Sep 2570 is 2570.

    Source: พระราชบัญญัติวิธีการงบประมาณ พ.ศ. 2561 มาตรา 4 ("ปีงบประมาณ" หมายความว่า ระยะเวลาตั้งแต่
    วันที่ 1 ตุลาคมของปีหนึ่งถึงวันที่ 30 กันยายนของปีถัดไป และให้ใช้ปี พ.ศ. ที่ถัดไปนั้นเป็นชื่อสำหรับ
    ปีงบประมาณนั้น), as quoted by the Secretariat of the House of Representatives,
    https://library.parliament.go.th/th/radioscript/rr2563-oct1 .
    """
    year = buddhist_era_year(day.year)
    return year + 1 if day.month >= 10 else year


def receipt_number(fiscal_year: int, sequence: int) -> str:
    """``R2570000042``: "R", the fiscal year, six digits of sequence (more when a year needs
    them). Digits and capital letters only, like every OneStop reference."""
    return f"R{fiscal_year}{sequence:06d}"


class ReceiptBook(BaseAggregate[UUID]):
    """The numbers of one organisation's receipts in one fiscal year: the version is the count."""

    TOPIC = "onestop:ReceiptBook"

    class Event(AggregateEvent):
        pass

    class Opened(Event, AggregateCreated):
        TOPIC = "onestop:ReceiptBook.Opened"
        organization: str
        fiscal_year: int

    class NumberTaken(Event):
        TOPIC = "onestop:ReceiptBook.NumberTaken"
        sequence: int
        receipt_id: UUID

        def apply(self, book: ReceiptBook) -> None:
            book.last_sequence = self.sequence

    def __init__(self, *, organization: str, fiscal_year: int) -> None:
        self.organization = organization
        self.fiscal_year = fiscal_year
        self.last_sequence = 0

    @classmethod
    def open(cls, *, id: UUID, organization: str, fiscal_year: int, at: datetime) -> ReceiptBook:
        return cls._create(cls.Opened, id=id, timestamp=at, organization=organization, fiscal_year=fiscal_year)

    def take_number(self, receipt_id: UUID, at: datetime) -> int:
        """The next number, recorded as taken by ``receipt_id``."""
        sequence = self.last_sequence + 1
        self.trigger_event(self.NumberTaken, sequence=sequence, receipt_id=receipt_id, timestamp=at)
        return sequence


class Receipt(BaseAggregate[UUID]):
    """An official receipt for one payment received."""

    TOPIC = "onestop:Receipt"

    class Event(AggregateEvent):
        actor: dict[str, Any]
        channel: str

    class Issued(Event, AggregateCreated):
        TOPIC = "onestop:Receipt.Issued"
        organization: str
        fiscal_year: int
        sequence: int
        number: str
        payment_id: UUID
        request_id: UUID | None
        reference: str
        payer: dict[str, Any]  # {"name": ...}: what is printed; no national ID
        items: list[dict[str, Any]]  # [{"description", "revenue_code", "amount_satang"}]
        amount_satang: int
        method: str  # cash | promptpay

    class Voided(Event):
        TOPIC = "onestop:Receipt.Voided"
        reason: str

        def apply(self, receipt: Receipt) -> None:
            receipt.status = VOID
            receipt.void_reason = self.reason
            receipt.voided_at = self.timestamp

    def __init__(
        self, *, organization: str, fiscal_year: int, sequence: int, number: str, payment_id: UUID, request_id: UUID | None,
        reference: str, payer: dict[str, Any], items: list[dict[str, Any]], amount_satang: int, method: str,
        actor: dict[str, Any], channel: str,
    ) -> None:
        self.organization = organization
        self.fiscal_year = fiscal_year
        self.sequence = sequence
        self.number = number
        self.payment_id = payment_id
        self.request_id = request_id
        self.reference = reference
        self.payer = payer
        self.items = items
        self.amount_satang = amount_satang
        self.method = method
        self.status = ISSUED
        self.void_reason: str | None = None
        self.voided_at: datetime | None = None

    @classmethod
    def issue(cls, *, id: UUID, book: ReceiptBook, at: datetime, actor: Actor, channel: str, items: list[dict[str, Any]], **fields: Any) -> Receipt:
        """Issue the receipt under the book's next number. The items must add up to the amount."""
        if sum(int(i["amount_satang"]) for i in items) != fields["amount_satang"]:
            raise InvalidCommand("the receipt's items do not add up to the amount received", [("items", "must add up to amount_satang")])
        sequence = book.take_number(id, at)
        return cls._create(
            cls.Issued, id=id, timestamp=at, actor=actor.as_dict(), channel=channel, organization=book.organization,
            fiscal_year=book.fiscal_year, sequence=sequence, number=receipt_number(book.fiscal_year, sequence), items=items, **fields,
        )

    def void(self, reason: str, actor: Actor, channel: str, at: datetime) -> None:
        """Void the receipt; it keeps its number, so the book still has no gap."""
        if self.status == VOID:
            raise TransitionNotAllowed(f"receipt {self.number} is already void")
        if not reason.strip():
            raise InvalidCommand("a void needs a reason", [("reason", "must not be blank")])
        self.trigger_event(self.Voided, reason=reason, actor=actor.as_dict(), channel=channel, timestamp=at)
