"""Stored events name their class by topic: the topics must stay the stable names they are, so a
database written before a module moves still reads after it."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from eventsourcing.domain import BaseAggregate, DomainEvent
from eventsourcing.utils import resolve_topic

import domain
from application.cloudevents import TOPIC_OF_TYPE
from infrastructure.jobs.dispatcher import TOPICS as DISPATCHED_TOPICS
from onestop.bootstrap import eventsourcing_env
from onestop.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CODE = ("onestop", "api", "application", "infrastructure", "workers", "domain")
TOPIC_LITERAL = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _aggregates() -> list[type[BaseAggregate]]:
    found = []
    for info in pkgutil.iter_modules(domain.__path__, "domain."):
        module = importlib.import_module(info.name)
        found += [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, BaseAggregate) and c.__module__ == module.__name__]
    return found


def _events(aggregate: type) -> list[type[DomainEvent]]:
    return [c for c in vars(aggregate).values() if isinstance(c, type) and issubclass(c, DomainEvent)]


def _stored_events() -> list[type[DomainEvent]]:
    """Every event an aggregate records: all its event classes but the base others build on."""
    stored = []
    for aggregate in _aggregates():
        events = _events(aggregate)
        stored += [e for e in events if not any(other is not e and issubclass(other, e) for other in events)]
    return stored


def test_the_domain_has_the_aggregates_and_events_this_test_walks() -> None:
    names = {a.__name__ for a in _aggregates()}
    assert {"ServiceRequest", "Payment", "UnmatchedPayment"} <= names
    assert len(_stored_events()) >= 20


@pytest.mark.parametrize("aggregate", _aggregates(), ids=lambda a: a.__name__)
def test_every_aggregate_declares_its_own_topic_and_it_names_the_aggregate(aggregate: type) -> None:
    assert "TOPIC" in vars(aggregate)
    assert resolve_topic(aggregate.TOPIC) is aggregate


@pytest.mark.parametrize("event", _stored_events(), ids=lambda e: e.__qualname__)
def test_every_stored_event_declares_its_own_topic_and_it_names_the_event(event: type) -> None:
    assert "TOPIC" in vars(event), f"{event.__qualname__} has no TOPIC of its own"
    assert event.TOPIC.startswith("onestop:")
    assert resolve_topic(event.TOPIC) is event


def test_the_transcoder_topic_in_the_event_store_settings_names_the_transcoder() -> None:
    env = eventsourcing_env(Settings.from_env({"ONESTOP_DATABASE_URL": "postgresql://u:p@db.invalid:5432/onestop", "ONESTOP_JWT_SECRET": "x"}))
    transcoder = resolve_topic(env["TRANSCODER_TOPIC"])
    assert transcoder.__name__ == "OrjsonTranscoder"


def test_the_published_and_dispatched_topics_name_stored_events() -> None:
    stored = set(_stored_events())
    for topic in [*TOPIC_OF_TYPE.values(), *DISPATCHED_TOPICS]:
        assert resolve_topic(topic) in stored, topic


def test_every_topic_written_as_a_string_in_the_code_names_a_class_that_exists() -> None:
    literals = []
    for top in CODE:
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and TOPIC_LITERAL.match(node.value):
                    literals.append(node.value)
    assert "infrastructure.eventstore.transcoder:OrjsonTranscoder" in literals
    for topic in literals:
        assert isinstance(resolve_topic(topic), type), topic
