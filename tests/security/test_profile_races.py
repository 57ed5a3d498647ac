"""Simultaneous writes to one profile (review findings 2 and 3), on SQLite and PostgreSQL.

Identity's real HTTP app is served by a threaded server; two administrators send their
requests at the same moment (a barrier), round after round, each round on a fresh profile:
- demoting each other, removing each other, one demoting while the other removes: never a
  profile without an administrator, never a 5xx (the one who lost the race is a 403 or 404:
  they are no administrator any more, or no member);
- changing the addresses, or one member's rights, or their own name: every change is
  announced with its own version, and a consumer that gets the events in any order, twice,
  ends at identity's state.
And licensing's license versions, the same pattern on another service's aggregate.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
import requests
from identity import people as announcing
from identity.app import create_app
from identity.models import RIGHTS, CustomerProfile, Membership, User
from sqlalchemy import func, select

from shared import auth, migrations
from shared.auth import Principal
from shared.consumer import EventConsumer
from shared.db import Database, utc_now
from shared.messaging import outbox
from tests.conftest import TEST_SECRET
from tests.support import serving, valid_company_id

ROUNDS = 12
ANSWERED = {200, 204, 403, 404, 409}
_numbers = itertools.count(500_000 + random.randrange(400_000))  # never one twice in a run


@dataclass
class Served:
    base: str
    database: Database
    backend: str
    url: str

    def profile(self, *names: str, administrators: int = 2) -> tuple[str, list[str]]:
        """A fresh profile with these people, the first `administrators` of them administrators."""
        number = str(next(_numbers))
        ids = []
        with self.database.unit_of_work() as session:
            session.add(
                CustomerProfile(
                    customer_number=number,
                    company_id=valid_company_id(int(number)),
                    company_name=f"Firma {number}",
                    source_updated_at=utc_now(),
                )
            )
            session.flush()
            for position, name in enumerate(names):
                user = User(email=f"{uuid.uuid4().hex[:12]}@example.com", name=name, status="active")
                session.add(user)
                session.flush()
                administrator = position < administrators
                session.add(
                    Membership(
                        user_id=user.id,
                        customer_number=number,
                        administrator=administrator,
                        rights=list(RIGHTS) if administrator else ["downloads"],
                        version=1,
                    )
                )
                ids.append(user.id)
        return number, ids

    def at_once(self, *calls: tuple[str, str, str, dict | None]) -> list[int]:
        """Send (method, path, caller, body) calls at the same moment; their status codes."""
        barrier = threading.Barrier(len(calls))
        statuses: list[int] = [0] * len(calls)

        def send(index: int, method: str, path: str, caller: str, body: dict | None) -> None:
            headers = {auth.HEADER: auth.issue(TEST_SECRET, "identity", Principal(caller, client="198.51.100.9"))}
            barrier.wait()
            statuses[index] = requests.request(
                method, self.base + path, json=body, headers=headers, timeout=60
            ).status_code

        threads = [threading.Thread(target=send, args=(i, *call)) for i, call in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        return statuses

    def administrators(self, number: str) -> int:
        with self.database.unit_of_work() as session:
            return session.scalar(
                select(func.count())
                .select_from(Membership)
                .where(Membership.customer_number == number, Membership.administrator)
            )

    def events(self, routing_key: str) -> list[bytes]:
        with self.database.unit_of_work() as session:
            rows = session.execute(
                select(outbox.c.body).where(outbox.c.routing_key == routing_key).order_by(outbox.c.id)
            ).all()
        return [row.body.encode() if isinstance(row.body, str) else row.body for row in rows]


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request, new_database, settings_for, tmp_path):
    url = new_database("identity") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'identity.db'}"
    migrations.upgrade("identity", url)
    app = create_app(settings_for("identity", url, public_url="https://portal.example"))
    database = app.extensions["database"]
    with serving(app) as base:
        yield Served(base, database, request.param, url)
    database.dispose()


def _consumer_database(served: Served, new_database, tmp_path, service: str) -> str:
    url = new_database(service) if served.backend == "postgresql" else f"sqlite:///{tmp_path / service}.db"
    migrations.upgrade(service, url)
    return url


def _orders(bodies: list[bytes]) -> list[list[bytes]]:
    """The events as they were written, reversed, and shuffled with every one delivered twice."""
    twice = bodies * 2
    random.shuffle(twice)
    return [bodies, bodies[::-1], twice]


# --- finding 2: never zero administrators -----------------------------------------------------
@pytest.mark.parametrize(
    "race",
    ["demote each other", "remove each other", "demote and remove"],
)
def test_two_administrators_acting_on_each_other_at_once_leave_one(served, race):
    outcomes = defaultdict(int)
    for _ in range(ROUNDS):
        number, (ada, bob) = served.profile("Ada", "Bob")
        demote = ("PATCH", {"administrator": False})
        remove = ("DELETE", None)
        first, second = {
            "demote each other": (demote, demote),
            "remove each other": (remove, remove),
            "demote and remove": (demote, remove),
        }[race]
        statuses = served.at_once(
            (first[0], f"/api/v1/customers/{number}/users/{bob}", ada, first[1]),
            (second[0], f"/api/v1/customers/{number}/users/{ada}", bob, second[1]),
        )
        outcomes[tuple(sorted(statuses))] += 1
        assert set(statuses) <= ANSWERED, statuses
        assert served.administrators(number) >= 1, f"no administrator left after {statuses}"
    assert sum(outcomes.values()) == ROUNDS, dict(outcomes)


def test_a_demoted_administrator_cannot_act_in_the_same_moment(served):
    """Ada demotes Bob while Bob removes Carl: either Bob was first (Carl is gone, then Bob is
    demoted) or Ada was (Bob is refused). Never Carl removed after Bob lost the right."""
    for _ in range(ROUNDS):
        number, (ada, bob, carl) = served.profile("Ada", "Bob", "Carl")
        statuses = served.at_once(
            ("PATCH", f"/api/v1/customers/{number}/users/{bob}", ada, {"administrator": False}),
            ("DELETE", f"/api/v1/customers/{number}/users/{carl}", bob, None),
        )
        assert statuses[0] == 200 and statuses[1] in (204, 403), statuses
        changes = [
            (data["user_id"], data["active"])
            for data in (json.loads(body)["data"] for body in served.events("identity.membership.changed"))
            if data["customer_number"] == number
        ]
        if statuses[1] == 204:  # in the order they were committed
            assert changes == [(carl, False), (bob, True)], changes


# --- finding 3: versions unique, consumers end at the owner's state ----------------------------
def _addresses(street: str) -> dict:
    address = {"street": street, "city": "Praha", "postal_code": "11000", "country": "CZ"}
    return {"billing_address": address, "delivery_address": address | {"city": "Brno"}}


def test_simultaneous_address_changes_get_their_own_versions_and_distribution_ends_at_identitys_state(
    served, new_database, settings_for, tmp_path
):
    from distribution.handlers import HANDLERS
    from distribution.models import Customer

    numbers = []
    for _ in range(ROUNDS):
        number, (ada, bob) = served.profile("Ada", "Bob")
        numbers.append(number)
        statuses = served.at_once(
            ("PUT", f"/api/v1/customers/{number}/addresses", ada, _addresses(f"Adina {number}")),
            ("PUT", f"/api/v1/customers/{number}/addresses", bob, _addresses(f"Bobova {number}")),
        )
        assert statuses == [200, 200]
    events = defaultdict(list)
    for body in served.events("identity.customer.contact_changed"):
        events[json.loads(body)["data"]["customer_number"]].append(body)
    with served.database.unit_of_work() as session:
        owner = {p.customer_number: p for p in session.scalars(select(CustomerProfile)).all()}
    for number in numbers:
        versions = [json.loads(body)["data"]["version"] for body in events[number]]
        assert sorted(versions) == [1, 2], (number, versions)
        assert owner[number].contacts_version == 2
    for order in range(3):
        url = _consumer_database(served, new_database, tmp_path / str(order), "distribution")
        database = Database(url)
        consumer = EventConsumer(settings_for("distribution", url), HANDLERS, database)
        for number in numbers:
            for body in _orders(events[number])[order]:
                consumer.apply(body)
        with database.unit_of_work() as session:
            for number in numbers:
                customer = session.get(Customer, number)
                assert (customer.delivery_address, customer.billing_address) == (
                    owner[number].delivery_address,
                    owner[number].billing_address,
                ), (number, order)
        database.dispose()


def test_simultaneous_rights_changes_of_one_member_get_their_own_versions(served):
    """The newest version holds identity's state: what a consumer keeps is what identity has."""
    numbers = {}
    for _ in range(ROUNDS):
        number, (ada, bob, jan) = served.profile("Ada", "Bob", "Jan")
        numbers[number] = jan
        statuses = served.at_once(
            ("PATCH", f"/api/v1/customers/{number}/users/{jan}", ada, {"rights": ["news"]}),
            ("PATCH", f"/api/v1/customers/{number}/users/{jan}", bob, {"rights": ["licenses", "contacts"]}),
        )
        assert statuses == [200, 200]
    events = defaultdict(list)
    for body in served.events("identity.membership.changed"):
        data = json.loads(body)["data"]
        events[(data["customer_number"], data["user_id"])].append(data)
    with served.database.unit_of_work() as session:
        for number, jan in numbers.items():
            mine = events[(number, jan)]
            assert sorted(e["version"] for e in mine) == [2, 3], mine
            newest = max(mine, key=lambda e: e["version"])
            assert newest["rights"] == session.get(Membership, (jan, number)).effective_rights()


