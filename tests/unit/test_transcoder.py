from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from infrastructure.eventstore.transcoder import OrjsonTranscoder


def _with_types(transcoder: JSONTranscoder) -> JSONTranscoder:
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


def test_the_orjson_reader_decodes_what_the_library_writes_to_the_same_values() -> None:
    library, fast = _with_types(JSONTranscoder()), _with_types(OrjsonTranscoder())
    value = {
        "timestamp": datetime.datetime(2026, 11, 29, 3, 0, tzinfo=datetime.timezone.utc),
        "payment_id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "nested": [{"at": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)}, [uuid.UUID(int=7)]],
        "amount": Decimal("12.50"),
        "details": {"subject": "ไฟถนนดับ", "copies": 2, "almost": {"_type_": "not a transcoding"}},
    }
    stored = library.encode(value)
    assert fast.decode(stored) == library.decode(stored) == value
    assert fast.encode(value) == stored
