"""Personal fields encrypted per data subject in the event store's mapper: the domain stays plain.

A stored event of a data subject starts with ``"_subject_": "<subject id>"`` (a random id, not
the person's; ``keys.py``), and each of its personal fields (``personal_fields.py``) is stored as
an envelope: ``{"_pd_": "<base64 of nonce, ciphertext and tag>"}`` (AES-256-GCM with the
subject's data key; the subject and the field name are the associated data, so an envelope
moved to another field or person does not open), and a dict also keeps its keys
(``"_keys_": [...]``), so that after erasure it reads ``{"name": "[erased]", ...}`` with its
shape intact. Every other field stays plain (codes, amounts, references, times), so the log's
hash chain covers the ciphertext and erasure changes no stored byte.

Reading: a field whose subject's key is deleted reads ``"[erased]"``. Writing for an erased
subject stores ``"[erased]"`` in its personal fields: nothing new is kept about them.

Keys are resolved for a whole ``save()`` before its events are encoded (``prepare``: from the
cache, else one query), new key sets are written in the save's own transaction
(``PersonalEventStore``), and a whole batch of stored events has its keys loaded before it is
decoded (``prefetch``): never one query an event.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any, Iterable, Sequence
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from eventsourcing.persistence import EventStore, Mapper, Notification, Recording, StoredEvent
from eventsourcing.utils import get_topic

from domain.payment import Payment
from infrastructure.errors import UnknownDataSubject
from infrastructure.privacy.keys import ERASED_MARKER, NONCE_BYTES, BlindIndex, PendingKeys, SubjectKeys
from infrastructure.privacy.personal_fields import APPLICANT, PERSONAL_FIELDS, REQUEST, Classification

_NONE = Classification(None)

ERASED = "[erased]"
ENVELOPE = "_pd_"
KEYS = "_keys_"
SUBJECT = "_subject_"
_SUBJECT_PREFIX = b'{"' + SUBJECT.encode() + b'":"'
ERASURE_TOPIC = "onestop:DataSubject.Erased"
_LOOKUP = object()


def _aad(subject_id: UUID, field: str) -> bytes:
    return subject_id.bytes + field.encode()


def is_envelope(value: Any) -> bool:
    return type(value) is dict and ENVELOPE in value


def subject_in(state: bytes) -> UUID | None:
    """The subject id at the start of a stored state, without parsing it."""
    if state[:len(_SUBJECT_PREFIX)] == _SUBJECT_PREFIX:
        start = len(_SUBJECT_PREFIX)
        return UUID(state[start:start + 36].decode())
    return None


def _json_native(value: Any) -> bool:
    """Only JSON's own types (what requests and outside answers carry): such a value is encoded
    with orjson, which the transcoder reads back the same; anything else goes through the
    transcoder, which records its type."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None or kind is float:
        return True
    if kind is dict:
        return all(type(k) is str and _json_native(v) for k, v in value.items())
    if kind is list:
        return all(_json_native(v) for v in value)
    return False


def encode_plain(fallback: Any) -> Any:
    def encode(value: Any) -> bytes:
        return orjson.dumps(value) if _json_native(value) else fallback(value)  # type: ignore[no-any-return]

    return encode


class FieldCipher:
    """Seals and opens personal field values with a subject's key."""

    def __init__(self, keys: SubjectKeys, encode: Any, decode: Any) -> None:
        self.keys = keys
        self._encode = encode
        self._decode = decode

    def seal(self, subject_id: UUID, field: str, value: Any) -> Any:
        if value is None:
            return None
        aead = self.keys.cipher(subject_id)
        if aead is None:
            return {k: ERASED for k in value} if type(value) is dict else ERASED
        nonce = os.urandom(NONCE_BYTES)
        sealed = aead.encrypt(nonce, self._encode(value), _aad(subject_id, field))
        envelope: dict[str, Any] = {ENVELOPE: base64.b64encode(nonce + sealed).decode()}
        if type(value) is dict:
            envelope[KEYS] = list(value)
        return envelope

    def open(self, subject_id: UUID, field: str, envelope: dict[str, Any], aead: Any = _LOOKUP) -> Any:
        if aead is _LOOKUP:
            aead = self.keys.cipher(subject_id)
        if aead is None:
            keys = envelope.get(KEYS)
            return {k: ERASED for k in keys} if keys is not None else ERASED
        try:
            raw = base64.b64decode(envelope[ENVELOPE])
            plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(subject_id, field))
        except (InvalidTag, binascii.Error, ValueError):
            # Written under another key, or altered: it cannot be read, which is what erased
            # means to a reader.
            keys = envelope.get(KEYS)
            return {k: ERASED for k in keys} if keys is not None else ERASED
        # Plain JSON (what encode_plain wrote with orjson) needs no reviving of typed values.
        return orjson.loads(plain) if b'"_type_"' not in plain else self._decode(plain)

    def reveal(self, state: dict[str, Any], subject_id: UUID, fields: Iterable[str] | None = None) -> dict[str, Any]:
        """Open the envelopes of a decoded state in place: of ``fields`` (the event type's
        personal fields) or, without them, of every top-level field; and ``actor.sub``."""
        aead = self.keys.cipher(subject_id)
        for field in (state if fields is None else fields):
            value = state.get(field)
            if type(value) is dict and ENVELOPE in value:
                state[field] = self.open(subject_id, field, value, aead)
        actor = state.get("actor")
        if type(actor) is dict:
            sub = actor.get("sub")
            if type(sub) is dict and ENVELOPE in sub:
                state["actor"] = {**actor, "sub": self.open(subject_id, "actor.sub", sub, aead)}
        return state


