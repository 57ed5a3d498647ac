"""Every event delivered twice, and adjacent pairs in swapped order: the consumers end in the
state a single in-order delivery gives.

The events are the real ones. With the consumers stopped, staff, a partner and a customer's
administrator make changes that each produce events (customers created and renamed, licenses
sold, registered, extended and revoked, addresses and delivery method changed, members
invited, changed and removed, a person renamed); the relays publish them into the consumers'
queues, where the test takes them (as published, in order) and puts them back with each
adjacent pair of events about the same record (a license, a customer, a membership, a
person) swapped, and the whole sequence twice. Licensing's relay is held back around one
rename, so that a customer's contact change is published before an older rename, as a slow
relay would do. Then the consumers start again. The reference is a fresh database per
consumer to which the whole history, from the producers' outboxes, is applied once in order
of occurrence by the same handlers.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from shared import migrations
from shared.config import Settings
from shared.consumer import EventConsumer
from shared.db import Database
from shared.events import catalogue
from shared.topology import Topology
from tests.fault.world import (
    CONSUMERS,
    PRODUCERS,
    PRODUCT,
    Reconciliation,
    all_running,
    database_url,
    dead_letters,
    delivery_gaps,
    outbox_events,
    replica_differences,
    settle,
)
from tests.support import drain, publish_many, queue_depth, queue_message_counts, read_only_database, wait_until

CONSUMER_PROCESSES = {consumer: f"{consumer}-consumer" for consumer in CONSUMERS}
# What each consumer keeps from the events: the tables (and columns) compared with the reference.
REPLICAS = {
    "distribution": {
        "customers": "customer_number, company_name, source_updated_at, source_version, delivery_address, "
        "delivery_method, contacts_version",
        "entitlements": "installation_number, customer_number, product, edition, add_ons, seats, status, "
        "support_until, version",
        "memberships": "user_id, customer_number, rights, active, changed_at",
    },
    "licensing": {"memberships": "user_id, customer_number, rights, active, changed_at"},
    # identity's profiles also hold what customers edit in identity itself: the columns from events
    "identity": {"customer_profiles": "customer_number, company_id, company_name, source_updated_at, source_version"},
    "forum": {"authors": "user_id, name, email, company_name, staff, active, version"},
}


def handlers_of(consumer: str) -> dict:
    module = __import__(f"{consumer}.handlers", fromlist=["HANDLERS"])
    return module.HANDLERS


def replica(url: str, consumer: str) -> dict[str, dict]:
    """The consumer's replica tables: {table: {first column: whole row}}."""
    tables = {}
    with read_only_database(url) as db:
        for table, columns in REPLICAS[consumer].items():
            rows = db.execute(f"SELECT {columns} FROM {table}").fetchall()
            tables[table] = {json.dumps(row[:2] if table == "memberships" else row[0]): row for row in rows}
    return tables


def differences(reference: dict[str, dict], actual: dict[str, dict]) -> tuple[dict, dict]:
    """(rows missing or different in `actual`, rows only in `actual`)."""
    lost, extra = {}, {}
    for table, rows in reference.items():
        for key, row in rows.items():
            if actual[table].get(key) != row:
                lost[f"{table} {key}"] = f"{actual[table].get(key)} instead of {row}"
        for key in set(actual[table]) - set(rows):
            extra[f"{table} {key}"] = str(actual[table][key])
    return lost, extra


def in_order_reference(suite, new_database, consumer: str) -> dict[str, dict]:
    """A fresh database for `consumer`, every event it subscribes to applied once, in order."""
    url = new_database(f"reference_{consumer}")
    migrations.upgrade(consumer, url)
    database = Database(url)
    applier = EventConsumer(Settings(service=consumer, database_url=url), handlers_of(consumer), database)
    history = [
        event
        for producer in PRODUCERS
        for event in outbox_events(suite, producer)
        if consumer in catalogue()[event["type"]].consumers
    ]
    history.sort(key=lambda event: (datetime.fromisoformat(event["occurred_at"]), event["producer"], event["row"]))
    for event in history:
        envelope = {k: v for k, v in event.items() if k not in ("row", "published")}
        assert applier.apply(json.dumps(envelope, ensure_ascii=False).encode())
    database.dispose()
    return replica(url, consumer)


def aggregate(body: bytes) -> tuple:
    """The record an event is about: a license, a membership, a person, or a customer (its
    company, as licensing sells to it, and its contacts, as identity keeps them)."""
    event = json.loads(body)
    data = event["data"]
    if "installation_number" in data:
        return ("license", data["installation_number"])
    if event["type"] == "identity.membership.changed":
        return ("membership", data["user_id"], data["customer_number"])
    if "user_id" in data:
        return ("person", data["user_id"])
    return ("customer", data["customer_number"])


