"""The bank's payment notices: how they are signed, and the check that one is genuine and fresh.

``X-Bank-Signature`` is the hex HMAC-SHA256, keyed with the callback secret, of the bytes
``timestamp + "." + provider + "." + body``, where ``timestamp`` is ``X-Bank-Timestamp`` (Unix
seconds, ASCII digits) and ``provider`` the last path segment of the notice's URL. Covering the
timestamp lets a replayed notice be refused once it is old; covering the provider stops a notice
signed for one provider being sent to another's URL.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from application.errors import ApplicationError

MAX_SKEW_SECONDS = 300
# A notice from the future is refused; this much allows for the two clocks' drift (NTP keeps
# servers well within it).
MAX_AHEAD_SECONDS = 5
_TIMESTAMP = re.compile(r"[0-9]{1,15}")  # [0-9], not \d: no other script's digits


class NoticeNotAuthentic(ApplicationError):
    """A payment notice's signature or timestamp is missing, malformed, wrong or stale."""

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.field = field


def notice_signature(secret: str, timestamp: str, provider: str, body: bytes) -> str:
    """The hex HMAC-SHA256 a bank sends in ``X-Bank-Signature``."""
    signed = timestamp.encode("ascii") + b"." + provider.encode("ascii") + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def check_notice(secret: str, timestamp: str | None, signature: str | None, provider: str, body: bytes, now: float) -> None:
    """Refuse (``NoticeNotAuthentic``) unless ``signature`` signs this body, provider and
    timestamp with ``secret``, and the timestamp is at most ``MAX_SKEW_SECONDS`` old and not
    from the future (beyond ``MAX_AHEAD_SECONDS`` of clock drift)."""
    if not secret:
        raise NoticeNotAuthentic("payment notices are not accepted: no callback secret is configured", "X-Bank-Signature")
    if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
        raise NoticeNotAuthentic("X-Bank-Timestamp must be the Unix time in seconds, in ASCII digits", "X-Bank-Timestamp")
    expected = notice_signature(secret, timestamp, provider, body).encode()
    given = (signature or "").strip().removeprefix("sha256=").lower().encode("utf-8", "replace")
    if not hmac.compare_digest(given, expected):
        raise NoticeNotAuthentic("X-Bank-Signature does not match the notice's timestamp, provider and body", "X-Bank-Signature")
    if now - int(timestamp) > MAX_SKEW_SECONDS:
        raise NoticeNotAuthentic(f"the notice's X-Bank-Timestamp is more than {MAX_SKEW_SECONDS} s old", "X-Bank-Timestamp")
    if int(timestamp) - now > MAX_AHEAD_SECONDS:
        raise NoticeNotAuthentic("the notice's X-Bank-Timestamp is in the future", "X-Bank-Timestamp")
