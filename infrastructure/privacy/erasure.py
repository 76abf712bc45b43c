"""Erasure in PostgreSQL: delete a person's data keys, then rewrite the plain copies of their
fields outside the log (views, the published feed, webhook deliveries) from what the log now
reads for them, ``[erased]``, so that each copy is exactly what a rebuild would make of it.

The log itself is not touched: its events stay, with the person's fields as ciphertext that no
key opens any more, so the hash chain still verifies and replay still works.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from application.cloudevents import to_cloudevent
from application.ports import PersonalData
from domain.allowance import Recipient
from domain.data_subject import DataSubject
from infrastructure.json_codec import dumps
from infrastructure.privacy.keys import SUBJECT_KEYS, BlindIndex, SubjectKeys
from infrastructure.privacy.envelopes import (
    ENVELOPE, SUBJECT, SUBJECTS, UNREAD_BY_PROJECTOR, FieldCipher, drop_unread, reveal_document_state, subject_uuid,
)
from infrastructure.privacy.mapper import PersonalDataMapper
from infrastructure.eventstore.event_log import EVENTS_TABLE, plain, stored_event_document


def document_fields(keys: SubjectKeys) -> FieldCipher:
    """Opens envelopes in stored states parsed as plain JSON (feed, audit reads)."""
    return FieldCipher(keys, None, lambda data: plain(orjson.loads(data)), keys.opened)


def _load_keys_of(keys: SubjectKeys, states: list[dict[str, Any]]) -> None:
    """Load the keys of every subject these parsed states name that the cache lacks, in one
    query: before a batch is revealed."""
    subjects = {subject_uuid(s) for s in (state.get(SUBJECT) for state in states) if isinstance(s, str)}
    subjects.update(subject_uuid(s) for state in states for s in (state.get(SUBJECTS) or ()) if isinstance(s, str))
    if any(not keys.known(s) for s in subjects):
        with keys.reading() as curs:
            keys.load(curs, subjects)


def document_revealer(keys: SubjectKeys, unread: frozenset[str] = frozenset()) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function that opens the personal fields of a ``stored_event_document``'s data in place
    (and drops the subject reference). ``unread``: values the reader never uses; an envelope
    holding nothing else is dropped unopened, and those values are left out."""
    fields = document_fields(keys)

    def reveal(document: dict[str, Any]) -> dict[str, Any]:
        data = document["data"]  # the document's own (stored_event_document makes it fresh)
        if SUBJECT not in data:
            reveal_document_state(fields, data)  # a batch event's elements, or nothing personal
            return document
        if unread and ENVELOPE in data and drop_unread(data, unread):
            del data[SUBJECT]
            return document
        actor = document.get("actor")
        if actor is not None:
            data["actor"] = actor  # a citizen actor's sub is in the envelope
        reveal_document_state(fields, data)
        document["actor"] = data.pop("actor", actor)
        return document

    return reveal


