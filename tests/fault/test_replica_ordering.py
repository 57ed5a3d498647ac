"""Two licensing replicas on two machines: one's clock is behind, and two changes can fall in
one clock tick. Identity's profiles and distribution's customers must keep the customer's
highest version (shared.ordering), not the event with the latest `occurred_at`.

The events are licensing's own. With licensing's relay stopped, staff correct a customer four
times (versions 2 to 5, each a new name and billing address); the test publishes those events
onto the events exchange as a relay would (same message and event ids, routing key = type),
with the clocks of the HA deployment: version 3 stamped with version 2's time, published
first, then version 2 stamped with version 3's (the higher version with the older clock
first); then versions 4 and 5 with one and the same `occurred_at`, the lower first. After
each pair identity's profile (staff API) and distribution's customer (its database) show the
higher version's name and address. The relay then publishes the originals, which the
consumers' inboxes know already: everything settles with the replicas equal to licensing.
"""

from __future__ import annotations

import json

import pytest

from shared.topology import Topology
from tests.fault.world import (
    Reconciliation,
    all_running,
    database_url,
    dead_letters,
    inbox_ids,
    outbox_events,
    replica_differences,
    settle,
)
from tests.support import publish_many, read_only_database, wait_until

REPLICAS = ("identity", "distribution")  # the consumers of licensing's customer events


def address(n: int) -> dict:
    return {"street": f"Hodinová {n}", "city": "Zlín", "postal_code": f"7600{n}", "country": "CZ"}


def as_published(event: dict, occurred_at: str) -> tuple[str, bytes, str]:
    """(routing key, body, message id) of an outbox event as a relay whose clock said `occurred_at` sends it."""
    envelope = {k: v for k, v in event.items() if k not in ("row", "published")}
    envelope["occurred_at"] = occurred_at
    return event["type"], json.dumps(envelope, ensure_ascii=False).encode(), event["id"]


def shown(world, suite, number: str) -> dict[str, tuple]:
    """What each replica holds of the customer: (company name, billing address)."""
    profile = world.staff_call("GET", f"/api/v1/admin/customer-profiles/{number}")
    with read_only_database(database_url(suite, "distribution")) as db:
        row = db.execute(
            "SELECT company_name, billing_address FROM customers WHERE customer_number = %s", (number,)
        ).fetchone()
    return {
        "identity": (profile["company_name"], profile["billing_address"]),
        "distribution": tuple(row) if row else None,
    }


@pytest.mark.fault
def test_replicas_keep_the_highest_version_whatever_the_clocks_say(suite, world, record_property, tmp_path):
    amqp_url, exchange = suite.env["AMQP_URL"], Topology(suite.namespace).events_exchange
    settle(suite)
    customer = world.customer("Hodiny napřeskáčku")
    settle(suite)

    suite.stop("licensing-relay")
    states = {}
    for version in (2, 3, 4, 5):
        name = f"{customer.company_name} v{version}"
        world.staff_call(
            "PATCH",
            f"/api/v1/admin/customers/{customer.number}",
            json={"company_name": name, "billing_address": address(version)},
        )
        states[version] = (name, address(version))
    # The four corrections' events in the order they were made (outbox rows): versions 2 to 5.
    corrections = [
        event
        for event in outbox_events(suite, "licensing", "licensing.customer.updated")
        if event["data"]["customer_number"] == customer.number
    ]
    events = dict(zip((2, 3, 4, 5), corrections, strict=True))
    assert not any(event["published"] for event in events.values())
    announced = {version: event["data"].get("version") for version, event in events.items()}

    def applied(*versions: int) -> bool:
        ids = {events[v]["id"] for v in versions}
        return all(ids <= inbox_ids(suite, consumer) for consumer in REPLICAS)

    seen: dict[str, dict] = {}
    # A skewed clock: version 3 with an older time than version 2's, and arriving first.
    publish_many(
        amqp_url,
        exchange,
        [
            as_published(events[3], events[2]["occurred_at"]),
            as_published(events[2], events[3]["occurred_at"]),
        ],
    )
    wait_until(lambda: applied(2, 3), timeout=60, interval=0.2, message="versions 2 and 3 applied")
    seen["skewed clock"] = shown(world, suite, customer.number)
    # One clock tick: versions 4 and 5 at the same time, the lower arriving first.
    tick = events[5]["occurred_at"]
    publish_many(amqp_url, exchange, [as_published(events[4], tick), as_published(events[5], tick)])
    wait_until(lambda: applied(4, 5), timeout=60, interval=0.2, message="versions 4 and 5 applied")
    seen["one clock tick"] = shown(world, suite, customer.number)

    suite.start_one("licensing-relay")  # the originals: known to the inboxes already
    settle(suite)
    held_versions = {}
    for replica, table in (("identity", "customer_profiles"), ("distribution", "customers")):
        with read_only_database(database_url(suite, replica)) as db:
            (held_versions[replica],) = db.execute(
                f"SELECT (to_jsonb(c) ->> 'source_version')::int FROM {table} c WHERE customer_number = %s",
                (customer.number,),
            ).fetchone()

    expected = {"skewed clock": states[3], "one clock tick": states[5]}
    lost = {
        f"{when} {replica}": f"shows {held} instead of {expected[when]}"
        for when, replicas in seen.items()
        for replica, held in replicas.items()
        if held != expected[when]
    }
    for version, carried in announced.items():
        if carried != version:
            lost[f"licensing.customer.updated #{version}"] = f"carries version {carried}"
    for replica, version in held_versions.items():
        if version != 5:
            lost[f"{replica} source_version"] = f"{version} instead of 5"
    result = Reconciliation("replicas ordered by version, not by clock")
    result.parts["customer changes out of clock order"] = {
        "acknowledged": len(states),
        "lost": len(lost),
        "duplicated": 0,
        "lost_detail": lost,
        "duplicated_detail": {},
    }
    result.parts["replicas vs their sources"] = replica_differences(suite)
    result.facts.update(
        versions_published={"skewed clock": [3, 2], "one clock tick": [4, 5]},
        dead_letters=dead_letters(suite),
    )
    result.publish(record_property, tmp_path)
    assert result.lost == 0, result.parts
    assert result.duplicated == 0, result.parts
    assert not any(result.facts["dead_letters"].values()), result.facts["dead_letters"]
    assert all(all_running(suite).values()), all_running(suite)
