"""Keys of personal data: the master key, one data key per data subject, and the blind index.

- Each data subject (a person: the applicant of requests) has a random AES-256 data key. Their
  personal fields are encrypted with it (``mapper.py``). Erasure deletes it: every copy of their
  fields, in the log and in every backup, is then unreadable (crypto-shredding).
- Data keys are kept in ``subject_keys``, each wrapped (AES-256-GCM) by the master key
  (``ONESTOP_MASTER_KEY`` or ``ONESTOP_MASTER_KEY_FILE``), with the wrapping key's id beside it,
  so the master key can be rotated by re-wrapping the data keys, without touching any event.
- A subject is found by the blind index of its national ID: HMAC-SHA-256 under a separate key
  (``ONESTOP_BLIND_INDEX_KEY``), so neither the table nor the views hold a plain national ID,
  and someone with the database but not that key cannot look a person up.
- Each request and payment is tied to its subject: the aggregate a key set was made for (a new
  person's first request) on the key set's own row (``subject_keys.aggregate_id``), every other
  one in ``subject_aggregates`` (a second request of a person whose key set was reused, a
  payment of a request). A new person's save so writes one row, not two.

Unwrapped keys are cached in memory (bounded, with a time to live, so that an erasure done by
another process is honoured here within that time): the 32 bytes of each key, and a cipher
object only for the few used last (``HOT_CIPHERS``). A cipher object is 2.4 KB, and a key
cache of them, filled by a new person each request, took about 150 MB, each new one on
memory never touched before.
"""

from __future__ import annotations

import hashlib
from binascii import b2a_base64
import hmac
import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence
from uuid import UUID, SafeUUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from application.ports import SubjectIndex
from domain.errors import OneStopError
from infrastructure.eventstore.recorder import AddedRows

SUBJECT_KEYS = "subject_keys"
SUBJECT_AGGREGATES = "subject_aggregates"
SUBJECT_ELEMENTS = "subject_elements"
KEY_BYTES = 32
# A stored event of one data subject starts with ``"_subject_": "<its key set's id>"``.
SUBJECT = "_subject_"
SUBJECT_PREFIX = b'{"' + SUBJECT.encode() + b'":"'
NONCE_BYTES = 12

SCHEMA_STATEMENTS = [
    f"""CREATE TABLE IF NOT EXISTS {SUBJECT_KEYS} (
        subject_id uuid PRIMARY KEY, blind_index text NOT NULL, wrapped_key bytea, master_key_id text,
        created_at timestamptz NOT NULL DEFAULT now(), erased_at timestamptz)""",
    # A person's key sets (usually one; a process that does not have theirs cached makes a new
    # one rather than ask the database before each save), found by their blind index.
    # Only ever looked up by equality: a hash index (4 bytes a key set, not the 64 characters of
    # the index) costs a new person's save less than the B-tree it replaces.
    f"DROP INDEX IF EXISTS {SUBJECT_KEYS}_blind_index",
    f"CREATE INDEX IF NOT EXISTS {SUBJECT_KEYS}_blind_index_hash ON {SUBJECT_KEYS} USING hash (blind_index)",
    # The aggregate the key set was made for (its person's first aggregate in that save):
    # written on the key's row instead of a row of subject_aggregates. Found from the key (by
    # subject or blind index); the other way, from the aggregate, its own stored events name
    # the key set (``SubjectKeys.subjects_of``), so it needs no index of its own.
    f"ALTER TABLE {SUBJECT_KEYS} ADD COLUMN IF NOT EXISTS aggregate_id uuid",
    f"""CREATE TABLE IF NOT EXISTS {SUBJECT_AGGREGATES} (
        aggregate_id uuid PRIMARY KEY, subject_id uuid NOT NULL)""",
    f"CREATE INDEX IF NOT EXISTS {SUBJECT_AGGREGATES}_subject ON {SUBJECT_AGGREGATES} (subject_id)",
    # The batch aggregates (disbursement batches, tax rolls) holding elements of a subject: many
    # people each, so not in subject_aggregates; erasure purges their plain copies too.
    f"""CREATE TABLE IF NOT EXISTS {SUBJECT_ELEMENTS} (
        subject_id uuid NOT NULL, aggregate_id uuid NOT NULL, PRIMARY KEY (subject_id, aggregate_id))""",
]

