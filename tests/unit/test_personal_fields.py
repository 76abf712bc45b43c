"""Which fields are personal is data: every stored event is classified, and the classification
names fields the events have."""

from __future__ import annotations

import typing

import pytest
from eventsourcing.domain import DomainEvent

from infrastructure.privacy.keys import BlindIndex, MasterKeys, KeyUnreadable
from infrastructure.privacy.personal_fields import APPLICANT, PERSONAL_FIELDS, REQUEST
from onestop.settings import Settings, SettingsError
from tests.unit.test_topics import _stored_events

KEY_A = "b25lc3RvcC10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM="
KEY_B = "b25lc3RvcC10ZXN0LWJsaW5kLWluZGV4LWtleS0zMiE="


def _fields(event: type[DomainEvent]) -> set[str]:
    names: set[str] = set()
    for klass in event.__mro__:
        names |= set(getattr(klass, "__annotations__", {}))
    return names


@pytest.mark.parametrize("event", _stored_events(), ids=lambda e: e.__qualname__)
def test_every_stored_event_is_classified_and_its_personal_fields_exist(event: type[DomainEvent]) -> None:
    assert event.TOPIC in PERSONAL_FIELDS, f"{event.TOPIC} is not classified in infrastructure/privacy/personal_fields.py"
    rule = PERSONAL_FIELDS[event.TOPIC]
    assert set(rule.fields) <= _fields(event)
    if rule.subject == APPLICANT:
        assert "applicant" in _fields(event)
    if rule.subject == REQUEST:
        assert "request_id" in _fields(event)


def test_the_classification_names_no_topic_the_domain_does_not_have() -> None:
    assert set(PERSONAL_FIELDS) == {e.TOPIC for e in _stored_events()}


def test_the_applicant_and_what_the_citizen_typed_are_personal_and_amounts_are_not() -> None:
    submitted = PERSONAL_FIELDS["onestop:ServiceRequest.Submitted"]
    assert {"applicant", "details"} <= set(submitted.fields)
    assert "message" in PERSONAL_FIELDS["onestop:ServiceRequest.InfoProvided"].fields
    assert "registry" in PERSONAL_FIELDS["onestop:ServiceRequest.ApplicantVerified"].fields
    assert PERSONAL_FIELDS["onestop:Payment.Received"].fields == ()


def test_a_data_key_wrapped_by_one_master_key_unwraps_only_with_it_or_after_rotation() -> None:
    from base64 import b64decode
    from uuid import uuid4

    subject, data_key = uuid4(), b"k" * 32
    old = MasterKeys(b64decode(KEY_A))
    wrapped = old.wrap(subject, data_key)
    assert old.unwrap(old.current_id, subject, wrapped) == data_key
    new = MasterKeys(b64decode(KEY_B))
    with pytest.raises(KeyUnreadable):
        new.unwrap(old.current_id, subject, wrapped)
    with pytest.raises(KeyUnreadable):
        old.unwrap(old.current_id, uuid4(), wrapped)  # bound to its subject
    during_rotation = MasterKeys(b64decode(KEY_B), previous=[b64decode(KEY_A)])
    assert during_rotation.unwrap(old.current_id, subject, wrapped) == data_key


def test_the_blind_index_is_stable_keyed_and_ignores_separators() -> None:
    index = BlindIndex(b"a" * 32)
    assert index("3100600445635") == index("3-1006-00445-63-5") == index(" 3100600445635 ")
    assert index("3100600445635") != index("1101700230705")
    assert BlindIndex(b"b" * 32)("3100600445635") != index("3100600445635")
    assert "3100600445635" not in index("3100600445635") and len(index("3100600445635")) == 64


def test_settings_read_the_master_key_from_its_file_and_name_a_missing_one(tmp_path: typing.Any) -> None:
    key_file = tmp_path / "master_key"
    key_file.write_text(KEY_A + "\n")
    settings = Settings.from_env({"ONESTOP_MASTER_KEY_FILE": str(key_file), "ONESTOP_BLIND_INDEX_KEY": KEY_B})
    assert settings.require_master_key() != settings.require_blind_index_key()
    with pytest.raises(SettingsError, match="ONESTOP_MASTER_KEY or ONESTOP_MASTER_KEY_FILE is required"):
        Settings.from_env({}).require_master_key()
    with pytest.raises(SettingsError, match="cannot be read"):
        Settings.from_env({"ONESTOP_MASTER_KEY_FILE": str(tmp_path / "nowhere")})
    with pytest.raises(SettingsError, match="ONESTOP_MASTER_KEY .*32"):
        Settings.from_env({"ONESTOP_MASTER_KEY": "c2hvcnQ="})
    with pytest.raises(SettingsError, match="ONESTOP_ENCRYPT_PERSONAL_DATA"):
        Settings.from_env({"ONESTOP_ENCRYPT_PERSONAL_DATA": "maybe"})