def swapped_twice(messages: list) -> tuple[list, int]:
    """The messages with each adjacent pair of those about one record swapped (b a d c ...,
    records in order of first appearance), the whole sequence twice; and how many pairs."""
    records: dict[tuple, list] = {}
    for message in messages:
        records.setdefault(aggregate(message[1]), []).append(message)
    swapped, pairs = [], 0
    for about_one in records.values():
        for i in range(0, len(about_one) - 1, 2):
            swapped += [about_one[i + 1], about_one[i]]
            pairs += 1
        if len(about_one) % 2:
            swapped.append(about_one[-1])
    return swapped + swapped, pairs


class Burst:
    """Changes through the gateway while the consumers are stopped; each must be a 2xx."""

    def __init__(self, world):
        self.world, self.acknowledged = world, 0

    def __call__(self, method: str, path: str, headers: dict, expect=(200, 201, 204), **kwargs):
        answer = self.world.call(method, path, headers=headers, **kwargs)
        assert answer.status_code in (expect if isinstance(expect, tuple) else (expect,)), (
            f"{method} {path}: {answer.status_code} {answer.text}"
        )
        self.acknowledged += 1
        return answer.json() if answer.content else None


def make_changes(world, suite, customer, rename_correlation: str) -> int:
    """The burst: every kind of change that makes events, through the gateway."""
    staff, admin, number = world.staff, customer.admin, customer.number
    do = Burst(world)
    company_id, name = world.new_company("Dvakrát a napřeskáčku")
    other = do(
        "POST",
        "/api/v1/admin/customers",
        staff,
        json={"company_id": company_id, "company_name": name, "billing_address": world_address()},
    )["customer_number"]
    do("PATCH", f"/api/v1/admin/customers/{other}", staff, json={"company_name": f"{name} (2)"})
    do("PATCH", f"/api/v1/admin/customers/{other}", staff, json={"company_name": f"{name} (3)"})
    # A slow licensing relay: the rename is published after the contact changes that follow it.
    suite.stop("licensing-relay")
    do(
        "PATCH",
        f"/api/v1/admin/customers/{number}",
        {**staff, "X-Correlation-ID": rename_correlation},
        json={"company_name": f"{customer.company_name} přejmenovaná"},
    )
    for n in range(3):
        address = {"street": f"Přeházená {n}", "city": "Brno", "postal_code": f"6020{n}", "country": "CZ"}
        do(
            "PUT",
            f"/api/v1/customers/{number}/addresses",
            admin,
            json={"billing_address": address, "delivery_address": address},
        )
    wait_until(
        lambda: not [e for e in outbox_events(suite, "identity") if not e["published"]],
        timeout=60,
        message="the contact changes published",
    )
    suite.start_one("licensing-relay")
    for method in ("dvd", "download", "dvd"):
        do("PUT", f"/api/v1/customers/{number}/delivery-method", admin, json={"delivery_method": method})
    for revoke in (False, True):
        sold = do(
            "POST",
            "/api/v1/admin/licenses",
            staff,
            json={"customer_number": number, "product": PRODUCT["code"], "edition": "Profi", "support_until": None},
        )
        path = f"/api/v1/admin/licenses/{sold['installation_number']}"
        do("PATCH", path, staff, json={"support_until": "2031-06-30"})
        do("PATCH", path, staff, json={"support_until": "2032-01-31"})
        if revoke:
            do("PATCH", path, staff, json={"status": "revoked"})
    sale = world.sale_body((customer.company_id, customer.company_name), f"swap-{uuid.uuid4().hex[:8]}")
    sold = do(
        "POST",
        "/api/v1/partner/sales",
        {"Authorization": f"Bearer {world.partner_key}", "Idempotency-Key": str(uuid.uuid4())},
        json=sale,
    )
    do(
        "POST",
        f"/api/v1/customers/{number}/product-registrations",
        admin,
        json={"installation_number": sold["installation_number"]},
    )
    kept = do(
        "POST",
        f"/api/v1/customers/{number}/users",
        admin,
        json={"email": f"kept-{number}@example.com", "name": "Zůstane", "rights": ["downloads"]},
    )
    do("PATCH", f"/api/v1/customers/{number}/users/{kept['id']}", admin, json={"rights": ["downloads", "news"]})
    do("PATCH", f"/api/v1/customers/{number}/users/{kept['id']}", admin, json={"rights": ["news"]})
    gone = do(
        "POST",
        f"/api/v1/customers/{number}/users",
        admin,
        json={"email": f"gone-{number}@example.com", "name": "Odejde", "rights": ["licenses"]},
    )
    do("PATCH", f"/api/v1/customers/{number}/users/{gone['id']}", admin, json={"rights": ["licenses", "documents"]})
    do("DELETE", f"/api/v1/customers/{number}/users/{gone['id']}", admin)
    do("PATCH", "/api/v1/me", admin, json={"name": "Správce Přejmenovaný"})
    do("PATCH", "/api/v1/me", admin, json={"name": "Správce Podruhé"})
    return do.acknowledged


