"""Thai national identification numbers (เลขประจำตัวประชาชน)."""

from __future__ import annotations


def national_id_check_digit(first_twelve: str) -> int:
    """Return the check digit for the first twelve digits of a national ID."""
    total = sum(int(d) * (13 - i) for i, d in enumerate(first_twelve))
    return (11 - total % 11) % 10


def is_valid_national_id(value: object) -> bool:
    """True when ``value`` is 13 ASCII digits whose last digit is the checksum."""
    if not isinstance(value, str) or len(value) != 13 or not value.isascii() or not value.isdigit():
        return False
    return national_id_check_digit(value[:12]) == int(value[12])


def mask_national_id(value: str) -> str:
    """Keep the first and last digits only, as published feeds must."""
    return value[0] + "X" * 8 + value[-4:] if len(value) == 13 else "X" * len(value)