def documents_revealer(keys: SubjectKeys, unread: frozenset[str] = frozenset()) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Like ``document_revealer``, for a batch: the batch's keys are loaded in one query."""
    reveal = document_revealer(keys, unread)

    def reveal_all(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _load_keys_of(keys, [d["data"] for d in documents])
        return [reveal(d) for d in documents]

    return reveal_all


def states_revealer(keys: SubjectKeys) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """A function that opens the personal fields of stored states parsed as JSON, in place (a
    view that reads the log itself, like the allowance register): the batch's keys in one
    query."""
    fields = document_fields(keys)

    def reveal_all(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _load_keys_of(keys, states)
        return [reveal_document_state(fields, state) for state in states]

    return reveal_all


class PostgresPersonalData(PersonalData):
    def __init__(self, app: Any, keys: SubjectKeys, blind_index: BlindIndex, mapper: PersonalDataMapper | None) -> None:
        self.app = app
        self.keys = keys
        self.blind_index = blind_index
        self.mapper = mapper
        self.reveal = document_revealer(keys)
        self.reveal_all = documents_revealer(keys)
        # The published feed: its CloudEvents carry no citizen actor's sub (application.cloudevents).
        self.reveal_published = documents_revealer(keys, UNREAD_BY_PROJECTOR)
        self.reveal_states = states_revealer(keys)

    def index(self, national_id: str) -> str:
        return self.blind_index(national_id)

    def subjects(self, index: str) -> list[UUID]:
        with self.keys.transaction(commit=False) as curs:
            curs.execute(f"SELECT subject_id FROM {SUBJECT_KEYS} WHERE blind_index = %s ORDER BY created_at", (index,))
            return [row["subject_id"] for row in curs.fetchall()]

    def aggregates(self, subjects: list[UUID]) -> list[UUID]:
        if not subjects:
            return []
        with self.keys.transaction(commit=False) as curs:
            return self.keys.aggregates_of(curs, subjects)

    def erase_keys(self, subjects: list[UUID]) -> int:
        if self.mapper is None:
            from application.erasure import PersonalDataNotConfigured

            raise PersonalDataNotConfigured("personal data is stored plain (ONESTOP_ENCRYPT_PERSONAL_DATA=off): it cannot be erased by key")
        with self.keys.transaction() as curs:
            deleted = self.keys.erase(curs, subjects)
        self.keys.forget(subjects)
        return deleted

    def forget_person(self, index: str) -> int:
        """The person's browser sessions: deleted (their actor is sealed per session, their
        blind index names them)."""
        from infrastructure.identity.sessions import delete_sessions_of

        with self.keys.transaction(commit=True) as curs:
            return delete_sessions_of(curs, index)

    def purge(self, aggregates: list[UUID], subjects: Sequence[UUID] = ()) -> dict[str, int]:
        """Rewrite every plain copy of these aggregates' events, and of the batches holding
        elements of ``subjects``, from the log (as it reads now)."""
        from infrastructure.allowance.register import RegisterFollower
        from infrastructure.integrations.event_feed import FEED_TABLE, ORGANIZATIONS_TABLE
        from infrastructure.integrations.subscriptions import DELIVERIES
        from infrastructure.views.recorder import ViewsRecorder

        datastore = self.keys.datastore
        if subjects:
            with self.keys.transaction(commit=False) as curs:
                batches = self.keys.batches_of(curs, subjects)
        else:
            batches = []
        own = set(aggregates)
        aggregates = [*aggregates, *(b for b in batches if b not in own)]
        if not aggregates:
            return {"view_rows": 0, "feed_rows": 0, "deliveries": 0, "register_rows": 0}
        assert self.mapper is not None
        with datastore.transaction(commit=True) as curs:
            curs.execute(
                f"SELECT notification_id, originator_id, originator_id::text AS aggregate_id, originator_version, topic, state"
                f" FROM {EVENTS_TABLE} WHERE originator_id = ANY(%s) ORDER BY notification_id", (aggregates,),
            )
            rows = curs.fetchall()
            stored = [StoredEvent(originator_id=r["originator_id"], originator_version=r["originator_version"], topic=r["topic"],
                                  state=bytes(r["state"])) for r in rows]
            held = self.mapper.prefetch(stored, curs)  # every key of these events (a batch's people) in one query
            events = [(self.mapper.to_domain_event(s, held), r["notification_id"]) for s, r in zip(stored, rows)]
            views = ViewsRecorder(datastore, blind_index=self.blind_index)
            views.lock_for_writing(curs)  # the projector waits meanwhile
            views.refold(curs, events)
            # The allowance register (its own follower, its own position).
            recipients = list({e.originator_id for e, _ in events if isinstance(e, Recipient.Event)})
            register_rows = RegisterFollower(datastore, reveal=self.reveal_states).refold(curs, recipients)
            # The feed: only the positions it has published (the follower publishes the rest
            # from the log, already erased).
            curs.execute(f"SELECT position FROM {FEED_TABLE} WHERE subject = ANY(%s)", (aggregates,))
            published = {r["position"] for r in curs.fetchall()}
            curs.execute(f"SELECT aggregate_id, organization FROM {ORGANIZATIONS_TABLE} WHERE aggregate_id = ANY(%s)", (aggregates,))
            organizations = {str(r["aggregate_id"]): r["organization"] for r in curs.fetchall()}
            feed_rows = []
            for row in rows:
                if row["notification_id"] not in published:
                    continue
                document = self.reveal(stored_event_document({**row, "state": bytes(row["state"])}))
                body = dumps(to_cloudevent(document, organizations.get(row["aggregate_id"])))
                feed_rows.append((row["notification_id"], body))
            if feed_rows:
                curs.execute(
                    f"UPDATE {FEED_TABLE} f SET body = t.body FROM unnest(%s::bigint[], %s::bytea[]) AS t(position, body)"
                    f" WHERE f.position = t.position", ([p for p, _ in feed_rows], [b for _, b in feed_rows]),
                )
            curs.execute(
                f"UPDATE {DELIVERIES} d SET payload = f.body FROM {FEED_TABLE} f"
                f" WHERE f.position = d.position AND d.subject = ANY(%s::text[])", ([str(a) for a in aggregates],),
            )
            deliveries = curs.rowcount
        return {"view_rows": len({e.originator_id for e, _ in events if e.originator_id in own}), "feed_rows": len(feed_rows),
                "deliveries": deliveries, "register_rows": register_rows, "batches": len(batches)}


ERASURES_FOLLOWED = "erasures_followed"
SCHEMA_STATEMENTS = [f"CREATE TABLE IF NOT EXISTS {ERASURES_FOLLOWED} (name text PRIMARY KEY, position bigint NOT NULL)"]
_ERASED_TOPIC = DataSubject.Erased.TOPIC


class ErasureFollower:
    """Purges the plain copies of an erased person's fields again when the projector reaches
    the erasure in the log. It runs in the elected projector, after the views and the feed have
    caught up: as their one writer, nothing in flight can bring the fields back after it (the
    API's purge at the erasure is only the first, immediate one)."""

    def __init__(self, personal_data: PostgresPersonalData, *, save_every: int = 500) -> None:
        self.personal_data = personal_data
        self.datastore = personal_data.keys.datastore
        # The position is kept in memory and saved when an erasure was purged, or every
        # ``save_every`` calls: a restart scans the log again from the saved one, which costs a
        # range read, never a wrong result (purging twice changes nothing).
        self.save_every = save_every
        self._position: int | None = None
        self._calls = 0

    def _load_position(self) -> int:
        if self._position is None:
            with self.datastore.transaction(commit=False) as curs:
                curs.execute(f"SELECT position FROM {ERASURES_FOLLOWED} WHERE name = 'views'")
                row = curs.fetchone()
                self._position = row["position"] if row else 0
        return self._position

    def catch_up(self, until: int | None = None) -> int:
        """Purge for every erasure of the log after the saved position (up to ``until``, when
        given: the projector's position). With ``until`` and the follower there already, nothing
        is read."""
        position = self._load_position()
        if until is not None and position >= until:
            return 0
        with self.datastore.transaction(commit=False) as curs:
            if until is None:
                curs.execute(f"SELECT coalesce(max(notification_id), 0) AS head FROM {EVENTS_TABLE}")
                head = curs.fetchone()["head"]
            else:
                head = until
            if head <= position:
                return 0
            curs.execute(
                f"SELECT state FROM {EVENTS_TABLE} WHERE notification_id > %s AND notification_id <= %s AND topic = %s"
                f" ORDER BY notification_id", (position, head, _ERASED_TOPIC),
            )
            erasures = [orjson.loads(bytes(r["state"])) for r in curs.fetchall()]
        return self._purge(erasures, head)

    def take(self, after: int, notifications: Sequence[Any]) -> int:
        """The erasures of a batch the projector read (after the views and the feed took it),
        without reading the log again; the log is read only for what is missing before ``after``."""
        if not notifications:
            return 0
        done = self.catch_up(until=after)
        position = self._load_position()
        erasures = [orjson.loads(bytes(n.state)) for n in notifications if n.id > position and n.topic == _ERASED_TOPIC]
        return done + self._purge(erasures, max(position, notifications[-1].id))

    def _purge(self, erasures: list[dict[str, Any]], head: int) -> int:
        subjects = [UUID(s) for state in erasures for s in state.get("subjects", ())]
        if subjects:
            self.personal_data.keys.forget(subjects)
            self.personal_data.purge(self.personal_data.aggregates(subjects), subjects)
        self._position = head
        self._calls += 1
        if erasures or self._calls % self.save_every == 0:
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(
                    f"INSERT INTO {ERASURES_FOLLOWED} (name, position) VALUES ('views', %s)"
                    f" ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position", (head,),
                )
        return len(erasures)
