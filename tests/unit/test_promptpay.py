from __future__ import annotations

import pytest

from domain.promptpay import InvalidPromptPayPayload, bank_reference, bill_payment_payload, crc16_ccitt_false, parse_payload

SAMPLE = "00020101021130510016A000000677010112011501055230093500202085555890053037645802TH6304A648"


def test_the_published_static_sample_is_rebuilt_exactly() -> None:
    assert bill_payment_payload(biller_id="010552300935002", ref1="55558900", amount_satang=None) == SAMPLE


def test_crc16_ccitt_false_matches_its_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1
    assert crc16_ccitt_false(b"") == 0xFFFF


def _crc16_bit_by_bit(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def test_crc16_ccitt_false_agrees_with_the_bit_by_bit_definition() -> None:
    samples = [SAMPLE[:-4].encode(), bytes(range(256)), b"\xff" * 70, b"0002010102123051"]
    for data in samples:
        assert crc16_ccitt_false(data) == _crc16_bit_by_bit(data)


def test_a_dynamic_payload_carries_the_amount_and_reference() -> None:
    payload = bill_payment_payload(biller_id="099400016601001", ref1="OS690000042", amount_satang=12345)
    parsed = parse_payload(payload)
    assert (parsed.biller_id, parsed.ref1, parsed.amount_satang, parsed.dynamic) == ("099400016601001", "OS690000042", 12345, True)
    assert "5406123.45" in payload and payload.startswith("000201010212")


def test_a_changed_character_fails_the_crc() -> None:
    tampered = SAMPLE.replace("55558900", "55558901")
    with pytest.raises(InvalidPromptPayPayload, match="CRC"):
        parse_payload(tampered)


def test_a_reference_longer_than_twenty_characters_is_refused() -> None:
    with pytest.raises(InvalidPromptPayPayload):
        bill_payment_payload(biller_id="099400016601001", ref1="X" * 21, amount_satang=100)


@pytest.mark.parametrize("ref1", ["OS69-0000042", "os690000042", "OS69 0000042", "อบต1"])
def test_a_reference_with_anything_but_digits_and_capitals_is_refused_as_ref1(ref1: str) -> None:
    with pytest.raises(InvalidPromptPayPayload, match="capital letters"):
        bill_payment_payload(biller_id="099400016601001", ref1=ref1, amount_satang=100)


def test_a_reference_issued_before_the_rule_goes_to_the_bank_without_its_hyphen() -> None:
    assert bank_reference("OS69-0000042") == "OS690000042"
    assert bank_reference("OS690000042") == "OS690000042"
