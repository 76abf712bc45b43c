"""The sealed format of personal data (README "Personal data").

An event of one data subject keeps all its personal values in one envelope, sealed with the
subject's data key: ``"_pd_": "<base64 of nonce, ciphertext and tag>"`` at the top of its state,
beside ``"_sealed_": {field: [its keys] or null}``, which names the fields taken out of the plain
state (and ``"actor.sub"``) and keeps each dict's keys, so that after erasure a field reads
``"[erased]"`` (a dict ``{key: "[erased]", ...}``) with its shape intact. One AES-GCM operation
and one base64 text an event, whatever the number of its personal fields.

Events written before that format seal each field on its own (``{"_pd_": ..., "_keys_": [...]}``
in place of the field's value); they are still read.

A batch event's element is sealed as ``{"_pe_": ..., "_s_": <its key set's place in
"_subjects_">, "_at_": [personal positions]}``. ``FieldCipher`` seals and opens them; the mapper
(``mapper.py``) decides which fields, with whose key, for each event."""

from __future__ import annotations

import binascii
from binascii import b2a_base64
from typing import Any, Iterable, Sequence
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag

from infrastructure.privacy.keys import NONCE_BYTES, SUBJECT, SUBJECT_PREFIX, SubjectKeys, random_bytes

ERASED = "[erased]"
ENVELOPE = "_pd_"
KEYS = "_keys_"
SUBJECTS = "_subjects_"  # a batch event: the key sets of its elements (for loading them in one query)
ELEMENT = "_pe_"  # an element's envelope: {"_pe_": ..., "_s_": subject, "_at_": [personal positions]}
ELEMENT_SUBJECT = "_s_"
ELEMENT_AT = "_at_"
SEALED = "_sealed_"  # an event's envelope: the fields it holds, each with its dict's keys or null
ACTOR_SUB = "actor.sub"
EVENT_AAD = b"\0event"  # after the subject id: an event's envelope (a field name never holds NUL)
SUBJECTS_PREFIX = b'{"' + SUBJECTS.encode() + b'":['
LOOKUP = object()
OPENED_KEPT = 4096  # envelopes whose plaintext is kept for a second reader (``SubjectKeys.opened``)


def _aad(subject_id: UUID, field: str) -> bytes:
    return subject_id.bytes + field.encode()


_SUBJECT_IDS: dict[str, UUID] = {}  # subject ids as the log writes them, parsed (bounded)


def subject_uuid(text: str) -> UUID:
    """A subject id as a state holds it, as a UUID: parsed once per subject (every reader of
    the log meets the same subjects again and again). ValueError for text that is no UUID."""
    found = _SUBJECT_IDS.get(text)
    if found is None:
        if len(_SUBJECT_IDS) >= 100_000:
            _SUBJECT_IDS.clear()
        found = _SUBJECT_IDS[text] = UUID(text)
    return found


def subject_in(state: bytes) -> UUID | None:
    """The subject id at the start of a stored state, without parsing it."""
    if state[:len(SUBJECT_PREFIX)] == SUBJECT_PREFIX:
        start = len(SUBJECT_PREFIX)
        return subject_uuid(state[start:start + 36].decode())
    return None


def subjects_in(state: bytes) -> list[UUID]:
    """The key sets of a batch event's stored state (its ``"_subjects_"``, first), without
    parsing the rest of it."""
    end = state.find(b"]", len(SUBJECTS_PREFIX))
    return [UUID(s.strip().strip(b'"').decode()) for s in state[len(SUBJECTS_PREFIX):end].split(b",") if s.strip()]


_SCALARS = frozenset({str, int, bool, float, type(None)})


def _json_native(value: Any) -> bool:
    """Only JSON's own types (what requests and outside answers carry): such a value is encoded
    with orjson, which the transcoder reads back the same; anything else goes through the
    transcoder, which records its type. (Loops rather than ``all()`` over generators: this runs
    for every sealed event.)"""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or (type(item) not in _SCALARS and not _json_native(item)):
                return False
        return True
    if kind is list:
        for item in value:
            if type(item) not in _SCALARS and not _json_native(item):
                return False
        return True
    return False


def encode_plain(fallback: Any) -> Any:
    def encode(value: Any) -> bytes:
        if type(value) is str or _json_native(value):
            return orjson.dumps(value)
        return fallback(value)  # type: ignore[no-any-return]

    return encode