def test_the_application_refuses_to_start_without_a_master_key() -> None:
    from onestop.bootstrap import build_back_office

    settings = Settings.from_env({"ONESTOP_DATABASE_URL": "postgresql://u:p@db.invalid:5432/onestop", "ONESTOP_JWT_SECRET": "x",
                                  "ONESTOP_BLIND_INDEX_KEY": KEY_B})
    with pytest.raises(SettingsError, match="ONESTOP_MASTER_KEY"):
        build_back_office(settings)  # refused before it connects to anything


def test_every_event_naming_a_person_is_encrypted_and_none_is_left_plain() -> None:
    import infrastructure.privacy.personal_fields as personal_fields

    assert not hasattr(personal_fields, "NOT_YET_ENCRYPTED")
    for topic in ("onestop:Recipient.Registered", "onestop:TaxNotice.Issued", "onestop:Appointment.Booked", "onestop:Receipt.Issued",
                  "onestop:DisbursementBatch.Prepared", "onestop:DisbursementBatch.Settled", "onestop:TaxRoll.ParcelsRecorded",
                  "onestop:TaxRoll.NoticesIssued", "onestop:Appointment.Cancelled", "onestop:Recipient.Suspended"):
        assert PERSONAL_FIELDS[topic].subject is not None and PERSONAL_FIELDS[topic].fields, topic


def test_a_person_is_named_by_a_field_the_event_has_and_batch_elements_by_a_position_they_have() -> None:
    from domain.allowance import LINE_FIELDS, RESULT_FIELDS
    from domain.tax_roll import PARCEL_FIELDS
    from infrastructure.privacy.personal_fields import ELEMENTS, PERSON

    events = {e.TOPIC: e for e in _stored_events()}
    for topic, rule in PERSONAL_FIELDS.items():
        if rule.subject == PERSON:
            assert rule.person in _fields(events[topic]) and rule.person in rule.fields, topic
        if rule.subject == REQUEST:
            assert set(rule.via) <= _fields(events[topic]), topic
        if rule.subject == ELEMENTS:
            assert rule.elements is not None and rule.elements.personal, topic
    widths = {"onestop:DisbursementBatch.Prepared": LINE_FIELDS, "onestop:DisbursementBatch.Settled": RESULT_FIELDS,
              "onestop:TaxRoll.ParcelsRecorded": PARCEL_FIELDS, "onestop:TaxRoll.NoticesIssued": ("owner_id", "notice_id")}
    for topic, names in widths.items():
        elements = PERSONAL_FIELDS[topic].elements
        assert elements is not None and max(elements.personal) < len(names)
    assert [LINE_FIELDS[i] for i in PERSONAL_FIELDS["onestop:DisbursementBatch.Prepared"].elements.personal] == ["national_id", "payout_account"]  # type: ignore[union-attr]
    assert [PARCEL_FIELDS[i] for i in PERSONAL_FIELDS["onestop:TaxRoll.ParcelsRecorded"].elements.personal] == ["owner_id", "owner_name"]  # type: ignore[union-attr]


def test_a_batch_events_key_sets_are_read_from_the_start_of_its_stored_state_and_an_element_opens_only_under_its_key() -> None:
    from uuid import uuid4

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from infrastructure.privacy.envelopes import ERASED, FieldCipher, subjects_in

    a, b = uuid4(), uuid4()
    assert subjects_in(b'{"_subjects_":["' + str(a).encode() + b'","' + str(b).encode() + b'"],"rows":[]}') == [a, b]
    assert subjects_in(b'{"_subjects_":[],"rows":[]}') == []

    class Keys:
        ciphers = {a: AESGCM(AESGCM.generate_key(bit_length=256)), b: None}

        def cipher(self, subject_id):  # type: ignore[no-untyped-def]
            return self.ciphers.get(subject_id)

    fields = FieldCipher(Keys(), None, None)  # type: ignore[arg-type]
    row = ["P-1", "3100600445635", "individual", "สมชาย ใจดี", "commercial", 300, 0]
    sealed = fields.seal_element(a, "rows", row, (1, 3), Keys.ciphers[a])
    assert sealed[0] == "P-1" and sealed[3] is None and sealed[4:] == row[4:] and "3100600445635" not in str(sealed)
    assert fields.open_elements("rows", [sealed]) == [row]
    assert fields.open_elements("lines", [sealed])[0][1] == ERASED  # bound to its field
    erased = {**sealed[1], "_s_": str(b)}
    assert fields.open_elements("rows", [[*sealed[:1], erased, *sealed[2:]]])[0][1:4] == [ERASED, "individual", ERASED]
    # As the mapper writes them: the key set by its place in the event's "_subjects_".
    by_place = fields.seal_element(a, "rows", row, (1, 3), Keys.ciphers[a], ref=1)
    assert by_place[1]["_s_"] == 1 and fields.open_elements("rows", [by_place], [str(b), str(a)]) == [row]
    assert fields.open_elements("rows", [by_place], [str(a), str(b)])[0][1] == ERASED