def world_address() -> dict:
    return {"street": "Kosá 8", "city": "Jihlava", "postal_code": "58601", "country": "CZ"}


@pytest.mark.fault
def test_every_event_twice_and_pairs_swapped_gives_the_in_order_state(
    suite, world, new_database, record_property, tmp_path
):
    amqp_url = suite.env["AMQP_URL"]
    topology = Topology(suite.namespace)
    settle(suite)
    # Distribution and forum stop first: the new customer's creation and its administrator's
    # membership and person reach them only in the batch the test reorders.
    for consumer in ("distribution", "forum"):
        suite.stop(CONSUMER_PROCESSES[consumer])
    customer = world.customer_with_administrator("Dvakrát a napřeskáčku")
    wait_until(
        lambda: not [gap for gap in delivery_gaps(suite)["missing"] if gap[2] in ("identity", "licensing")],
        timeout=120,
        interval=0.5,
        message="identity and licensing up to date",
    )
    for consumer in ("identity", "licensing"):
        suite.stop(CONSUMER_PROCESSES[consumer])
    rename_correlation = f"fault-rename-{uuid.uuid4()}"
    acknowledged = make_changes(world, suite, customer, rename_correlation)

    # What the stopped consumers have yet to apply is in their queues once the relays are done.
    wait_until(lambda: not delivery_gaps(suite)["unsent"], timeout=120, message="every event published")
    expected = {
        consumer: {gap[0] for gap in delivery_gaps(suite)["missing"] if gap[2] == consumer} for consumer in CONSUMERS
    }
    wait_until(
        lambda: all(queue_depth(amqp_url, topology.queue(c)) >= len(expected[c]) for c in CONSUMERS),
        timeout=120,
        interval=0.2,
        message="the events in the consumers' queues",
    )
    deliveries, swapped_pairs = {}, {}
    for consumer in CONSUMERS:
        taken = drain(amqp_url, topology.queue(consumer))
        messages = [(topology.queue(consumer), body, json.loads(body)["id"]) for _headers, body in taken]
        assert {m[2] for m in messages} == expected[consumer], f"{consumer}'s queue held other events"
        messages = list({m[2]: m for m in messages}.values())  # a relay may publish one twice
        deliveries[consumer], swapped_pairs[consumer] = swapped_twice(messages)
        publish_many(amqp_url, "", deliveries[consumer])  # straight to this consumer's queue
    for process in CONSUMER_PROCESSES.values():
        suite.start_one(process)

    settle(suite)
    wait_until(
        lambda: all(queue_message_counts(topology.queue(c)) == (0, 0) for c in CONSUMERS),
        timeout=120,
        interval=1,
        message="every duplicate consumed",
    )
    result = Reconciliation("every event twice, pairs swapped")
    compared = {}
    lost, extra = {}, {}
    for consumer in CONSUMERS:
        reference = in_order_reference(suite, new_database, consumer)
        actual = replica(database_url(suite, consumer), consumer)
        missing, more = differences(reference, actual)
        lost.update({f"{consumer} {k}": v for k, v in missing.items()})
        extra.update({f"{consumer} {k}": v for k, v in more.items()})
        compared[consumer] = sum(len(rows) for rows in reference.values())
    # identity renamed the company's people once per rename, however often the rename came
    renames = [
        e
        for e in outbox_events(suite, "identity", "identity.user.changed")
        if e["correlation_id"] == rename_correlation
    ]
    per_person = {}
    for event in renames:
        per_person[event["data"]["user_id"]] = per_person.get(event["data"]["user_id"], 0) + 1
    repeated = {user: count for user, count in per_person.items() if count > 1}
    result.parts["consumers vs in-order delivery"] = {
        "acknowledged": acknowledged,
        "events": sum(len(ids) for ids in expected.values()),
        "deliveries": sum(len(d) for d in deliveries.values()),
        "rows_compared": compared,
        "lost": len(lost) + (0 if per_person else 1),
        "duplicated": len(extra) + sum(count - 1 for count in repeated.values()),
        "lost_detail": dict(list(lost.items())[:10]) or ({} if per_person else {"rename": "never reached people"}),
        "duplicated_detail": {**dict(list(extra.items())[:10]), **repeated},
    }
    result.parts["replicas vs their sources"] = replica_differences(suite)
    result.facts.update(
        events_per_consumer={c: len(ids) for c, ids in expected.items()},
        swapped_pairs_per_consumer=swapped_pairs,
        dead_letters=dead_letters(suite),
    )
    result.publish(record_property, tmp_path)
    assert result.lost == 0, result.parts
    assert result.duplicated == 0, result.parts
    assert not any(result.facts["dead_letters"].values()), result.facts["dead_letters"]
    assert all(all_running(suite).values()), all_running(suite)
