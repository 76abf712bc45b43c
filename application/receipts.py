"""Receipts: issued with the payment they are for, in the same transaction; voided with a reason.

See ``domain.receipt`` for why the numbers have no gaps. Use cases that receive money call
``_issue_receipt`` and save what it returns with the payment; when another payment of the same
organisation took the number first, the save conflicts and ``retrying`` runs the use case again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, TypeVar
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError

from application.base import BackOfficeBase
from application.errors import Forbidden, NotFound, StaleVersion
from application.ids import ID_NAMESPACE
from application.json_schema import check
from application.outcomes import Outcome
from application.presentation import describe_receipt, verification_document
from domain.actors import Actor
from domain.calendar import bangkok_day
from domain.catalogue import SERVICES
from domain.errors import InvalidCommand
from domain.payment import Payment
from domain.receipt import Receipt, ReceiptBook, fiscal_year
from domain.revenue_codes import revenue_code
from domain.service_request import ServiceRequest

T = TypeVar("T")
# Concurrent payments of one organisation conflict on its receipt book; each try reloads and
# takes the next number. The event store's table lock serialises the saves, so a few tries do.
RECEIPT_TRIES = 20
VOID_SCHEMA = {
    "type": "object",
    "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": "\\S"}},
    "required": ["reason"],
    "additionalProperties": False,
}


def book_id(organization: str, year: int) -> UUID:
    return uuid5(ID_NAMESPACE, f"receipt-book\n{organization}\n{year}")


def receipt_id_for(payment_id: UUID) -> UUID:
    return uuid5(ID_NAMESPACE, f"receipt\n{payment_id}")


def receipt_items(service: str, details: dict[str, Any], amount_satang: int) -> list[dict[str, Any]]:
    """What a receipt for a request's fee lists: one line, with the service's revenue code."""
    code = revenue_code(service)
    description = SERVICES[service].name_th if service in SERVICES else service
    if service == "civil.certified-copy" and "copies" in details:
        description += f" ({details['copies']} ฉบับ)"
    return [{"description": description, "revenue_code": code.code, "revenue_code_confirmed": code.confirmed, "amount_satang": amount_satang}]


LAND_TAX_SERVICE = "local.land-building-tax"
# The parts of a land-tax payment (Land and Building Tax Act B.E. 2562): the tax, the surcharge
# (เบี้ยปรับ, s.68-69) and the 1% a month (เงินเพิ่ม, s.70), each a line of the receipt.
_NOTICE_PARTS = (("tax_satang", "ภาษีที่ดินและสิ่งปลูกสร้าง"), ("surcharge_satang", "เบี้ยปรับ"), ("interest_satang", "เงินเพิ่ม"))


def notice_receipt_items(notice_number: str, tax_year: int, instalment: int | None, breakdown: dict[str, int] | None,
                         amount_satang: int) -> list[dict[str, Any]]:
    """What a receipt for a land-tax notice's payment lists: the tax, and the penalties when any,
    under the land-tax revenue code."""
    code = revenue_code(LAND_TAX_SERVICE)
    split = breakdown or {"tax_satang": amount_satang}
    when = f"ปี {tax_year} ใบแจ้ง {notice_number}" + (f" งวดที่ {instalment}" if instalment is not None else "")
    return [{"description": f"{name} ({when})" if key == "tax_satang" else name, "revenue_code": code.code,
             "revenue_code_confirmed": code.confirmed, "amount_satang": split[key]}
            for key, name in _NOTICE_PARTS if split.get(key)]


class Receipts(BackOfficeBase):
    """Issuing, voiding and reading receipts."""

    def retrying(self, use_case: Callable[[], T]) -> T:
        """Run ``use_case`` again when its save lost a race (a receipt number taken first)."""
        for _ in range(RECEIPT_TRIES - 1):
            try:
                return use_case()
            except StaleVersion as lost:
                # A stale If-Match (current_version set) is the caller's to fix; only a lost save is retried.
                if lost.current_version is not None:
                    raise
        return use_case()

    def _receipt_book(self, organization: str, year: int, at: datetime) -> ReceiptBook:
        try:
            book = self.repository.get(book_id(organization, year))
        except AggregateNotFoundError:
            return ReceiptBook.open(id=book_id(organization, year), organization=organization, fiscal_year=year, at=at)
        assert isinstance(book, ReceiptBook)
        return book

    def _issue_receipt(self, payment: Payment, request: ServiceRequest | None, actor: Actor, channel: str, at: datetime,
                       items: list[dict[str, Any]] | None = None, payer: dict[str, Any] | None = None) -> list[Any]:
        """Issue the receipt for a payment just received; returns the aggregates to save with it."""
        book = self._receipt_book(payment.organization, fiscal_year(bangkok_day(at)), at)
        if items is None:
            service = request.service if request is not None else ""
            items = receipt_items(service, request.details if request is not None else {}, payment.paid_amount_satang)
        if payer is None:
            payer = {"name": request.applicant.get("name", "") if request is not None else ""}
        receipt = Receipt.issue(
            id=receipt_id_for(payment.id), book=book, at=at, actor=actor, channel=channel, items=items,
            payment_id=payment.id, request_id=request.id if request is not None else None, reference=payment.reference,
            payer=payer, amount_satang=payment.paid_amount_satang, method=payment.method or "cash",
        )
        payment.record_receipt(receipt.id, receipt.number, actor, channel, at)
        return [book, receipt]

    def _issue_notice_receipt(self, payment: Payment, notice: Any, actor: Actor, channel: str, at: datetime) -> list[Any]:
        """The receipt for a land-tax notice's payment (no request): paid by the notice's owner."""
        items = notice_receipt_items(notice.number, notice.tax_year, payment.instalment, payment.breakdown, payment.paid_amount_satang)
        return self._issue_receipt(payment, None, actor, channel, at, items=items, payer={"name": notice.owner_name})

    def get_receipt(self, receipt_id: UUID) -> Receipt:
        try:
            receipt = self.repository.get(receipt_id)
        except AggregateNotFoundError:
            raise NotFound("no such receipt") from None
        if not isinstance(receipt, Receipt):
            raise NotFound("no such receipt")
        return receipt

    def check_can_read_receipt(self, actor: Actor, organization: str, request_id: UUID | None, payment_id: UUID | None = None) -> None:
        """Staff of the organisation, auditors and admins; a citizen only their own request's, or
        their own land-tax notice's."""
        if actor.role in ("auditor", "admin") or (actor.role == "officer" and actor.org == organization):
            return
        if actor.role == "citizen" and request_id is not None:
            try:
                request = self.get_request(request_id)
            except NotFound:
                pass
            else:
                if actor.pid is not None and request.applicant.get("national_id") == actor.pid:
                    return
        if actor.role == "citizen" and request_id is None and payment_id is not None and actor.pid is not None:
            notice_id = self.get_payment(payment_id).notice_id
            if notice_id is not None and self.get_notice(notice_id).owner_id == actor.pid:
                return
        raise NotFound("no such receipt")

    def read_receipt(self, receipt_id: UUID, actor: Actor) -> dict[str, Any]:
        receipt = self.get_receipt(receipt_id)
        self.check_can_read_receipt(actor, receipt.organization, receipt.request_id, receipt.payment_id)
        return describe_receipt(receipt, None)

    def verify_receipt(self, receipt_id: UUID) -> dict[str, Any]:
        """What a receipt's QR shows anyone (``verification_document``: no payer, no items), from
        the event store: a receipt scanned the moment it is printed is there before the views
        have it. NotFound when there is no such receipt."""
        return verification_document(describe_receipt(self.get_receipt(receipt_id), None))

    def void_receipt(self, receipt_id: UUID, body: Any, actor: Actor, if_match: int | None) -> Outcome:
        """An officer of the organisation voids a receipt, saying why; its number stays taken."""
        errors = check(VOID_SCHEMA, body)
        if errors:
            raise InvalidCommand("the body does not fit void", errors)
        receipt = self.get_receipt(receipt_id)
        self.check_can_read_receipt(actor, receipt.organization, receipt.request_id, receipt.payment_id)
        if not (actor.role == "admin" or (actor.role == "officer" and actor.org == receipt.organization)):
            raise Forbidden("only an officer of the organisation that issued a receipt may void it")
        if if_match is not None and if_match != receipt.version:
            raise StaleVersion(f"the receipt is at version {receipt.version}, not {if_match}", receipt.version)
        receipt.void(body["reason"], actor, "counter", self.clock.now())
        return Outcome(describe_receipt(receipt, self._save(receipt)))