class PersonalDataMapper(Mapper):
    """The event store's mapper, with the personal fields of each event encrypted under its
    data subject's key."""

    def __init__(self, base: Mapper, keys: SubjectKeys, blind_index: BlindIndex) -> None:
        super().__init__(transcoder=base.transcoder, compressor=base.compressor, cipher=base.cipher)
        self.keys = keys
        self.blind_index = blind_index
        self.fields = FieldCipher(keys, encode_plain(self.transcoder.encode), self.transcoder.decode)
        self._uuids: dict[str, UUID] = {}

    # -- writing -----------------------------------------------------------------------------

    def prepare(self, events: Sequence[Any]) -> PendingKeys:
        """Resolve the subjects and keys of the events of one save. A new request's applicant
        gets the key set this process has cached for them, else a new one; what is new is
        returned, to be written in the save's own transaction. The database is read only for
        an aggregate or key this process has not seen (then in one query each)."""
        pending = PendingKeys()
        unknown: set[UUID] = set()
        created = {e.originator_id for e in events if PERSONAL_FIELDS.get(get_topic(type(e)), _NONE).subject == APPLICANT}
        for event in events:
            rule = PERSONAL_FIELDS.get(get_topic(type(event)))
            if rule is None or rule.subject is None:
                continue
            if rule.subject == APPLICANT:
                index = self.blind_index(event.applicant["national_id"])
                subject_id = self.keys.subject_for_index(index)
                if subject_id is None:
                    subject_id = self.keys.new_subject(index, pending)
                else:
                    pending.reused.add(subject_id)
                pending.links[event.originator_id] = subject_id
                self.keys.remember_subject(event.originator_id, subject_id)
            elif rule.subject == REQUEST:
                if event.request_id is None:
                    continue
                if event.request_id not in created and self.keys.subject_of(event.request_id) is None:
                    unknown.add(event.request_id)
            elif event.originator_id not in created and self.keys.subject_of(event.originator_id) is None:
                unknown.add(event.originator_id)
        needed = {s for s in (self.keys.subject_of(e.originator_id) for e in events) if s is not None}
        if unknown or any(not self.keys.cached(s)[0] for s in needed):
            with self.keys.transaction(commit=False) as curs:
                self.keys.subjects_of(curs, unknown)
                self.keys.load(curs, {s for s in (self.keys.subject_of(a) for a in unknown) if s is not None} | needed)
        for event in events:
            rule = PERSONAL_FIELDS.get(get_topic(type(event)), _NONE)
            if rule.subject == REQUEST:
                subject_id = self.keys.subject_of(event.request_id) if event.request_id is not None else None
                if subject_id is not None:
                    pending.links[event.originator_id] = subject_id
                    self.keys.remember_subject(event.originator_id, subject_id)
            if rule.subject is not None and isinstance(event, Payment.Event) and self.keys.subject_of(event.originator_id) is None \
                    and event.originator_id not in pending.links:
                # No person's key: a payment of a land-tax notice (no request), and that
                # payment's later events. Stored without a subject (README "Personal data",
                # not yet encrypted).
                pending.subjectless.add(event.originator_id)
        return pending

    def to_stored_event(self, domain_event: Any, *, subjectless: bool = False) -> StoredEvent:
        topic = get_topic(type(domain_event))
        rule = PERSONAL_FIELDS.get(topic)
        if rule is None or rule.subject is None or subjectless:
            return super().to_stored_event(domain_event)
        subject_id = self.keys.subject_of(domain_event.originator_id)
        if subject_id is None:
            # Only through the personal event store, which prepares a save's subjects first.
            raise UnknownDataSubject(f"no data subject is known for {topic} of {domain_event.originator_id}")
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        seal = self.fields.seal
        for field in rule.fields:
            state[field] = seal(subject_id, field, state.get(field))
        actor = state.get("actor")
        if type(actor) is dict and actor.get("role") == "citizen" and actor.get("sub") is not None:
            state["actor"] = {**actor, "sub": seal(subject_id, "actor.sub", actor["sub"])}
        stored_state = self.transcoder.encode({SUBJECT: str(subject_id), **state})
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version, topic=topic, state=stored_state)

    # -- reading -----------------------------------------------------------------------------

    def prefetch(self, stored_events: Iterable[StoredEvent], curs: Any | None = None) -> None:
        """Load the keys of a batch of stored events in one query (the projector, a rebuild);
        with ``curs``, in that cursor's transaction (a caller that holds the pool's only
        connection)."""
        subjects = set()
        for stored in stored_events:
            subject_id = subject_in(stored.state) if not (self.compressor or self.cipher) else None
            if subject_id is not None:
                subjects.add(subject_id)
        if any(not self.keys.cached(s)[0] for s in subjects):
            if curs is not None:
                self.keys.load(curs, subjects)
                return
            with self.keys.transaction(commit=False) as own:
                self.keys.load(own, subjects)

    def to_domain_events(self, stored_events: Sequence[StoredEvent]) -> list[Any]:
        self.prefetch(stored_events)
        return [self.to_domain_event(s) for s in stored_events]

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        state = event.__dict__
        subject = state.pop(SUBJECT, None)
        if subject is not None:
            subject_id = self._uuids.get(subject)
            if subject_id is None:
                if len(self._uuids) > 100_000:
                    self._uuids.clear()
                subject_id = self._uuids[subject] = UUID(subject)
            self.keys.remember_subject(stored_event.originator_id, subject_id)  # type: ignore[arg-type]
            rule = PERSONAL_FIELDS.get(stored_event.topic)
            self.fields.reveal(state, subject_id, rule.fields if rule is not None else None)
        elif stored_event.topic == ERASURE_TOPIC:
            # Every process that reads the log forgets an erased person's keys at once.
            self.keys.forget(UUID(s) for s in state.get("subjects", ()))
        return event


