"""Webhook signatures (Standard Webhooks v1): the secret each subscription is given, and the
signature each delivery carries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SIGNATURE_VERSION = "v1"


def new_secret() -> str:
    """A signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (Standard Webhooks, v1: HMAC-SHA256 of
    ``id.timestamp.body`` keyed with the base64-decoded part of the secret after ``whsec_``)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return f"{SIGNATURE_VERSION}," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