def test_simultaneous_renames_get_their_own_versions_and_the_forum_ends_at_identitys_state(
    served, new_database, settings_for, tmp_path
):
    from forum.handlers import HANDLERS
    from forum.models import Author

    people = []
    for round_ in range(ROUNDS):
        _number, (ada,) = served.profile("Ada", administrators=1)
        people.append(ada)
        with served.database.unit_of_work() as session:  # announced once, as when she joined
            announcing.announce(session, ada)
        statuses = served.at_once(
            ("PATCH", "/api/v1/me", ada, {"name": f"Ada První {round_}"}),
            ("PATCH", "/api/v1/me", ada, {"name": f"Ada Druhá {round_}"}),
        )
        assert statuses == [200, 200]
    events = defaultdict(list)
    for body in served.events("identity.user.changed"):
        events[json.loads(body)["data"]["user_id"]].append(body)
    with served.database.unit_of_work() as session:
        names = {user_id: session.get(User, user_id).name for user_id in people}
    for user_id in people:
        assert sorted(json.loads(b)["data"]["version"] for b in events[user_id]) == [1, 2, 3]
    for order in range(3):
        url = _consumer_database(served, new_database, tmp_path / str(order), "forum")
        database = Database(url)
        consumer = EventConsumer(settings_for("forum", url), HANDLERS, database)
        for user_id in people:
            for body in _orders(events[user_id])[order]:
                consumer.apply(body)
        with database.unit_of_work() as session:
            for user_id in people:
                assert session.get(Author, user_id).name == names[user_id], order
        database.dispose()