# Written in the transaction that saves the events which use them, as data-modifying CTEs of the
# statement that sets its lock timeout (``ArrayInsertRecorder.added_rows``): no extra statement
# or round trip, before the log's table lock is taken, and a save that fails leaves no key
# behind. The rows go as JSON parameters (orjson writes the UUIDs): psycopg would dump arrays
# element by element in Python.
_KEYS_PART = (
    f"k AS (INSERT INTO {SUBJECT_KEYS} (subject_id, blind_index, wrapped_key, master_key_id, aggregate_id)"
    f" SELECT (r->>0)::uuid, r->>1, decode(r->>2, 'base64'), r->>3, (r->>4)::uuid FROM jsonb_array_elements(%b::jsonb) AS r)"
)
_LINKS_PART = (
    f"l AS (INSERT INTO {SUBJECT_AGGREGATES} (aggregate_id, subject_id)"
    f" SELECT (r->>0)::uuid, (r->>1)::uuid FROM jsonb_array_elements(%b::jsonb) AS r ON CONFLICT DO NOTHING)"
)
_ELEMENTS_PART = (
    f"e AS (INSERT INTO {SUBJECT_ELEMENTS} (subject_id, aggregate_id)"
    f" SELECT (r->>0)::uuid, (r->>1)::uuid FROM jsonb_array_elements(%b::jsonb) AS r ON CONFLICT DO NOTHING)"
)
# A key set reused from the cache for a new request must still be live: if another process
# erased the person meanwhile, the save fails with this marker and is tried again with a new
# key set. (The message depends on the row count, so the planner cannot fold it away; the
# statement selects it, so it runs with the statement.)
ERASED_MARKER = "onestop: data subject erased"
_CHECK_LIVE = (
    f"g AS (SELECT CASE WHEN count(*) < cardinality(CAST(%b AS uuid[])) THEN CAST('{ERASED_MARKER}: ' || count(*)::text AS int)"
    f" ELSE 0 END AS ok FROM {SUBJECT_KEYS} WHERE subject_id = ANY(CAST(%b AS uuid[])) AND wrapped_key IS NOT NULL)"
)
_LIVE = b"(SELECT ok FROM g)"


# The live keys of a list of key sets, one uuid[] literal (psycopg would dump a list of UUIDs
# element by element), each row naming its key set by its place in that list (no UUID parsed
# again per row). One primary-key lookup per id: the LATERAL subquery with its LIMIT is not
# folded into a join, which the planner would run as a scan of the whole table.
LOAD_KEYS = (
    "SELECT w.n, k.wrapped_key, k.master_key_id FROM unnest(CAST(%s AS uuid[])) WITH ORDINALITY AS w(id, n)"
    f" CROSS JOIN LATERAL (SELECT wrapped_key, master_key_id FROM {SUBJECT_KEYS}"
    " WHERE subject_id = w.id AND wrapped_key IS NOT NULL LIMIT 1) AS k"
)


def uuid_array(ids: Iterable[UUID]) -> str:
    """UUIDs as one PostgreSQL array literal, a single text parameter (``CAST(%s AS uuid[])``):
    psycopg dumps a list of UUIDs element by element, in Python (orjson writes them in one call,
    about a tenth of the time of ``str`` on each)."""
    return "{" + orjson.dumps(list(ids)).decode()[1:-1].replace('"', "") + "}"


_RANDOM_74 = (1 << 74) - 1  # rand_a (12 bits) and rand_b (62 bits) of a version-7 UUID
_UUID7_BITS = (7 << 76) | (0b10 << 62)  # version 7, RFC 4122 variant