def test_an_events_personal_values_go_into_one_envelope_that_opens_only_under_its_subjects_key_and_reads_erased_with_its_shape() -> None:
    from uuid import uuid4

    import orjson
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from infrastructure.privacy.envelopes import ERASED, FieldCipher, encode_plain

    a, b = uuid4(), uuid4()

    class Keys:
        ciphers = {a: AESGCM(AESGCM.generate_key(bit_length=256)), b: AESGCM(AESGCM.generate_key(bit_length=256))}

        def cipher(self, subject_id):  # type: ignore[no-untyped-def]
            return self.ciphers.get(subject_id)

    fields = FieldCipher(Keys(), encode_plain(None), orjson.loads)  # type: ignore[arg-type]
    plain = {"service": "complaint", "applicant": {"national_id": "3100600445635", "name": "สมชาย ใจดี"},
             "details": {"subject": "ไฟดับ"}, "note": None, "actor": {"role": "citizen", "sub": "3100600445635"}}
    state = orjson.loads(orjson.dumps(plain))
    fields.seal_event(a, state, ("applicant", "details", "note"), Keys.ciphers[a])
    stored = orjson.dumps(state)
    assert b"3100600445635" not in stored and "สมชาย".encode() not in stored and "ไฟดับ".encode() not in stored
    assert state["service"] == "complaint" and state["note"] is None and state["actor"] == {"role": "citizen"}
    assert state["_sealed_"] == {"applicant": ["national_id", "name"], "details": ["subject"], "actor.sub": None}
    assert fields.reveal(orjson.loads(stored), a) == plain
    # Under another person's key (an envelope moved between people), or with the key deleted:
    # every sealed field reads [erased], dicts keeping their keys.
    erased = {"service": "complaint", "applicant": {"national_id": ERASED, "name": ERASED}, "details": {"subject": ERASED},
              "note": None, "actor": {"role": "citizen", "sub": ERASED}}
    assert fields.reveal(orjson.loads(stored), b) == erased
    Keys.ciphers[a] = None  # type: ignore[assignment]
    assert fields.reveal(orjson.loads(stored), a) == erased
    # Written for a subject already erased: nothing of theirs is kept, not even sealed.
    state = orjson.loads(orjson.dumps(plain))
    fields.seal_event(a, state, ("applicant", "details", "note"), None)
    assert "_pd_" not in state and state == erased


def test_events_written_with_an_envelope_a_field_are_still_read() -> None:
    import base64
    import os
    from uuid import uuid4

    import orjson
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from infrastructure.privacy.envelopes import ERASED, FieldCipher, encode_plain

    a = uuid4()
    key = AESGCM(AESGCM.generate_key(bit_length=256))

    class Keys:
        def cipher(self, subject_id):  # type: ignore[no-untyped-def]
            return key if subject_id == a else None

    fields = FieldCipher(Keys(), encode_plain(None), orjson.loads)  # type: ignore[arg-type]

    def seal(field: str, value: object) -> dict[str, object]:
        # The earlier format: one field in its own envelope, the subject and the field name as
        # associated data, a dict's keys beside it.
        nonce = os.urandom(12)
        sealed = key.encrypt(nonce, orjson.dumps(value), a.bytes + field.encode())
        envelope: dict[str, object] = {"_pd_": base64.b64encode(nonce + sealed).decode()}
        if isinstance(value, dict):
            envelope["_keys_"] = list(value)
        return envelope

    applicant = {"national_id": "3100600445635", "name": "สมชาย ใจดี"}
    old = {"service": "complaint", "applicant": seal("applicant", applicant),
           "actor": {"role": "citizen", "sub": seal("actor.sub", "3100600445635")}}
    assert set(old["applicant"]) == {"_pd_", "_keys_"}
    stored = orjson.loads(orjson.dumps(old))
    assert fields.reveal(stored, a, ("applicant",)) == {"service": "complaint", "applicant": applicant,
                                                       "actor": {"role": "citizen", "sub": "3100600445635"}}
    assert fields.reveal(orjson.loads(orjson.dumps(old)), uuid4(), ("applicant",))["applicant"] == {"national_id": ERASED, "name": ERASED}


