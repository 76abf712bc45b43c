"""Personal fields encrypted per data subject in the event store's mapper: the domain stays plain.

A stored event of a data subject that holds personal values starts with ``"_subject_":
"<subject id>"`` (a random id, not the person's; ``keys.py``), and its personal fields (``personal_fields.py``) are taken out of its
state into one envelope: ``"_pd_": "<base64 of nonce, ciphertext and tag>"`` (AES-256-GCM with the
subject's data key; the subject is in the associated data, so an envelope moved to another
person does not open), with ``"_sealed_"`` naming the fields it holds and keeping each dict's
keys, so that after erasure a field reads ``{"name": "[erased]", ...}`` with its shape intact
(``envelopes.py``). Every other field stays plain (codes, amounts, references, times), so the
log's hash chain covers the ciphertext and erasure changes no stored byte. Events written when
each field had an envelope of its own are still read.

A batch event naming many people (``ELEMENTS``: a disbursement batch's lines, a tax roll's rows)
has no single subject: in each element (a list), the personal positions are sealed together
with the key of that element's person into ``{"_pe_": ..., "_s_": <n>, "_at_": [positions]}``
at the first of them (the others null), and the event starts with ``"_subjects_": [...]``,
every key set it uses (``"_s_"`` is the element's place in it). Erasing one person makes their elements'
personal positions read ``"[erased]"`` and leaves everyone else's readable.

An event of a data subject with no personal value in it (a step taken by staff or the system,
a reason left empty) is stored as it is, with no subject: nothing in it needs a key to read.

Reading: a field whose subject's key is deleted reads ``"[erased]"``. Writing for an erased
subject stores ``"[erased]"`` in its personal fields: nothing new is kept about them.

Keys are resolved for a whole ``save()`` before its events are encoded (``prepare``: from the
cache, else one query), new key sets are written in the save's own transaction
(``PersonalEventStore``), and a whole batch of stored events has its keys loaded before it is
decoded (``prefetch``): never one query an event.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence
from uuid import UUID

import orjson
from eventsourcing.persistence import EventStore, Mapper, Notification, Recording, StoredEvent, find_id_convertor
from eventsourcing.utils import get_topic, resolve_topic

from domain.data_subject import DataSubject
from domain.service_request import ServiceRequest
from infrastructure.errors import PersonalDataUnsupported, UnknownDataSubject
from infrastructure.eventstore.recorder import ArrayInsertRecorder
from infrastructure.privacy.envelopes import (
    ENVELOPE, ERASED, EVENT_AAD, LOOKUP, SUBJECT, SUBJECT_PREFIX, SUBJECTS, SUBJECTS_PREFIX, FieldCipher, drop_unread, encode_plain, subject_in, subject_uuid, subjects_in,
)
from infrastructure.privacy.keys import ERASED_MARKER, BlindIndex, PendingKeys, SubjectKeys
from infrastructure.privacy.personal_fields import AGGREGATE, APPLICANT, ELEMENTS, PERSON, PERSONAL_FIELDS, REQUEST, Classification, Elements

_NONE = Classification(None)

_BY_PERSON = (APPLICANT, PERSON)
# Events that always have a subject: a request without one is a fault, never stored plain.
_STRICT = (ServiceRequest.Event,)
ERASURE_TOPIC = DataSubject.Erased.TOPIC
class PersonalDataMapper(Mapper):
    """The event store's mapper, with the personal fields of each event encrypted under its
    data subject's key."""

    def __init__(self, base: Mapper, keys: SubjectKeys, blind_index: BlindIndex) -> None:
        super().__init__(transcoder=base.transcoder, compressor=base.compressor, cipher=base.cipher)
        self.keys = keys
        self.blind_index = blind_index
        self.fields = FieldCipher(keys, encode_plain(self.transcoder.encode), self.transcoder.decode, keys.opened)
        self._rules: dict[type, tuple[str, Classification]] = {}
        # A subject's id as stored and its envelopes' associated data, made once per subject.
        self._forms: dict[UUID, tuple[str, bytes]] = {}
        # Reading a subject's event in one pass needs the transcoder's revival of typed values
        # (OneStop's own transcoder), and states that are neither compressed nor encrypted whole.
        revive = getattr(self.transcoder, "revive", None)
        self._revive = revive if revive is not None and not self.compressor and not self.cipher else None

    # -- writing -----------------------------------------------------------------------------

    def _person(self, event: Any, rule: Classification) -> str:
        value: Any = event
        for name in rule.person.split("."):
            value = value[name] if type(value) is dict else getattr(value, name)
        return value  # type: ignore[no-any-return]

    def prepare(self, events: Sequence[Any]) -> PendingKeys:
        """Resolve the subjects and keys of the events of one save. A new aggregate of a person
        (a request's applicant, a recipient, a notice's owner) gets the key set this process has
        cached for them, else a new one; the people of a batch event's elements get their live
        key set from the database, else a new one. What is new is returned, to be written in the
        save's own transaction, with the ciphers of the save. The database is read only for an
        aggregate, person or key this process has not cached (then in one transaction)."""
        keys = self.keys
        rule_of = self._rule
        rules = [(e, rule_of(type(e))[1]) for e in events]
        pending = self._prepare_cached(rules)
        if pending is not None:
            return pending
        pending = PendingKeys()
        subject_of = self._subject_in(pending)
        created: set[UUID] = set()
        for event, rule in rules:
            if rule.subject in _BY_PERSON:
                subject_id = self._key_set_for(self.blind_index(self._person(event, rule)), pending)
                pending.link(event.originator_id, subject_id)
                keys.remember_subject(event.originator_id, subject_id)
                created.add(event.originator_id)
        unknown: set[UUID] = set()
        people: dict[str, str] = {}  # national ID -> blind index, of batch elements
        for event, rule in rules:
            kind = rule.subject
            if kind == REQUEST:
                for name in rule.via:
                    ref = getattr(event, name, None)
                    if ref is not None and ref not in created and subject_of(ref) is None:
                        unknown.add(ref)
            elif kind == AGGREGATE:
                if event.originator_id not in created and subject_of(event.originator_id) is None:
                    unknown.add(event.originator_id)
            elif kind == ELEMENTS:
                self._element_people(event, rule, people, unknown, subject_of)
        pending.indexes = people
        lookup = [i for i in set(people.values()) if i not in pending.new_by_index and keys.subject_for_index(i) is None]
        if unknown or lookup:
            with keys.reading() as curs:
                pending.of.update(keys.subjects_of(curs, unknown))
                pending.reused.update(keys.subjects_for_indexes(curs, lookup).values())
                self._resolve_people(people, pending)
                needed = self._needed(rules, pending, subject_of)
                pending.ciphers.update(keys.load(curs, needed))
        else:
            self._resolve_people(people, pending)
            needed = self._needed(rules, pending, subject_of)
            if any(s not in pending.ciphers and not keys.known(s) for s in needed):
                with keys.reading() as curs:
                    pending.ciphers.update(keys.load(curs, needed))
        for event, rule in rules:
            kind = rule.subject
            if kind == REQUEST:
                subject_id = None
                for name in rule.via:
                    ref = getattr(event, name, None)
                    subject_id = subject_of(ref) if ref is not None else None
                    if subject_id is not None:
                        break
                if subject_id is not None:
                    pending.link(event.originator_id, subject_id)
                    keys.remember_subject(event.originator_id, subject_id)
            if kind in (REQUEST, AGGREGATE) and subject_of(event.originator_id) is None \
                    and not isinstance(event, _STRICT):
                # No person's key: an aggregate stored before its events were encrypted (a
                # recipient, a notice, an appointment, a receipt), or a payment or receipt with
                # no person behind it. Stored without a subject, as before.
                pending.subjectless.add(event.originator_id)
        missing = []
        for subject_id in needed:
            if subject_id in pending.ciphers:
                continue  # a key set this save made or loaded
            known, aead = keys.cached(subject_id)
            if known:
                pending.ciphers[subject_id] = aead
            else:
                missing.append(subject_id)  # loaded, then pushed out of the cache by a larger batch
        if missing:
            with keys.reading() as curs:
                pending.ciphers.update(keys.load(curs, missing))
        return pending

    def _prepare_cached(self, rules: Sequence[tuple[Any, Classification]]) -> PendingKeys | None:
        """``prepare`` for the usual save, in one pass and without the database: new aggregates
        of people (a request filed) and events of aggregates whose subject and key this process
        holds (a request decided, a step the request took at once). None for anything else
        (a payment naming its request, a batch event, a subject or key not cached), which
        ``prepare`` resolves in full. Nothing is made before the save is known to qualify."""
        keys = self.keys
        pending = PendingKeys()
        of = pending.of
        created = None
        for event, rule in rules:
            kind = rule.subject
            if kind is None:
                continue
            if kind in _BY_PERSON:
                if created is None:
                    created = {event.originator_id}
                else:
                    created.add(event.originator_id)
            elif kind != AGGREGATE:
                return None
            elif not (created is not None and event.originator_id in created):
                subject_id = keys.subject_of(event.originator_id)
                if subject_id is None or not keys.known(subject_id):
                    return None
                of[event.originator_id] = subject_id  # the save's own copy: the cache may be emptied meanwhile
        ciphers = pending.ciphers
        for event, rule in rules:
            kind = rule.subject
            if kind is None:
                continue
            originator_id = event.originator_id
            if kind == AGGREGATE:
                subject_id = of[originator_id]
            else:
                subject_id = self._key_set_for(self.blind_index(self._person(event, rule)), pending)
                pending.link(originator_id, subject_id)
                keys.remember_subject(originator_id, subject_id)
            if subject_id not in ciphers:
                known, aead = keys.cached(subject_id)  # type: ignore[arg-type]
                if not known:
                    # Pushed out of the cache since the check above: loaded with the save's keys.
                    with keys.reading() as curs:
                        ciphers.update(keys.load(curs, [subject_id]))  # type: ignore[list-item]
                else:
                    ciphers[subject_id] = aead  # type: ignore[index]
        return pending

    def _subject_in(self, pending: PendingKeys) -> Callable[[UUID], UUID | None]:
        """Looks up aggregates' subjects for one save: each found once (in the save's own
        ``pending.of``), so that another thread emptying the shared cache midway cannot make the
        save take an aggregate of a person for one without a subject."""
        of, cached = pending.of, self.keys.subject_of

        def subject_of(aggregate_id: UUID) -> UUID | None:
            found = of.get(aggregate_id)
            if found is None:
                found = cached(aggregate_id)
                if found is not None:
                    of[aggregate_id] = found
            return found

        return subject_of

    def _element_people(self, event: Any, rule: Classification, people: dict[str, str], unknown: set[UUID],
                        subject_of: Callable[[UUID], UUID | None]) -> None:
        elements: Elements = rule.elements  # type: ignore[assignment]
        for field in rule.fields:
            for element in getattr(event, field, None) or ():
                if elements.national_id_at is not None:
                    national_id = element[elements.national_id_at]
                    if type(national_id) is str and national_id not in people and national_id != ERASED:
                        people[national_id] = self.blind_index(national_id)
                elif elements.aggregate_at is not None:
                    try:
                        aggregate_id = UUID(str(element[elements.aggregate_at]))
                    except ValueError:
                        continue
                    if subject_of(aggregate_id) is None:
                        unknown.add(aggregate_id)

    def _needed(self, rules: Sequence[tuple[Any, Classification]], pending: PendingKeys,
                subject_of: Callable[[UUID], UUID | None]) -> set[UUID]:
        needed = set(pending.of.values()) | set(pending.people.values())
        for event, rule in rules:
            if rule.subject is None:
                continue
            subject_id = subject_of(event.originator_id)
            if subject_id is not None:
                needed.add(subject_id)
            if rule.subject == REQUEST:
                for name in rule.via:
                    ref = getattr(event, name, None)
                    subject_id = subject_of(ref) if ref is not None else None
                    if subject_id is not None:
                        needed.add(subject_id)
            elif rule.subject == ELEMENTS and rule.elements is not None and rule.elements.aggregate_at is not None:
                for field in rule.fields:
                    for element in getattr(event, field, None) or ():
                        try:
                            subject_id = subject_of(UUID(str(element[rule.elements.aggregate_at])))
                        except ValueError:
                            continue
                        if subject_id is not None:
                            needed.add(subject_id)
        return needed

    def _resolve_people(self, people: dict[str, str], pending: PendingKeys) -> None:
        """The key set of each person of a save's batch elements: their live one, else new."""
        for index in set(people.values()):
            pending.people[index] = self._key_set_for(index, pending)

    def _key_set_for(self, index: str, pending: PendingKeys) -> UUID:
        """The key set a save uses for the person with this blind index: one this save made
        already, else this process's live one (checked live in the save's transaction), else a
        new one."""
        subject_id = pending.new_by_index.get(index)
        if subject_id is None:
            subject_id = self.keys.subject_for_index(index)
            if subject_id is None:
                subject_id = self.keys.new_subject(index, pending)
            else:
                pending.reused.add(subject_id)
        return subject_id

    def _rule(self, event_class: type) -> tuple[str, Classification]:
        found = self._rules.get(event_class)
        if found is None:
            topic = get_topic(event_class)
            found = self._rules[event_class] = (topic, PERSONAL_FIELDS.get(topic, _NONE))
        return found

    def to_stored_event(self, domain_event: Any, *, subjectless: bool = False, pending: PendingKeys | None = None) -> StoredEvent:
        event_class = type(domain_event)
        topic, rule = self._rule(event_class)
        if rule.subject is None or subjectless:
            return super().to_stored_event(domain_event)
        ciphers = pending.ciphers if pending is not None else {}
        originator_id = domain_event.originator_id
        if rule.subject == ELEMENTS:
            state = dict(vars(domain_event))
            subjects = self._seal_elements(state, rule, ciphers, pending)
            if pending is not None:
                pending.elements.update((s, originator_id) for s in subjects)
            state = {SUBJECTS: [str(s) for s in subjects], **state}
        else:
            subject_id = pending.of.get(originator_id) if pending is not None else self.keys.subject_of(originator_id)
            if subject_id is None:
                # Only through the personal event store, which prepares a save's subjects first.
                raise UnknownDataSubject(f"no data subject is known for {topic} of {originator_id}")
            forms = self._forms.get(subject_id)
            if forms is None:
                if len(self._forms) >= 10_000:
                    self._forms.clear()
                # The id as text by orjson (what str() writes, in less than half its time).
                forms = self._forms[subject_id] = (orjson.dumps(subject_id)[1:-1].decode(), subject_id.bytes + EVENT_AAD)
            state = {SUBJECT: forms[0]}
            state.update(vars(domain_event))
            aead = ciphers.get(subject_id, LOOKUP)
            if aead is LOOKUP:
                aead = self.keys.cipher(subject_id)
            if not self.fields.seal_event(subject_id, state, rule.fields, aead, forms[1]):
                # Nothing personal in it (a step taken by staff or the system, a null note): the
                # event is stored as it is, without a subject to look up when it is read.
                del state[SUBJECT]
        del state["originator_id"]
        originator_version = state.pop("originator_version")
        class_version = getattr(event_class, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        stored_state = self.transcoder.encode(state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version, topic=topic, state=stored_state)

    def _seal_elements(self, state: dict[str, Any], rule: Classification, ciphers: dict[UUID, Any], pending: PendingKeys | None) -> dict[UUID, int]:
        """Seal the elements of a batch event's personal fields in ``state``; the key sets used."""
        elements: Elements = rule.elements  # type: ignore[assignment]
        subjects: dict[UUID, int] = {}  # each key set's place in "_subjects_"
        for field in rule.fields:
            value = state.get(field)
            if type(value) is not list:
                continue
            sealed = []
            for element in value:
                subject_id = None
                if type(element) in (list, tuple):
                    if elements.national_id_at is not None:
                        national_id = element[elements.national_id_at]
                        if type(national_id) is str and national_id != ERASED:
                            index = pending.indexes.get(national_id) if pending is not None else None
                            if index is None:
                                index = self.blind_index(national_id)
                            subject_id = pending.people.get(index) if pending is not None else self.keys.subject_for_index(index)
                    elif elements.aggregate_at is not None:
                        try:
                            aggregate_id = UUID(str(element[elements.aggregate_at]))
                            subject_id = (pending.of.get(aggregate_id) if pending is not None else None) or self.keys.subject_of(aggregate_id)
                        except ValueError:
                            subject_id = None
                if subject_id is None:
                    sealed.append(element)  # nobody's element (an aggregate stored before encryption)
                    continue
                aead = ciphers.get(subject_id, LOOKUP)
                if aead is LOOKUP:
                    aead = ciphers[subject_id] = self.keys.cipher(subject_id)
                ref = subjects.setdefault(subject_id, len(subjects))
                sealed.append(self.fields.seal_element(subject_id, field, list(element), elements.personal, aead, ref))
            state[field] = sealed
        return subjects

    # -- reading -----------------------------------------------------------------------------

    def prefetch(self, stored_events: Iterable[StoredEvent], curs: Any | None = None) -> dict[UUID, Any]:
        """Load the keys of a batch of stored events in one query (the projector, a rebuild);
        with ``curs``, in that cursor's transaction (a caller that holds the pool's only
        connection). Returns the batch's keys, to hold while it is decoded: a tax roll names
        more people than the cache keeps."""
        subjects = set()
        for stored in stored_events:
            if self.compressor or self.cipher:
                continue
            subject_id = subject_in(stored.state)
            if subject_id is not None:
                subjects.add(subject_id)
            elif stored.state[:len(SUBJECTS_PREFIX)] == SUBJECTS_PREFIX:
                subjects.update(subjects_in(stored.state))
        held: dict[UUID, Any] = {}
        missing = []
        for subject_id in subjects:
            known, aead = self.keys.cached(subject_id)
            if known:
                held[subject_id] = aead
            else:
                missing.append(subject_id)
        if missing:
            if curs is not None:
                held.update(self.keys.load(curs, missing))
            else:
                with self.keys.reading() as own:
                    held.update(self.keys.load(own, missing))
        return held

    def to_domain_events(self, stored_events: Sequence[StoredEvent], unread: frozenset[str] = frozenset()) -> list[Any]:
        """A batch's domain events, its keys loaded in one query. ``unread``: sealed values the
        caller never reads (the views never read who acted, so not a citizen actor's ``sub``);
        an envelope holding nothing else is not opened, and those values are left out."""
        held = self.prefetch(stored_events)
        return [self.to_domain_event(s, held, unread) for s in stored_events]

    def to_domain_event(self, stored_event: StoredEvent, held: dict[UUID, Any] | None = None, unread: frozenset[str] = frozenset()) -> Any:
        if self._revive is not None and stored_event.state[:len(SUBJECT_PREFIX)] == SUBJECT_PREFIX:
            try:
                return self._subject_event(stored_event, held, unread)
            except (ValueError, KeyError, TypeError, AttributeError, IndexError):
                pass  # a state the one pass cannot read: the library's own path decides (and fails as it does)
        event = super().to_domain_event(stored_event)
        state = event.__dict__
        subject = state.pop(SUBJECT, None)
        if subject is not None:
            subject_id = subject_uuid(subject)
            rule = PERSONAL_FIELDS.get(stored_event.topic)
            aead = held.get(subject_id, LOOKUP) if held else LOOKUP
            self.fields.reveal(state, subject_id, rule.fields if rule is not None else None, aead)
        elif (subjects := state.pop(SUBJECTS, None)) is not None:
            rule = PERSONAL_FIELDS.get(stored_event.topic)
            self.fields.reveal_elements(state, rule.fields if rule is not None else None, subjects, held)
        elif stored_event.topic == ERASURE_TOPIC:
            # Every process that reads the log forgets an erased person's keys at once.
            self.keys.forget(UUID(s) for s in state.get("subjects", ()))
        return event


    def _subject_event(self, stored_event: StoredEvent, held: dict[UUID, Any] | None, unread: frozenset[str]) -> Any:
        """``to_domain_event`` for an event of one data subject (most of the log), in one pass:
        the stored JSON is parsed, its envelope opened into it, and only then are typed values
        revived and the event made as eventsourcing's mapper makes it (so the envelope and the
        names of its fields are never walked as data, and upcasting sees the whole state)."""
        raw = orjson.loads(stored_event.state)
        subject_id = subject_uuid(raw.pop(SUBJECT))
        aead = held.get(subject_id, LOOKUP) if held else LOOKUP
        if ENVELOPE in raw:
            if not (unread and drop_unread(raw, unread)):
                self.fields.open_event(subject_id, raw, aead, revive=False)
        else:
            rule = PERSONAL_FIELDS.get(stored_event.topic)
            self.fields.reveal(raw, subject_id, rule.fields if rule is not None else None, aead)
        state = self._revive(raw)  # type: ignore[misc]
        cls = resolve_topic(stored_event.topic)
        state["originator_id"] = find_id_convertor(cls, type(stored_event.originator_id))(stored_event.originator_id)
        state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event


class PersonalEventStore(EventStore):
    """The event store: resolves a save's subjects and keys, then writes the new key sets in
    the same transaction as the events (``PersonalKeysRecorder``)."""

    mapper: PersonalDataMapper

    def get(self, originator_id: Any, *, gt: int | None = None, lte: int | None = None, desc: bool = False,
            limit: int | None = None) -> Iterator[Any]:
        """An aggregate's events, their keys loaded in one query and held while they are
        decoded (a tax roll's 100,000 rows name more people than the key cache keeps)."""
        stored = list(self.recorder.select_events(originator_id=originator_id, gt=gt, lte=lte, desc=desc, limit=limit))
        held = self.mapper.prefetch(stored)
        # The aggregate's subject, for the events this process may save for it next (a
        # process that only reads the log, like the projector, keeps none).
        for event in stored:
            subject_id = subject_in(event.state)
            if subject_id is not None:
                self.mapper.keys.remember_subject(originator_id, subject_id)
                break
        return iter([self.mapper.to_domain_event(s, held) for s in stored])

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Recording]:
        if not domain_events:
            return []
        for attempt in range(2):
            pending = self.mapper.prepare(domain_events)
            subjectless = pending.subjectless
            stored_events = [self.mapper.to_stored_event(e, subjectless=bool(subjectless) and e.originator_id in subjectless, pending=pending)
                             for e in domain_events]
            try:
                notification_ids = self.recorder.insert_events(stored_events, added_rows=pending.added_rows(), **kwargs)
            except Exception as error:
                self.mapper.keys.discard(pending)
                if attempt == 0 and pending.reused and ERASED_MARKER in str(error):
                    continue  # a reused key set was erased meanwhile: again, with a new one
                raise
            break
        self.mapper.keys.published(pending)
        recordings = []
        if notification_ids:
            for d, s, n_id in zip(domain_events, stored_events, notification_ids, strict=True):
                recordings.append(Recording(d, Notification(originator_id=s.originator_id, originator_version=s.originator_version,
                                                            topic=s.topic, state=s.state, id=n_id)))
        return recordings


def install(app: Any, keys: SubjectKeys, blind_index: BlindIndex) -> PersonalDataMapper:
    """Put the personal-data mapper into an eventsourcing application, after it is built."""
    mapper = PersonalDataMapper(app.mapper, keys, blind_index)
    if not isinstance(app.recorder, ArrayInsertRecorder):
        raise PersonalDataUnsupported(f"personal data needs the event store's ArrayInsertRecorder, not {type(app.recorder).__name__}")
    events = PersonalEventStore(mapper=mapper, recorder=app.recorder)
    app.mapper = mapper
    app.events = events
    app.repository.event_store = events
    return mapper
