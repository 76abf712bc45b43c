from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

import pytest

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


def _registered() -> tuple[JSONTranscoder, OrjsonTranscoder]:
    """The library's transcoder and OneStop's, each with every transcoding OneStop's application
    registers (read from the application, so a transcoding added later is covered here)."""
    from application.back_office import BackOffice
    from domain.organizations import SEED_ORGANIZATIONS, Directory
    from onestop.bootstrap import eventsourcing_env
    from onestop.rules_file import load_rules
    from onestop.settings import DEMO_BILLER_ID, Settings

    env = {"PERSISTENCE_MODULE": "eventsourcing.popo",
           "TRANSCODER_TOPIC": eventsourcing_env(Settings.from_env({"ONESTOP_JWT_SECRET": "x" * 40,
                                                                       "ONESTOP_DATABASE_URL": "postgresql://onestop@127.0.0.1/onestop"}))["TRANSCODER_TOPIC"]}
    rules = load_rules()
    app = BackOffice(env, directory=Directory(SEED_ORGANIZATIONS), fees=rules.fee_schedule(datetime.date(2026, 1, 15)),
                     biller_id=DEMO_BILLER_ID, references=None, clock=None)  # type: ignore[arg-type]
    try:
        ours = app.mapper.transcoder
        assert isinstance(ours, OrjsonTranscoder)
        library = JSONTranscoder()
        app.register_transcodings(library)
        return library, ours
    finally:
        app.close()


SAMPLES: dict[str, list[object]] = {
    "uuid_hex": [uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.UUID(int=0)],
    "decimal_str": [Decimal("12.50"), Decimal("-0.0001"), Decimal("1E+3")],
    "datetime_iso": [datetime.datetime(2026, 11, 29, 3, 0, tzinfo=datetime.timezone.utc),
                     datetime.datetime(2026, 1, 1, 7, 30, 15, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=7))),
                     datetime.datetime(2026, 1, 1)],
}


def test_every_transcoding_onestop_registers_is_written_and_read_the_same_by_both() -> None:
    library, ours = _registered()
    assert set(library.names) == set(ours.names)
    missing = set(ours.names) - set(SAMPLES)
    assert not missing, f"add sample values for the transcodings {sorted(missing)}"
    for name, samples in SAMPLES.items():
        for sample in samples:
            for value in (sample, [sample, {"at": sample}], {"x": (sample, 1), "y": {"z": [sample]}}):
                library_bytes, our_bytes = library.encode(value), ours.encode(value)
                assert our_bytes == library_bytes, name
                expected = library.decode(library_bytes)
                assert ours.decode(library_bytes) == expected and library.decode(our_bytes) == expected
                assert ours.decode(our_bytes) == expected
                assert sample in (expected, expected[0] if isinstance(expected, list) else None, expected.get("y", {}).get("z", [None])[0]
                                  if isinstance(expected, dict) else None)


def test_an_event_state_with_every_json_type_is_written_byte_for_byte_as_the_library_writes_it() -> None:
    library, ours = _registered()
    state = {
        "_subject_": "3371459a-cc7a-4ff1-b53d-dd0f8b4e3f10",
        "timestamp": datetime.datetime(2026, 12, 4, 18, 30, 40, 779485, tzinfo=datetime.timezone.utc),
        "actor": {"sub": {"_pd_": "9wXD8ErMULXRFKw+pKQW86MoVEiOb553TXy7mSdnwZRREHYVA7W1EjQ9zg=="}, "role": "citizen", "org": None},
        "payment_id": uuid.UUID(int=7), "amount_satang": 20000, "paid": True, "skipped": False, "big": 2**63 - 1, "low": -2**63,
        "note": "ไฟถนนดับ \"quoted\" \\ back\nline\ttab\x01\x1f\x7f\u2028 é",
        "items": [1, "a", None, [uuid.UUID(int=1), {"due": datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc)}]],
        "empty": {}, "none": [],
    }
    assert ours.encode(state) == library.encode(state)
    every_character = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert ours.encode({"text": every_character}) == library.encode({"text": every_character})


class _Text(str):
    pass


class _Unregistered:
    pass


def test_what_orjson_would_write_differently_is_left_to_the_library() -> None:
    library, ours = _registered()
    for value in ({"rate": 1e16, "small": 1e-05, "nan": float("nan"), "one": 1.5}, {"k": _Text("v")}, {1: "int key"},
                  {"huge": 2**64}, {"t": (1, 2)}, {"nested": [{"f": 0.1}]}):
        assert ours.encode(value) == library.encode(value)


def test_errors_are_the_librarys_own() -> None:
    library, ours = _registered()
    for value in ({"x": _Unregistered()}, {"x": "\ud800"}):
        try:
            library.encode(value)
        except Exception as error:  # noqa: BLE001 - whatever the library raises, ours raises too
            expected = type(error)
        with pytest.raises(expected):
            ours.encode(value)