def _uuid7(random10: bytes, unix_ms: int) -> UUID:
    """A version-7 UUID (RFC 9562): 48 bits of the Unix time in milliseconds, then 74 random
    bits, made without ``uuid.UUID``'s argument checks (a new key set per submission makes
    one). Key set ids so grow with time: each new key's entry goes at the right-hand end of
    ``subject_keys``' primary key, and the projector reading the keys of the latest events
    finds them together, instead of one random page each. The id says when the key set was
    made, which its row's ``created_at`` says too; nothing of the person."""
    rand = int.from_bytes(random10, "big") & _RANDOM_74
    value = ((unix_ms & 0xFFFF_FFFF_FFFF) << 80) | ((rand >> 62) << 64) | (rand & ((1 << 62) - 1)) | _UUID7_BITS
    made = object.__new__(UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", SafeUUID.unknown)
    return made


class RandomBytes:
    """Random bytes from the OS, read 4 KiB at a time rather than with one system call per nonce
    or key (a submission needs several). Each thread has its own block; a forked child drops
    the blocks it inherited (``os.register_at_fork``), so no two processes share bytes."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._local = threading.local()
        self._generation = 0
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._generation += 1

    def __call__(self, n: int) -> bytes:
        local = self._local
        at = getattr(local, "at", None)
        if at is None or local.generation != self._generation or at + n > len(local.buffer):
            local.buffer, at, local.generation = os.urandom(max(self._size, n)), 0, self._generation
        local.at = at + n
        return local.buffer[at:at + n]  # type: ignore[no-any-return]


random_bytes = RandomBytes()


class PendingKeys:
    """What one save adds: new key sets, new aggregates' subjects, and key sets reused for new
    aggregates (checked live in the same transaction)."""

    def __init__(self) -> None:
        self.keys: list[tuple[UUID, str, bytes, str]] = []
        self.links: dict[UUID, UUID] = {}  # aggregate -> subject, for subject_aggregates
        # The key sets this save makes, each with the aggregate it is made for (on its own row),
        # None until the save links one to it.
        self.made_for: dict[UUID, UUID | None] = {}
        self.reused: set[UUID] = set()
        self.subjectless: set[UUID] = set()  # aggregates of this save that have no data subject
        # The subject of each aggregate the save names, as the save found it (the shared cache
        # may be emptied by another thread between preparing and encoding).
        self.of: dict[UUID, UUID] = {}
        self.ciphers: dict[UUID, Any] = {}  # the save's subjects' keys (None: erased), held for the save
        self.people: dict[str, UUID] = {}  # blind index -> key set, of a batch event's elements
        self.indexes: dict[str, str] = {}  # national ID -> blind index, of a batch event's elements
        self.elements: set[tuple[UUID, UUID]] = set()  # (subject, batch aggregate) of the save's batch events
        # Key sets this save makes, by blind index: other saves may use them only once this one
        # has committed (``SubjectKeys.published``), or they would check them live too early.
        self.new_by_index: dict[str, UUID] = {}

    def __bool__(self) -> bool:
        return bool(self.keys or self.links or self.reused or self.elements)

    def link(self, aggregate_id: UUID, subject_id: UUID) -> None:
        """Tie an aggregate of the save to its subject: on the row of a key set this save makes,
        if it has no aggregate yet, else in ``subject_aggregates``."""
        self.of[aggregate_id] = subject_id
        made_for = self.made_for
        if subject_id in made_for and made_for[subject_id] is None:
            made_for[subject_id] = aggregate_id
        elif made_for.get(subject_id) != aggregate_id:
            self.links[aggregate_id] = subject_id

    def linked(self) -> list[UUID]:
        """The aggregates this save ties to a subject."""
        return [*self.links, *(a for a in self.made_for.values() if a is not None)]

    def added_rows(self) -> AddedRows | None:
        """Everything this save adds, as CTEs run before its INSERT (None: nothing)."""
        parts: list[str] = []
        params: list[Any] = []
        if self.keys:
            parts.append(_KEYS_PART)
            made_for = self.made_for
            params.append(orjson.dumps([(k[0], k[1], b2a_base64(k[2], newline=False).decode(), k[3], made_for.get(k[0]))
                                        for k in self.keys]).decode())
        if self.links:
            parts.append(_LINKS_PART)
            params.append(orjson.dumps(list(self.links.items())).decode())
        if self.elements:
            parts.append(_ELEMENTS_PART)
            params.append(orjson.dumps(sorted(self.elements)).decode())
        check = None
        if self.reused:
            parts.append(_CHECK_LIVE)
            reused = uuid_array(self.reused)
            params += [reused, reused]
            check = _LIVE
        if not parts:
            return None
        return AddedRows(", ".join(parts).encode(), params, check)


class KeyUnreadable(OneStopError):
    """A data key is wrapped by a master key this process does not have."""


def master_key_id(key: bytes) -> str:
    """A short public name of a master key: which key wrapped a data key, without revealing it."""
    return hashlib.sha256(b"onestop master key id\0" + key).hexdigest()[:16]


class MasterKeys:
    """The master key that wraps data keys, and older ones still accepted for unwrapping (during
    a rotation)."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        self.current_id = master_key_id(current)
        self._keys = {master_key_id(k): AESGCM(k) for k in (*previous, current)}
        self._current = AESGCM(current)

    def wrap(self, subject_id: UUID, data_key: bytes, nonce: bytes | None = None) -> bytes:
        """``data_key`` wrapped for ``subject_id``, under a fresh ``nonce`` (random if not given)."""
        if nonce is None:
            nonce = random_bytes(NONCE_BYTES)
        return nonce + self._current.encrypt(nonce, data_key, b"subject-key:" + subject_id.bytes)

    def unwrap(self, key_id: str, subject_id: UUID, wrapped: bytes) -> bytes:
        aead = self._keys.get(key_id)
        if aead is None:
            raise KeyUnreadable(f"the data key of subject {subject_id} is wrapped by master key {key_id}, which is not configured"
                                " (set ONESTOP_MASTER_KEY_PREVIOUS during a rotation)")
        try:
            return aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], b"subject-key:" + subject_id.bytes)
        except InvalidTag:
            raise KeyUnreadable(f"the data key of subject {subject_id} does not unwrap with master key {key_id}") from None

    def knows(self, key_id: str) -> bool:
        return key_id in self._keys


