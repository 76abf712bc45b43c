"""Subject references: HMAC-SHA-256 of the national ID under ONESTOP_BLIND_INDEX_KEY."""

from __future__ import annotations

import hashlib
import hmac

from application.ports import SubjectIndex


class HmacSubjectIndex(SubjectIndex):
    """A keyed blind index: without the key, a reference cannot be tied to a national ID by
    hashing all 10^12 possible IDs."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the blind index key must be at least 32 bytes")
        self._key = key

    def reference(self, national_id: str) -> str:
        return hmac.new(self._key, national_id.encode("ascii"), hashlib.sha256).hexdigest()