def test_an_envelope_opened_a_moment_ago_is_not_decrypted_again_but_never_outlives_its_key_or_opens_for_another_subject() -> None:
    """The projector opens each event for its views, then for its feed: the second reader takes
    the plaintext the first one got, but only for the same subject and while its key is held,
    and an erasure (``forget``) empties what was kept."""
    import base64

    import orjson

    from infrastructure.privacy.envelopes import ERASED, FieldCipher, encode_plain
    from infrastructure.privacy.keys import PendingKeys, SubjectKeys

    keys = SubjectKeys(None, MasterKeys(base64.b64decode(KEY_A)))
    pending = PendingKeys()
    subject = keys.new_subject("index-a", pending)
    other = keys.new_subject("index-b", pending)
    writer = FieldCipher(keys, encode_plain(None), orjson.loads)
    views = FieldCipher(keys, encode_plain(None), orjson.loads, keys.opened)
    feed = FieldCipher(keys, None, orjson.loads, keys.opened)
    plain = {"applicant": {"national_id": "3100600445635", "name": "สมชาย ใจดี"}, "actor": {"role": "citizen", "sub": "3100600445635"}}
    state = orjson.loads(orjson.dumps(plain))
    writer.seal_event(subject, state, ("applicant",), pending.ciphers[subject])
    stored = orjson.dumps(state)

    decrypted: list[bytes] = []
    aead = pending.ciphers[subject]

    class Counting:
        def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
            decrypted.append(nonce)
            return aead.decrypt(nonce, data, aad)  # type: ignore[no-any-return]

    assert views.open_event(subject, orjson.loads(stored), Counting()) == plain
    assert feed.open_event(subject, orjson.loads(stored), Counting()) == plain
    assert len(decrypted) == 1 and len(keys.opened) == 1
    # The same envelope put on another person's event: decrypted under that person's key, it does not open.
    assert feed.open_event(other, orjson.loads(stored), pending.ciphers[other])["applicant"] == {"national_id": ERASED, "name": ERASED}
    # A subject whose key is gone reads erased, whatever was opened before.
    assert feed.open_event(subject, orjson.loads(stored), None)["applicant"] == {"national_id": ERASED, "name": ERASED}
    keys.forget([subject])
    assert keys.opened == {} and keys.cached(subject) == (False, None)
    # Opening again needs the key again (here: handed over), and decrypts.
    assert feed.open_event(subject, orjson.loads(stored), Counting()) == plain and len(decrypted) == 2


def test_the_key_cache_keeps_32_byte_keys_and_cipher_objects_only_for_the_keys_used_last() -> None:
    """A cipher object is 2.4 KB: the cache keeps each key's 32 bytes, and cipher objects only
    for the last few keys used. A key whose cipher object was let go still encrypts and
    decrypts the same; an erasure leaves no cipher behind."""
    import base64
    import os
    from uuid import uuid4

    from infrastructure.privacy.keys import HOT_CIPHERS, PendingKeys, SubjectKeys

    keys = SubjectKeys(None, MasterKeys(base64.b64decode(KEY_A)))
    pending = PendingKeys()
    first = keys.new_subject("index-0", pending)
    nonce = os.urandom(12)
    sealed = pending.ciphers[first].encrypt(nonce, b"plain", b"aad")
    people = [keys.new_subject(f"index-{n}", pending) for n in range(1, 2 * HOT_CIPHERS)]
    assert all(type(key) is bytes and len(key) == 32 for _, key in keys._keys.values())
    assert len(keys._keys) == 2 * HOT_CIPHERS and len(keys._hot) <= HOT_CIPHERS and first not in keys._hot
    known, cipher = keys.cached(first)  # made again from its 32 bytes
    assert known and cipher is not pending.ciphers[first] and cipher.decrypt(nonce, sealed, b"aad") == b"plain"
    assert keys.cached(first)[1] is cipher and keys.known(people[-1]) and not keys.known(uuid4())
    keys.forget([first])
    assert keys.cached(first) == (False, None) and not keys.known(first) and keys._hot == {}


