"""Secrets kept at rest encrypted: webhook signing secrets in PostgreSQL.

AES-256-GCM (the ``cryptography`` package) with the key from ``ONESTOP_SECRETS_KEY``. A stored
value is ``enc:v1:`` and the URL-safe base64 of a random 96-bit nonce followed by the
ciphertext and its tag. The row's identity is the associated data, so a ciphertext copied into
another row does not decrypt there. Values written before encryption (plain ``whsec_...``) are
read as they are, and ``encrypt_plain_webhook_secrets`` (run by ``migrate`` when the key is set)
encrypts them in place.
"""

from __future__ import annotations

from infrastructure.errors import InvalidKey

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.errors import OneStopError

PREFIX = "enc:v1:"
KEY_BYTES = 32
_NONCE_BYTES = 12


class SecretUnreadable(OneStopError):
    """A stored secret does not decrypt with this key (another key, or a changed value)."""


def parse_key(value: str) -> bytes:
    """The 32-byte key written as base64 (standard or URL-safe, padding optional); InvalidKey (a
    ValueError) otherwise."""
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("is not base64") from None
    if len(key) != KEY_BYTES:
        raise InvalidKey(f"must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def new_key() -> str:
    """A new key, as ``ONESTOP_SECRETS_KEY`` takes it."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


class SecretBox:
    """Encrypts and decrypts short secrets bound to the row they belong to."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, secret: str, row: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), row.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, stored: str, row: str) -> str:
        """The secret of a stored value; a value without the prefix was stored plain."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            raw = base64.urlsafe_b64decode(stored[len(PREFIX):])
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], row.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as error:
            raise SecretUnreadable(f"the stored secret of {row} does not decrypt with ONESTOP_SECRETS_KEY") from error


def webhook_secret_row(subscription_id: object) -> str:
    """The associated data of a subscription's secret."""
    return f"webhook_subscriptions/{subscription_id}"


def encrypt_plain_webhook_secrets(curs: object, box: SecretBox) -> int:
    """Encrypt every webhook secret still stored plain (from before encryption); returns how many."""
    from infrastructure.integrations.subscriptions import SUBSCRIPTIONS

    curs.execute(f"SELECT id::text AS id, secret FROM {SUBSCRIPTIONS} WHERE secret NOT LIKE %s FOR UPDATE", (PREFIX + "%",))  # type: ignore[attr-defined]
    rows = curs.fetchall()  # type: ignore[attr-defined]
    for row in rows:
        curs.execute(f"UPDATE {SUBSCRIPTIONS} SET secret = %s WHERE id = %s::uuid",  # type: ignore[attr-defined]
                     (box.seal(row["secret"], webhook_secret_row(row["id"])), row["id"]))
    return len(rows)
