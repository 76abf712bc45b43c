"""Loading many aggregates in one SELECT: the workers record registry answers in batches, and
one query for the batch costs far less than one round trip per answer. The aggregates are
folded exactly as the library's repository folds them (its mapper, so personal fields are
revealed as on any other read, and each event's ``mutate``, as `project_aggregate` does)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import retry
from psycopg import InterfaceError, OperationalError
from psycopg.sql import SQL, Identifier

from application.ports import AggregateBatch


class PostgresAggregateBatch(AggregateBatch):
    def __init__(self, app: Any) -> None:
        self.app = app
        recorder = app.recorder
        self.datastore = recorder.datastore
        self.statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table}"
            " WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(recorder.events_table_name))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def load(self, aggregate_ids: list[UUID]) -> dict[UUID, Any]:
        if not aggregate_ids:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.statement, (list(set(aggregate_ids)),), prepare=True)
            stored = [StoredEvent(originator_id=row["originator_id"], originator_version=row["originator_version"],
                                  topic=row["topic"], state=bytes(row["state"])) for row in curs.fetchall()]
            mapper = self.app.repository.event_store.mapper
            prefetch = getattr(mapper, "prefetch", None)
            if prefetch is not None:
                prefetch(stored, curs)  # the personal keys of the whole batch, in this same connection
        events = [mapper.to_domain_event(s) for s in stored]
        found: dict[UUID, Any] = {}
        start = 0
        for i in range(1, len(events) + 1):
            if i == len(events) or events[i].originator_id != events[start].originator_id:
                # As the library's project_aggregate, without its assert of a runtime protocol
                # on every event (costly in Python 3.11).
                aggregate = None
                for event in events[start:i]:
                    aggregate = event.mutate(aggregate)
                if aggregate is not None:
                    found[aggregate.id] = aggregate
                start = i
        return found