def test_a_subjects_events_read_back_exactly_as_written_with_typed_values_and_a_broken_state_fails_as_before() -> None:
    """Events of one data subject are read in one pass (parse, open the envelope, revive typed
    values, make the event as eventsourcing does): they come back equal to what was saved,
    typed personal values included, and a stored state that is not JSON fails with the
    library's own error, as every other state does."""
    import base64
    from uuid import uuid4

    import orjson
    from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

    from infrastructure.privacy.keys import SubjectKeys
    from infrastructure.privacy.mapper import PersonalDataMapper
    from domain.actors import Actor
    from domain.service_request import ServiceRequest
    from tests.unit.test_application_save import AT, CITIZEN, office

    OFFICER = Actor(sub="officer-1", role="officer", org="MUN-SAENSUK")

    app = office(TRANSCODER_TOPIC="infrastructure.eventstore.transcoder:OrjsonTranscoder")  # as onestop.bootstrap builds it
    try:
        case = uuid4()  # a typed value among what the citizen typed, as the transcoder writes it
        keys = SubjectKeys(None, MasterKeys(base64.b64decode(KEY_A)))
        mapper = PersonalDataMapper(app.mapper, keys, BlindIndex(base64.b64decode(KEY_B)))
        filed = ServiceRequest.file(
            id=uuid4(), at=AT, actor=CITIZEN, channel="web", reference="OS690000001", service="complaint",
            organization="MUN-SAENSUK", filed_at="MUN-SAENSUK", applicant={"national_id": "3100600445635", "name": "สมชาย ใจดี"},
            details={"subject": "ไฟถนนดับ", "since": AT, "case": case}, due_at=AT, request_hash="h",
        )
        filed.start_review(CITIZEN, "web", AT)
        events = filed.collect_events()
        staff = ServiceRequest.file(
            id=uuid4(), at=AT, actor=OFFICER, channel="counter", reference="OS690000002", service="complaint",
            organization="MUN-SAENSUK", filed_at="MUN-SAENSUK", applicant={"national_id": "3100600445635", "name": "สมชาย ใจดี"},
            details={"subject": "ไฟถนนดับ"}, due_at=AT, request_hash="h2",
        )
        staff.start_review(OFFICER, "counter", AT)  # a step with nothing personal in it
        events += staff.collect_events()
        pending = mapper.prepare(events)  # a new person: a new key set, made without the database
        stored = [mapper.to_stored_event(e, pending=pending) for e in events]
        assert all(b"3100600445635" not in s.state for s in stored)
        # The citizen's own step seals their sub; the officer's holds nothing personal and is stored as it is.
        assert [s.state.startswith(b'{"_subject_":') for s in stored] == [True, True, True, False]
        assert mapper._revive is not None  # the one-pass reading is the one tested
        read = [mapper.to_domain_event(s) for s in stored]
        assert [type(e) for e in read] == [type(e) for e in events]
        assert [e.__dict__ for e in read] == [e.__dict__ for e in events]
        assert read[0].details["since"] == AT and read[0].details["case"] == case and read[1].actor["sub"] == "3100600445635"
        broken = StoredEvent(originator_id=stored[0].originator_id, originator_version=1, topic=stored[0].topic,
                             state=stored[0].state[:60] + b"not json")
        with pytest.raises(MapperDeserialisationError):
            mapper.to_domain_event(broken)
        assert orjson.loads(stored[1].state)["actor"] == {"role": "citizen", "org": None}
    finally:
        app.close()


def test_a_new_key_sets_id_is_a_version_7_uuid_of_the_time_and_its_random_bytes() -> None:
    import os
    import time
    import uuid

    from infrastructure.privacy.keys import _uuid7

    now = time.time_ns() // 1_000_000
    made = []
    for n in range(500):
        random10 = os.urandom(10)
        one = _uuid7(random10, now + n)
        assert one.version == 7 and one.variant == uuid.RFC_4122
        assert one.int >> 80 == now + n  # the time, in its first 48 bits
        rand = int.from_bytes(random10, "big") & ((1 << 74) - 1)
        assert (one.int >> 64) & 0xFFF == rand >> 62 and one.int & ((1 << 62) - 1) == rand & ((1 << 62) - 1)  # 74 random bits
        assert one == uuid.UUID(str(one)) and hash(one) == hash(uuid.UUID(str(one))) and one.bytes == uuid.UUID(str(one)).bytes
        made.append(one)
    assert made == sorted(made) and len(set(made)) == 500  # later ids sort after earlier ones


