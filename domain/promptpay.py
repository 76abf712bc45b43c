"""PromptPay (Thai QR Payment, EMVCo merchant-presented) bill-payment payloads.

Government fees use bill payment (tag 30) with Ref1 = the request's reference, so that the
bank's payment notice can be matched to the request.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

from domain.errors import InvalidValue

BILL_PAYMENT_AID = "A000000677010112"
THB = "764"
# Bank apps accept only digits and capital letters in Ref1/Ref2, at most 20 of them.
BANK_REFERENCE = re.compile(r"[0-9A-Z]{1,20}")


class InvalidPromptPayPayload(InvalidValue):
    """A payload that is not a well-formed PromptPay bill-payment payload."""


@dataclass(frozen=True)
class PromptPayPayload:
    biller_id: str
    ref1: str
    ref2: str | None
    amount_satang: int | None
    dynamic: bool


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor. That is
    ``binascii.crc_hqx`` started from 0xFFFF (C, instead of a bit-by-bit loop in Python)."""
    return binascii.crc_hqx(data, 0xFFFF)


def bank_reference(reference: str) -> str:
    """The Ref1 form of a OneStop reference: only ``[0-9A-Z]``. References issued before the
    rule (``OS69-0000042``) lose their hyphen (``OS690000042``); new ones are already bank-safe."""
    safe = re.sub(r"[^0-9A-Z]", "", reference.upper())
    if not BANK_REFERENCE.fullmatch(safe):
        raise InvalidPromptPayPayload(f"reference {reference!r} has no bank-safe form of 1 to 20 characters")
    return safe


def _tlv(tag: str, value: str) -> str:
    if len(value) > 99:
        raise InvalidPromptPayPayload(f"tag {tag} value is longer than 99 characters")
    return f"{tag}{len(value):02d}{value}"


def format_amount(amount_satang: int) -> str:
    """Satang as baht with two decimals, without floats."""
    return f"{amount_satang // 100}.{amount_satang % 100:02d}"


def bill_payment_payload(
    *, biller_id: str, ref1: str, amount_satang: int | None, ref2: str | None = None
) -> str:
    """Build a bill-payment (tag 30) payload; dynamic (tag 01 = 12) when an amount is set."""
    if not (len(biller_id) == 15 and biller_id.isdigit()):
        raise InvalidPromptPayPayload("biller ID must be 15 digits (13-digit tax ID + suffix)")
    if not BANK_REFERENCE.fullmatch(ref1):
        raise InvalidPromptPayPayload("Ref1 must be 1 to 20 characters, digits and capital letters only")
    if ref2 is not None and ref2 and not BANK_REFERENCE.fullmatch(ref2):
        raise InvalidPromptPayPayload("Ref2 must be 1 to 20 characters, digits and capital letters only")
    if amount_satang is not None and amount_satang <= 0:
        raise InvalidPromptPayPayload("amount must be positive")
    merchant = _tlv("00", BILL_PAYMENT_AID) + _tlv("01", biller_id) + _tlv("02", ref1)
    if ref2:
        merchant += _tlv("03", ref2)
    body = _tlv("00", "01") + _tlv("01", "12" if amount_satang is not None else "11")
    body += _tlv("30", merchant) + _tlv("53", THB)
    if amount_satang is not None:
        body += _tlv("54", format_amount(amount_satang))
    body += _tlv("58", "TH") + "6304"
    return body + f"{crc16_ccitt_false(body.encode('ascii')):04X}"


def _parse_tlv(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    i = 0
    while i < len(text):
        if i + 4 > len(text) or not text[i + 2 : i + 4].isdigit():
            raise InvalidPromptPayPayload(f"malformed TLV at offset {i}")
        tag, length = text[i : i + 2], int(text[i + 2 : i + 4])
        value = text[i + 4 : i + 4 + length]
        if len(value) != length:
            raise InvalidPromptPayPayload(f"tag {tag} is truncated")
        fields[tag] = value
        i += 4 + length
    return fields


def parse_payload(payload: str) -> PromptPayPayload:
    """Parse and check a bill-payment payload (CRC, tag order, tag 30)."""
    if not isinstance(payload, str) or len(payload) < 12 or not payload.isascii():
        raise InvalidPromptPayPayload("payload is not an ASCII EMVCo string")
    if payload[-8:-4] != "6304":
        raise InvalidPromptPayPayload("payload does not end with a CRC (tag 63)")
    expected = f"{crc16_ccitt_false(payload[:-4].encode('ascii')):04X}"
    if payload[-4:].upper() != expected:
        raise InvalidPromptPayPayload("CRC does not match")
    fields = _parse_tlv(payload[:-8])
    if not payload.startswith("000201"):
        raise InvalidPromptPayPayload("tag 00 must come first with value 01")
    if "30" not in fields:
        raise InvalidPromptPayPayload("not a bill-payment payload (tag 30 missing)")
    merchant = _parse_tlv(fields["30"])
    if merchant.get("00") != BILL_PAYMENT_AID:
        raise InvalidPromptPayPayload("tag 30 does not carry the bill-payment AID")
    if "01" not in merchant or "02" not in merchant:
        raise InvalidPromptPayPayload("tag 30 lacks the biller ID or Ref1")
    amount = None
    if "54" in fields:
        baht, _, satang = fields["54"].partition(".")
        if not baht.isdigit() or (satang and not satang.isdigit()) or len(satang) > 2:
            raise InvalidPromptPayPayload("amount (tag 54) is not a decimal number")
        amount = int(baht) * 100 + int(satang.ljust(2, "0") or 0)
    return PromptPayPayload(
        biller_id=merchant["01"],
        ref1=merchant["02"],
        ref2=merchant.get("03"),
        amount_satang=amount,
        dynamic=fields.get("01") == "12",
    )
