"""The one shape of a request and a payment that clients see, whether it comes from an aggregate
(a command's response) or from a view row (a read)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from bahttext import bahttext

from domain.calendar import bangkok_day
from domain.payment import Payment
from domain.receipt import Receipt
from domain.service_request import ServiceRequest


def request_document(
    *,
    id: UUID | str,
    reference: str,
    service: str,
    organization: str,
    filed_at: str,
    channel: str,
    status: str,
    version: int,
    position: int | None,
    applicant: dict[str, Any],
    details: dict[str, Any],
    assigned_to: str | None,
    submitted_at: datetime,
    updated_at: datetime,
    due_at: datetime,
    outcome: str | None,
    result: dict[str, Any] | None,
    action_required: dict[str, Any] | None,
    payment: dict[str, Any] | None,
    appointment_id: UUID | str | None = None,
) -> dict[str, Any]:
    return {
        "id": str(id),
        "reference": reference,
        "service": service,
        "organization": organization,
        "filed_at": filed_at,
        "channel": channel,
        "status": status,
        "version": version,
        "position": position,
        "applicant": applicant,
        "details": details,
        "assigned_to": assigned_to,
        "submitted_at": submitted_at,
        "updated_at": updated_at,
        "due_at": due_at,
        "outcome": outcome,
        "result": result,
        "action_required": action_required,
        "payment": payment,
        "appointment_id": str(appointment_id) if appointment_id else None,
    }


def payment_summary(payment_id: UUID | str | None, amount_satang: int | None, status: str | None) -> dict[str, Any] | None:
    if payment_id is None:
        return None
    return {"id": str(payment_id), "amount_satang": amount_satang, "status": status}


def describe_request(request: ServiceRequest, payment: Payment | None, position: int | None) -> dict[str, Any]:
    return request_document(
        id=request.id,
        reference=request.reference,
        service=request.service,
        organization=request.organization,
        filed_at=request.filed_at,
        channel=request.channel,
        status=request.status,
        version=request.version,
        position=position,
        applicant=request.applicant,
        details=request.details,
        assigned_to=request.assigned_to,
        submitted_at=request.created_on,
        updated_at=request.modified_on,
        due_at=request.due_at,
        outcome=request.outcome,
        result=request.result,
        action_required=request.action_required,
        payment=payment_summary(payment.id, payment.amount_satang, payment.status) if payment else None,
        appointment_id=getattr(request, "appointment_id", None),
    )


def payment_document(
    *,
    id: UUID | str,
    request_id: UUID | str | None,
    reference: str,
    organization: str,
    amount_satang: int,
    status: str,
    promptpay_payload: str,
    expires_at: datetime,
    version: int,
    position: int | None,
    method: str | None,
    updated_at: datetime,
    discrepancies: list[dict[str, Any]],
    notice_id: UUID | str | None = None,
    instalment: int | None = None,
    receipt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": str(id),
        # A payment is for a request, or (land-and-building tax) for a notice.
        "request_id": str(request_id) if request_id is not None else None,
        "notice_id": str(notice_id) if notice_id is not None else None,
        "instalment": instalment,
        "reference": reference,
        "organization": organization,
        "amount_satang": amount_satang,
        "status": status,
        "promptpay_payload": promptpay_payload,
        "expires_at": expires_at,
        "version": version,
        "position": position,
        "method": method,
        "updated_at": updated_at,
        "discrepancies": discrepancies,
        "receipt": receipt,
    }


def describe_payment(payment: Payment, position: int | None) -> dict[str, Any]:
    return payment_document(
        id=payment.id,
        request_id=payment.request_id,
        reference=payment.reference,
        organization=payment.organization,
        amount_satang=payment.amount_satang,
        status=payment.status,
        promptpay_payload=payment.promptpay_payload,
        expires_at=payment.expires_at,
        version=payment.version,
        position=position,
        method=payment.method,
        updated_at=payment.modified_on,
        discrepancies=payment.discrepancies,
        notice_id=payment.notice_id,
        instalment=payment.instalment,
        receipt=payment.receipt,
    )


def amount_in_thai_words(amount_satang: int) -> str:
    """The amount as Thai words, as receipts print it: 1234.50 is หนึ่งพันสองร้อยสามสิบสี่บาทห้าสิบสตางค์."""
    words: str = bahttext(amount_satang / 100)  # exact: the package formats to two decimals
    if amount_satang % 100 == 1:
        # The package reads one satang after tens of baht as เอ็ด; one satang is หนึ่งสตางค์.
        words = words.removesuffix("เอ็ดสตางค์") + "หนึ่งสตางค์"
    if amount_satang < 100 and amount_satang % 100:
        words = words.removeprefix("ศูนย์บาท")
    return words


def receipt_document(
    *, id: UUID | str, number: str, organization: str, fiscal_year: int, sequence: int, payment_id: UUID | str,
    request_id: UUID | str | None, reference: str, payer: dict[str, Any], items: list[dict[str, Any]], amount_satang: int,
    method: str, issued_at: datetime, status: str, void_reason: str | None, voided_at: datetime | None, version: int,
    position: int | None,
) -> dict[str, Any]:
    return {
        "id": str(id),
        "number": number,
        "organization": organization,
        "fiscal_year": fiscal_year,
        "sequence": sequence,
        "payment_id": str(payment_id),
        "request_id": str(request_id) if request_id is not None else None,
        "reference": reference,
        "payer": payer,
        "items": items,
        "amount_satang": amount_satang,
        "amount_words": amount_in_thai_words(amount_satang),
        "method": method,
        "issued_at": issued_at,
        "issued_on": bangkok_day(issued_at).isoformat(),
        "status": status,
        "void_reason": void_reason,
        "voided_at": voided_at,
        "version": version,
        "position": position,
    }


def describe_receipt(receipt: Receipt, position: int | None) -> dict[str, Any]:
    return receipt_document(
        id=receipt.id, number=receipt.number, organization=receipt.organization, fiscal_year=receipt.fiscal_year,
        sequence=receipt.sequence, payment_id=receipt.payment_id, request_id=receipt.request_id, reference=receipt.reference,
        payer=receipt.payer, items=receipt.items, amount_satang=receipt.amount_satang, method=receipt.method,
        issued_at=receipt.created_on, status=receipt.status, void_reason=receipt.void_reason, voided_at=receipt.voided_at,
        version=receipt.version, position=position,
    )


def verification_document(receipt: dict[str, Any]) -> dict[str, Any]:
    """What anyone holding a receipt may check: no payer, no items, no personal data."""
    return {key: receipt[key] for key in ("number", "organization", "fiscal_year", "amount_satang", "issued_on", "status")}