class BlindIndex(SubjectIndex):
    """The keyed blind index of a national ID: equal IDs give equal indexes, and the index
    reveals nothing without the key. It is also the subject reference of the access log."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        # The HMAC keyed once (its inner and outer pads hashed), copied for each ID.
        self._keyed = hmac.new(key, b"national-id\0", hashlib.sha256)

    def __call__(self, national_id: str) -> str:
        digits = national_id if national_id.isdigit() else "".join(ch for ch in national_id if not ch.isspace() and ch != "-")
        mac = self._keyed.copy()
        mac.update(digits.encode())
        return mac.hexdigest()

    def reference(self, national_id: str) -> str:
        return self(national_id)


ERASED = None  # a subject whose key is deleted: the cache remembers it as None
HOT_CIPHERS = 256  # cipher objects kept for the keys used last (a citizen filing again and again)


class SubjectKeys:
    """The data keys in PostgreSQL (through the event store's connection pool), with a bounded
    in-memory cache of unwrapped keys. Thread-safe."""

    def __init__(self, datastore: Any, masters: MasterKeys, *, cache_size: int = 50_000, cache_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, events_table: str | None = None) -> None:
        self.datastore = datastore
        self.events_table = events_table  # the event log's table (``subjects_of``)
        self.masters = masters
        self.cache_size = cache_size
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # Unwrapped data keys (None: erased) with when they expire, oldest first.
        self._keys: OrderedDict[UUID, tuple[float, bytes | None]] = OrderedDict()
        # Cipher objects of the keys used last (emptied whole when full, and on any erasure).
        # Only ever consulted after ``_keys`` says the key is live.
        self._hot: dict[UUID, AESGCM] = {}
        self._subject_of: dict[UUID, UUID] = {}
        self._by_index: dict[str, tuple[float, UUID]] = {}
        # The envelopes this process opened last, with their subject and plaintext: the
        # projector opens each event for the views, then the feed opens it again. Bounded, and
        # emptied whenever a key is forgotten (an erasure), so it never outlives a key.
        self.opened: dict[str, tuple[UUID, bytes]] = {}

    @contextmanager
    def transaction(self, commit: bool = True) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as curs:
            yield curs

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """A cursor for reads only, on one of the pool's connections in autocommit: each SELECT
        is one round trip (a transaction would add BEGIN and ROLLBACK, three round trips and
        three statements for the server, where the projector loads a batch's new keys every
        turn). Nothing read here needs one snapshot: a key set reused for a save is checked
        live in the save's own transaction (``_CHECK_LIVE``)."""
        with self.datastore.cursor() as curs:
            yield curs

    # -- the cache ---------------------------------------------------------------------------

    def cached(self, subject_id: UUID) -> tuple[bool, AESGCM | None]:
        """(known, cipher): a cipher of None for a known subject means erased. Read without the
        lock (one dictionary read is atomic): every event read or written asks this."""
        entry = self._keys.get(subject_id)
        if entry is None or self._clock() > entry[0]:
            return False, None
        key = entry[1]
        if key is None:
            return True, None
        cipher = self._hot.get(subject_id)
        if cipher is None:
            cipher = self._keep_hot(subject_id, AESGCM(key))
        return True, cipher

    def known(self, subject_id: UUID) -> bool:
        """Whether the cache holds this subject's key (or knows it erased), without making a
        cipher of it."""
        entry = self._keys.get(subject_id)
        return entry is not None and self._clock() <= entry[0]

    def _keep_hot(self, subject_id: UUID, cipher: AESGCM) -> AESGCM:
        hot = self._hot
        if len(hot) >= HOT_CIPHERS:
            hot.clear()
        hot[subject_id] = cipher
        return cipher

    def _remember_keys(self, keys: Iterable[tuple[UUID, bytes | None]]) -> None:
        expires = self._clock() + self.cache_seconds
        with self._lock:
            cache = self._keys
            for subject_id, key in keys:
                cache[subject_id] = (expires, key)
                cache.move_to_end(subject_id)
            while len(cache) > self.cache_size:
                cache.popitem(last=False)

    def forget(self, subject_ids: Iterable[UUID]) -> None:
        subject_ids = set(subject_ids)
        with self._lock:
            self.opened.clear()
            self._hot.clear()
            for subject_id in subject_ids:
                self._keys.pop(subject_id, None)
            for index in [i for i, (_, s) in self._by_index.items() if s in subject_ids]:
                del self._by_index[index]
        # Subjects of aggregates stay true after an erasure: only the keys go.

    def subject_of(self, aggregate_id: UUID) -> UUID | None:
        return self._subject_of.get(aggregate_id)

    def remember_subject(self, aggregate_id: UUID, subject_id: UUID) -> None:
        if len(self._subject_of) >= self.cache_size * 4:
            self._subject_of.clear()
        self._subject_of[aggregate_id] = subject_id

    # -- reading and creating keys -----------------------------------------------------------

    def cipher(self, subject_id: UUID) -> AESGCM | None:
        """The subject's data key (None when erased or unknown)."""
        known, cipher = self.cached(subject_id)
        if known:
            return cipher
        with self.reading() as curs:
            self.load(curs, [subject_id])
        return self.cached(subject_id)[1]

    def load(self, curs: Any, subject_ids: Iterable[UUID]) -> dict[UUID, AESGCM | None]:
        """Load the keys of these subjects into the cache, in one query; returns the ciphers of
        the ones it loaded (None: erased), which a caller may hold for a batch larger than the
        cache."""
        now, cache = self._clock(), self._keys
        wanted = []
        for subject_id in set(subject_ids):
            entry = cache.get(subject_id)
            if entry is None or now > entry[0]:
                wanted.append(subject_id)
        loaded: dict[UUID, AESGCM | None] = dict.fromkeys(wanted, ERASED)  # erased, unless found live below
        if not wanted:
            return loaded
        curs.execute(LOAD_KEYS, (uuid_array(wanted),))
        unwrap = self.masters.unwrap
        keys: dict[UUID, bytes | None] = dict.fromkeys(wanted, ERASED)
        for row in curs.fetchall():
            subject_id = wanted[row["n"] - 1]
            key = keys[subject_id] = unwrap(row["master_key_id"], subject_id, bytes(row["wrapped_key"]))
            loaded[subject_id] = self._keep_hot(subject_id, AESGCM(key))  # the feed opens them next
        self._remember_keys(keys.items())
        return loaded

    def subject_for_index(self, index: str) -> UUID | None:
        """The key set this process last used for the person with this blind index, if still
        cached and live here. Read without the lock, as ``cached`` is: one dictionary read."""
        entry = self._by_index.get(index)
        if entry is None or self._clock() > entry[0]:
            return None
        return entry[1]

    def subjects_for_indexes(self, curs: Any, indexes: Sequence[str]) -> dict[str, UUID]:
        """The newest live key set of each of these people (by blind index) that has one, in
        one query; remembered as this process's key set for them."""
        if not indexes:
            return {}
        curs.execute(
            f"SELECT DISTINCT ON (blind_index) blind_index, subject_id FROM {SUBJECT_KEYS}"
            f" WHERE blind_index = ANY(%s) AND wrapped_key IS NOT NULL ORDER BY blind_index, created_at DESC", (list(indexes),))
        found = {row["blind_index"]: row["subject_id"] for row in curs.fetchall()}
        expires = self._clock() + self.cache_seconds
        with self._lock:
            if len(self._by_index) + len(found) >= self.cache_size:
                self._by_index.clear()
            for index, subject_id in found.items():
                self._by_index[index] = (expires, subject_id)
        return found

    def new_subject(self, index: str, pending: PendingKeys) -> UUID:
        """A new key set for a person, written with the save (``pending``): its key is cached
        at once, and it is found by the person's blind index once the save has committed."""
        fresh = random_bytes(10 + KEY_BYTES + NONCE_BYTES)  # the id's random bits, the key, the wrapping's nonce
        subject_id, key = _uuid7(fresh[:10], time.time_ns() // 1_000_000), fresh[10:10 + KEY_BYTES]
        masters = self.masters
        pending.keys.append((subject_id, index, masters.wrap(subject_id, key, fresh[10 + KEY_BYTES:]), masters.current_id))
        pending.made_for[subject_id] = None
        pending.ciphers[subject_id] = self._keep_hot(subject_id, AESGCM(key))
        pending.new_by_index[index] = subject_id
        self._remember_keys([(subject_id, key)])
        return subject_id

    def published(self, pending: PendingKeys) -> None:
        """A save committed: the key sets it made become this process's key sets for their
        people (before, a concurrent save would have reused one that was not yet in the
        database, and its live check would have taken it for erased)."""
        if not pending.new_by_index:
            return
        expires = self._clock() + self.cache_seconds
        with self._lock:
            if len(self._by_index) + len(pending.new_by_index) >= self.cache_size:
                self._by_index.clear()
            for index, subject_id in pending.new_by_index.items():
                self._by_index[index] = (expires, subject_id)

    def discard(self, pending: PendingKeys) -> None:
        """A save failed: forget what it would have added, and the key sets it reused (one
        may be erased)."""
        self.forget({k[0] for k in pending.keys} | pending.reused)  # their ciphers and blind indexes
        for aggregate_id in pending.linked():
            self._subject_of.pop(aggregate_id, None)

    def subjects_of(self, curs: Any, aggregate_ids: Iterable[UUID]) -> dict[UUID, UUID]:
        """The subject of each aggregate the cache does not know."""
        found: dict[UUID, UUID] = {}
        wanted = []
        for aggregate_id in set(aggregate_ids):
            subject_id = self._subject_of.get(aggregate_id)
            if subject_id is None:
                wanted.append(aggregate_id)
            else:
                found[aggregate_id] = subject_id
        if wanted:
            curs.execute(f"SELECT aggregate_id, subject_id FROM {SUBJECT_AGGREGATES} WHERE aggregate_id = ANY(CAST(%s AS uuid[]))",
                         (uuid_array(wanted),))
            rows = [(row["aggregate_id"], row["subject_id"]) for row in curs.fetchall()]
            tied = {aggregate_id for aggregate_id, _ in rows}
            rest = [a for a in wanted if a not in tied]
            if rest and self.events_table is not None:
                # An aggregate a key set was made for is tied on the key's own row: its stored
                # events name the key set (the first that has one; an event with nothing
                # personal in it has none).
                start = len(SUBJECT_PREFIX)
                curs.execute(
                    f"SELECT DISTINCT ON (originator_id) originator_id AS aggregate_id,"
                    f" CAST(convert_from(substring(state FROM {start + 1} FOR 36), 'UTF8') AS uuid) AS subject_id"
                    f" FROM {self.events_table} WHERE originator_id = ANY(CAST(%s AS uuid[])) AND substring(state FOR {start}) = %s"
                    f" ORDER BY originator_id, originator_version", (uuid_array(rest), SUBJECT_PREFIX))
                rows += [(row["aggregate_id"], row["subject_id"]) for row in curs.fetchall()]
            for aggregate_id, subject_id in rows:
                self.remember_subject(aggregate_id, subject_id)
                found[aggregate_id] = subject_id
        # What was found, not what the cache holds after: another thread may have emptied it.
        return found

    # -- erasure and rotation ----------------------------------------------------------------

    def erase(self, curs: Any, subject_ids: Sequence[UUID]) -> int:
        """Delete the data keys of these subjects (the person filing again starts a new
        subject). Returns how many keys were deleted."""
        if not subject_ids:
            return 0
        curs.execute(
            f"UPDATE {SUBJECT_KEYS} SET wrapped_key = NULL, master_key_id = NULL, erased_at = now()"
            f" WHERE subject_id = ANY(%s) AND wrapped_key IS NOT NULL", (list(subject_ids),),
        )
        deleted = curs.rowcount
        self.forget(subject_ids)
        return deleted

    def batches_of(self, curs: Any, subject_ids: Sequence[UUID]) -> list[UUID]:
        curs.execute(f"SELECT DISTINCT aggregate_id FROM {SUBJECT_ELEMENTS} WHERE subject_id = ANY(%s)", (list(subject_ids),))
        return [row["aggregate_id"] for row in curs.fetchall()]

    def aggregates_of(self, curs: Any, subject_ids: Sequence[UUID]) -> list[UUID]:
        curs.execute(f"SELECT aggregate_id FROM {SUBJECT_AGGREGATES} WHERE subject_id = ANY(%s)"
                     f" UNION SELECT aggregate_id FROM {SUBJECT_KEYS} WHERE subject_id = ANY(%s) AND aggregate_id IS NOT NULL",
                     (list(subject_ids), list(subject_ids)))
        return [row["aggregate_id"] for row in curs.fetchall()]


def rotate(datastore: Any, old: MasterKeys, new_key: bytes, *, batch_size: int = 1000) -> int:
    """Re-wrap every data key not yet wrapped by ``new_key`` with it (unwrapping with ``old``'s
    keys), a batch per transaction; safe to run again after an interruption. Events are not
    touched. Returns how many keys were re-wrapped."""
    new = MasterKeys(new_key)
    done = 0
    while True:
        with datastore.transaction(commit=True) as curs:
            curs.execute(
                f"SELECT subject_id, wrapped_key, master_key_id FROM {SUBJECT_KEYS}"
                f" WHERE wrapped_key IS NOT NULL AND master_key_id <> %s ORDER BY subject_id LIMIT %s FOR UPDATE",
                (new.current_id, batch_size),
            )
            rows = curs.fetchall()
            if not rows:
                return done
            ids, wrapped = [], []
            for row in rows:
                key = old.unwrap(row["master_key_id"], row["subject_id"], bytes(row["wrapped_key"]))
                ids.append(row["subject_id"])
                wrapped.append(new.wrap(row["subject_id"], key))
            curs.execute(
                f"UPDATE {SUBJECT_KEYS} k SET wrapped_key = t.w, master_key_id = %s"
                f" FROM unnest(%s::uuid[], %s::bytea[]) AS t(id, w) WHERE k.subject_id = t.id",
                (new.current_id, ids, wrapped),
            )
            done += len(rows)