# --- the same pattern in licensing: a license's version ----------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_simultaneous_support_changes_of_one_license_get_their_own_versions(backend, new_database, tmp_path):
    from licensing import licenses
    from licensing.customers import create_customer
    from licensing.models import License, Product

    url = new_database("licensing") if backend == "postgresql" else f"sqlite:///{tmp_path / 'licensing.db'}"
    migrations.upgrade("licensing", url)
    database = Database(url)
    with database.unit_of_work() as session:
        session.add(Product(code="ucetnictvi", name="Účetní systém", editions=["Jazz"], add_ons=[]))
        customer = create_customer(session, valid_company_id(4242), "Pekárna Hanák s.r.o.", None)
        session.flush()
        numbers = [
            licenses.issue_direct(
                session, customer.customer_number, "ucetnictvi", "Jazz", [], 1, None
            ).installation_number
            for _ in range(ROUNDS)
        ]
    writers = 3
    for number in numbers:
        barrier = threading.Barrier(writers)
        failures = []

        def change(days: int, number: str = number, barrier: threading.Barrier = barrier, failures=failures) -> None:
            try:
                barrier.wait()
                with database.unit_of_work() as session:
                    licenses.change_support(session, number, date.today() + timedelta(days=days))
            except Exception as error:  # noqa: BLE001 - reported below
                failures.append(error)

        threads = [threading.Thread(target=change, args=(days,)) for days in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
    with database.unit_of_work() as session:
        rows = session.execute(select(outbox.c.body).where(outbox.c.routing_key.like("licensing.license.%"))).all()
        versions = defaultdict(list)
        for row in rows:
            data = json.loads(row.body)["data"]
            versions[data["installation_number"]].append(data)
        for number in numbers:
            assert sorted(e["version"] for e in versions[number]) == list(range(1, writers + 2)), number
            newest = max(versions[number], key=lambda e: e["version"])
            stored = session.scalars(select(License).where(License.installation_number == number)).one()
            assert newest["support_until"] == stored.support_until.isoformat()
    database.dispose()