class PersonalEventStore(EventStore):
    """The event store: resolves a save's subjects and keys, then writes the new key sets in
    the same transaction as the events (``PersonalKeysRecorder``)."""

    mapper: PersonalDataMapper

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Recording]:
        if not domain_events:
            return []
        for attempt in range(2):
            pending = self.mapper.prepare(domain_events)
            stored_events = [self.mapper.to_stored_event(e, subjectless=e.originator_id in pending.subjectless) for e in domain_events]
            try:
                notification_ids = self.recorder.insert_events(stored_events, personal_keys=pending, **kwargs)
            except Exception as error:
                self.mapper.keys.discard(pending)
                if attempt == 0 and pending.reused and ERASED_MARKER in str(error):
                    continue  # a reused key set was erased meanwhile: again, with a new one
                raise
            break
        recordings = []
        if notification_ids:
            for d, s, n_id in zip(domain_events, stored_events, notification_ids, strict=True):
                recordings.append(Recording(d, Notification(originator_id=s.originator_id, originator_version=s.originator_version,
                                                            topic=s.topic, state=s.state, id=n_id)))
        return recordings


def _with_personal_keys(recorder: Any) -> None:
    """Make eventsourcing's PostgreSQL recorder write a save's new key sets and subjects in
    the save's own transaction: its ``_insert_events`` hook runs first in the pipeline."""
    original = recorder._insert_events

    def insert_events(curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        pending = kwargs.get("personal_keys")
        if pending:
            pending.write(curs)
        original(curs, stored_events, **kwargs)

    recorder._insert_events = insert_events


def install(app: Any, keys: SubjectKeys, blind_index: BlindIndex) -> PersonalDataMapper:
    """Put the personal-data mapper into an eventsourcing application, after it is built."""
    mapper = PersonalDataMapper(app.mapper, keys, blind_index)
    _with_personal_keys(app.recorder)
    events = PersonalEventStore(mapper=mapper, recorder=app.recorder)
    app.mapper = mapper
    app.events = events
    app.repository.event_store = events
    return mapper


def reveal_document_state(fields: FieldCipher, state: dict[str, Any]) -> dict[str, Any]:
    """A stored state as parsed JSON (audit reads, the feed), with its envelopes opened."""
    subject = state.pop(SUBJECT, None)
    if subject is None:
        return state
    return fields.reveal(state, UUID(subject))


def parse(state: bytes) -> Any:
    return orjson.loads(state)
