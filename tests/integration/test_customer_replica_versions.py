"""Identity's and distribution's replicas of licensing's customers keep the highest version of
a customer (shared.ordering), whatever the events' clocks say; events from before licensing
numbered its customers (no `version`) are ordered by `occurred_at`, and lose to a versioned
state. The same handlers as the consumers run, on each service's migrated SQLite database."""

from __future__ import annotations

import importlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared import migrations
from shared.db import Database
from shared.events import parse_envelope
from shared.ordering import supersedes

T0 = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
NUMBER = "100001"
REPLICA = {"identity": "CustomerProfile", "distribution": "Customer"}


class Replica:
    def __init__(self, service: str, url: str):
        self.service = service
        self.database = Database(url)
        self.handlers = importlib.import_module(f"{service}.handlers").HANDLERS
        self.model = getattr(importlib.import_module(f"{service}.models"), REPLICA[service])

    def event(self, type_: str, name: str, at: datetime, version: int | None) -> None:
        data = {"customer_number": NUMBER, "company_id": "25083325", "company_name": name}
        if version is not None:
            data["version"] = version
        envelope = {
            "id": str(uuid.uuid4()),
            "type": f"licensing.customer.{type_}",
            "version": 1,
            "occurred_at": at.isoformat(),
            "producer": "licensing",
            "data": data,
        }
        event = parse_envelope(json.dumps(envelope).encode())
        with self.database.unit_of_work() as session:
            self.handlers[event.type](session, event)

    def held(self) -> tuple[str, int]:
        with self.database.unit_of_work() as session:
            row = session.get(self.model, NUMBER)
            return row.company_name, row.source_version


@pytest.fixture(params=sorted(REPLICA))
def replica(request, tmp_path):
    url = f"sqlite:///{tmp_path / request.param}.db"
    migrations.upgrade(request.param, url)
    replica = Replica(request.param, url)
    yield replica
    replica.database.dispose()


def test_a_higher_version_wins_over_a_later_clock(replica):
    replica.event("created", "A", T0, 1)
    replica.event("updated", "C", T0 + timedelta(seconds=1), 3)  # a replica whose clock is behind
    replica.event("updated", "B", T0 + timedelta(seconds=2), 2)
    assert replica.held() == ("C", 3)
    replica.event("created", "A", T0 + timedelta(hours=1), 1)  # created, redelivered late
    assert replica.held() == ("C", 3)


def test_two_changes_in_one_clock_tick_are_ordered_by_version(replica):
    replica.event("created", "A", T0, 1)
    replica.event("updated", "B", T0 + timedelta(seconds=1), 2)
    replica.event("updated", "C", T0 + timedelta(seconds=1), 3)
    assert replica.held() == ("C", 3)


def test_events_without_a_version_are_ordered_by_time_and_lose_to_a_versioned_state(replica):
    replica.event("created", "A", T0, None)
    replica.event("updated", "B", T0 + timedelta(seconds=2), None)
    replica.event("updated", "stale", T0 + timedelta(seconds=1), None)
    assert replica.held() == ("B", 0)
    replica.event("updated", "C", T0 - timedelta(minutes=5), 2)  # numbered: newer than any unnumbered
    assert replica.held() == ("C", 2)
    replica.event("updated", "old", T0 + timedelta(hours=1), None)
    assert replica.held() == ("C", 2)


def test_the_rule():
    assert supersedes(2, T0, 1, T0 + timedelta(days=1))
    assert not supersedes(1, T0 + timedelta(days=1), 1, T0)
    assert not supersedes(None, T0 + timedelta(days=1), 1, T0)
    assert supersedes(1, T0 - timedelta(days=1), 0, T0)
    assert supersedes(None, T0 + timedelta(seconds=1), 0, T0.replace(tzinfo=None))  # SQLite's naive times
    assert not supersedes(0, T0, 0, T0)