class FieldCipher:
    """Seals and opens personal field values with a subject's key."""

    def __init__(self, keys: SubjectKeys, encode: Any, decode: Any, opened: dict[str, tuple[UUID, bytes]] | None = None) -> None:
        self.keys = keys
        self._encode = encode
        self._decode = decode
        # Envelopes opened a moment ago, shared by the ciphers of one process (SubjectKeys.opened).
        self._opened = opened

    def seal_event(self, subject_id: UUID, state: dict[str, Any], fields: Sequence[str], aead: Any, aad: bytes | None = None) -> bool:
        """Take the personal values of an event's ``state`` (its ``fields`` that are not null, and
        a citizen actor's ``sub``) out of it, into one envelope sealed with the subject's key
        (``aad``: the subject's associated data, ``subject_id.bytes + EVENT_AAD``, if the caller
        has it made). False when the event held no personal value, and so has no envelope."""
        values: dict[str, Any] = {}
        shape: dict[str, Any] = {}
        for field in fields:
            value = state.get(field)
            if value is None:
                continue
            if aead is None:  # an erased subject: nothing new is kept about them
                state[field] = {k: ERASED for k in value} if type(value) is dict else ERASED
                continue
            values[field] = value
            shape[field] = list(value) if type(value) is dict else None
            del state[field]
        actor = state.get("actor")
        if type(actor) is dict and actor.get("role") == "citizen":
            sub = actor.get("sub")
            if sub is not None:
                actor = dict(actor)
                if aead is None:
                    actor["sub"] = ERASED
                else:
                    values[ACTOR_SUB] = sub
                    shape[ACTOR_SUB] = None
                    del actor["sub"]
                state["actor"] = actor
        if not values:
            return False
        nonce = random_bytes(NONCE_BYTES)
        sealed = aead.encrypt(nonce, self._encode(values), subject_id.bytes + EVENT_AAD if aad is None else aad)
        state[ENVELOPE] = b2a_base64(nonce + sealed, newline=False).decode()
        state[SEALED] = shape
        return True

    def open_event(self, subject_id: UUID, state: dict[str, Any], aead: Any = LOOKUP, revive: bool = True) -> dict[str, Any]:
        """Put an event's sealed values back into its ``state`` (``[erased]`` where its subject's
        key is gone, or the envelope does not open), in place. An envelope this process opened
        a moment ago for the same subject (the projector's views, then its feed) is not
        decrypted again, as long as the subject's key is still held. ``revive=False``: the
        values go in as parsed JSON, for a caller that revives the whole state after."""
        envelope = state.pop(ENVELOPE)
        shape = state.pop(SEALED, None) or {}
        if aead is LOOKUP:
            aead = self.keys.cipher(subject_id)
        values = None
        if aead is not None and type(envelope) is str:
            opened = self._opened
            hit = opened.get(envelope) if opened is not None else None
            plain: bytes | None = None
            if hit is not None and (hit[0] is subject_id or hit[0] == subject_id):
                plain = hit[1]
            else:
                try:
                    raw = binascii.a2b_base64(envelope)
                    plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], subject_id.bytes + EVENT_AAD)
                except (InvalidTag, binascii.Error, ValueError):
                    pass  # written under another key, or altered: unreadable, as erased is
                else:
                    if opened is not None:
                        if len(opened) >= OPENED_KEPT:
                            opened.clear()
                        opened[envelope] = (subject_id, plain)
            if plain is not None:
                try:
                    values = orjson.loads(plain) if not revive or b'"_type_"' not in plain else self._decode(plain)
                except ValueError:
                    values = None
        if type(values) is not dict:
            values = {field: ({k: ERASED for k in keys} if type(keys) is list else ERASED) for field, keys in shape.items()}
        sub = values.pop(ACTOR_SUB, None)
        if sub is not None:
            actor = state.get("actor")
            if type(actor) is dict:
                actor["sub"] = sub  # the state is the caller's own, freshly decoded
            else:
                state["actor"] = {"sub": sub}
        state.update(values)
        return state

    def seal_element(self, subject_id: UUID, field: str, element: list[Any], personal: tuple[int, ...], aead: Any,
                     ref: int | str | None = None) -> list[Any]:
        """One element of a batch event with its personal positions sealed under its person's key;
        ``ref`` names the key set: its place in the event's ``"_subjects_"`` (36 bytes less an
        element than the id, which is the default)."""
        sealed = list(element)
        if aead is None:
            for at in personal:
                if at < len(sealed):
                    sealed[at] = ERASED
            return sealed
        values = [element[at] if at < len(element) else None for at in personal]
        nonce = random_bytes(NONCE_BYTES)
        data = aead.encrypt(nonce, orjson.dumps(values), _aad(subject_id, field + "[]"))
        for at in personal:
            if at < len(sealed):
                sealed[at] = None
        sealed[personal[0]] = {ELEMENT: binascii.b2a_base64(nonce + data, newline=False).decode(), ELEMENT_SUBJECT: str(subject_id) if ref is None else ref,
                              ELEMENT_AT: list(personal)}
        return sealed

    def open_elements(self, field: str, elements: Any, subjects: Sequence[str] = (),
                      held: dict[UUID, Any] | None = None) -> Any:
        """A batch event's field with every element's envelope opened (``[erased]`` where its
        person's key is gone)."""
        if type(elements) is not list:
            return elements
        ciphers: dict[str, Any] = {}
        aad_suffix = (field + "[]").encode()
        opened = []
        for element in elements:
            if type(element) is not list:
                opened.append(element)
                continue
            envelope = next((v for v in element if type(v) is dict and ELEMENT in v), None)
            if envelope is None:
                opened.append(element)
                continue
            subject = envelope[ELEMENT_SUBJECT]
            if type(subject) is int:
                subject = subjects[subject] if 0 <= subject < len(subjects) else ""
            try:
                subject_id: UUID | None = subject_uuid(subject)
            except (ValueError, TypeError, AttributeError):
                subject_id = None
            aead = ciphers.get(subject, LOOKUP)
            if aead is LOOKUP:
                if subject_id is None:
                    aead = None
                elif held is not None and subject_id in held:
                    aead = held[subject_id]
                else:
                    aead = self.keys.cipher(subject_id)
                ciphers[subject] = aead
            at = envelope[ELEMENT_AT]
            values: list[Any] = [ERASED] * len(at)
            if aead is not None:
                try:
                    raw = binascii.a2b_base64(envelope[ELEMENT])
                    values = orjson.loads(aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], subject_id.bytes + aad_suffix))
                except (InvalidTag, binascii.Error, ValueError):
                    values = [ERASED] * len(at)
            element = list(element)
            for position, value in zip(at, values):
                element[position] = value
            opened.append(element)
        return opened

    def open(self, subject_id: UUID, field: str, envelope: dict[str, Any], aead: Any = LOOKUP) -> Any:
        if aead is LOOKUP:
            aead = self.keys.cipher(subject_id)
        if aead is None:
            keys = envelope.get(KEYS)
            return {k: ERASED for k in keys} if keys is not None else ERASED
        try:
            raw = binascii.a2b_base64(envelope[ENVELOPE])
            plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(subject_id, field))
        except (InvalidTag, binascii.Error, ValueError):
            # Written under another key, or altered: it cannot be read, which is what erased
            # means to a reader.
            keys = envelope.get(KEYS)
            return {k: ERASED for k in keys} if keys is not None else ERASED
        # Plain JSON (what encode_plain wrote with orjson) needs no reviving of typed values.
        return orjson.loads(plain) if b'"_type_"' not in plain else self._decode(plain)

    def reveal_elements(self, state: dict[str, Any], fields: Iterable[str] | None = None, subjects: Sequence[str] = (),
                        held: dict[UUID, Any] | None = None) -> dict[str, Any]:
        """Open the element envelopes of a batch event's decoded state in place: of ``fields``
        or, without them, of every top-level list."""
        for field in (list(state) if fields is None else fields):
            value = state.get(field)
            if type(value) is list:
                state[field] = self.open_elements(field, value, subjects, held)
        return state

    def reveal(self, state: dict[str, Any], subject_id: UUID, fields: Iterable[str] | None = None, aead: Any = LOOKUP) -> dict[str, Any]:
        """Open the envelopes of a decoded state in place: of ``fields`` (the event type's
        personal fields) or, without them, of every top-level field; and ``actor.sub``."""
        if aead is LOOKUP:
            aead = self.keys.cipher(subject_id)
        if ENVELOPE in state:
            return self.open_event(subject_id, state, aead)
        # Written before one envelope an event: each field sealed on its own.
        for field in (list(state) if fields is None else fields):
            value = state.get(field)
            if type(value) is dict and ENVELOPE in value:
                state[field] = self.open(subject_id, field, value, aead)
        actor = state.get("actor")
        if type(actor) is dict:
            sub = actor.get("sub")
            if type(sub) is dict and ENVELOPE in sub:
                state["actor"] = {**actor, "sub": self.open(subject_id, "actor.sub", sub, aead)}
        return state


# What the projector's readers never read (no view folds who acted, no CloudEvent carries a
# citizen's sub): an envelope holding only that is not opened for them.
UNREAD_BY_PROJECTOR = frozenset({ACTOR_SUB})


def drop_unread(state: dict[str, Any], unread: frozenset[str]) -> bool:
    """Drop the envelope of a stored state, unopened, when it holds only values in ``unread``
    (a reader that never reads them need not open it); whether it did."""
    shape = state.get(SEALED)
    if type(shape) is not dict or not shape.keys() <= unread:
        return False
    del state[ENVELOPE], state[SEALED]
    return True


def reveal_document_state(fields: FieldCipher, state: dict[str, Any]) -> dict[str, Any]:
    """A stored state as parsed JSON (audit reads, the feed), with its envelopes opened."""
    subject = state.pop(SUBJECT, None)
    if subject is None:
        subjects = state.pop(SUBJECTS, None)
        if subjects is not None:
            return fields.reveal_elements(state, subjects=subjects)
        return state
    return fields.reveal(state, subject_uuid(subject))


def parse(state: bytes) -> Any:
    return orjson.loads(state)
