"""Licensing's database unreachable for a while (its connection cut at a TCP proxy: open
connections dropped, new ones refused): licensing's routes answer 503 problem+json with
Retry-After and acknowledge nothing, its consumer holds the events it cannot apply (neither
acked nor dead-lettered), the other services keep working; once the database is back, its
web workers, relay and consumer carry on by themselves, without a restart, and the state
reconciles."""

from __future__ import annotations

import threading
import time

import pytest

from shared.topology import Topology
from tests.fault.world import (
    AddressStream,
    SalesStream,
    all_running,
    database_url,
    dead_letters,
    reconcile_streams,
    settle,
)
from tests.support import queue_depth, queue_message_counts, read_only_database, wait_until

MINIMUM_OUTAGE = 8.0  # seconds: long enough for the relay's and the consumer's back-off to grow
LICENSING = ("licensing", "licensing-relay", "licensing-consumer", "licensing-partner-inbox")


def contacts_version(suite, service: str, customer_number: str) -> int:
    with read_only_database(database_url(suite, service)) as db:
        row = db.execute("SELECT contacts_version FROM customers WHERE customer_number = %s", (customer_number,))
        return (row.fetchone() or (0,))[0]


def identity_contacts_version(suite, customer_number: str) -> int:
    with read_only_database(database_url(suite, "identity")) as db:
        return db.execute(
            "SELECT contacts_version FROM customer_profiles WHERE customer_number = %s", (customer_number,)
        ).fetchone()[0]


def assert_unavailable(answer) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.json()["status"] == 503


@pytest.mark.fault
def test_licensing_database_unreachable_for_a_while(suite, world, record_property, tmp_path):
    link = suite.licensing_link
    topology = Topology(suite.namespace)
    licensing_queue = topology.queue("licensing")
    administered = [world.customer_with_administrator(f"Výpadek databáze {n}") for n in range(2)]
    companies = [(c.company_id, c.company_name) for c in administered] + [world.new_company("Výpadek databáze nový")]
    settle(suite)
    pids = {name: suite.processes[name].popen.pid for name in LICENSING}
    fault = threading.Event()
    sales = SalesStream(world, companies, fault, pause=0.1)
    addresses = [AddressStream(world, customer, fault, pause=0.2) for customer in administered]
    streams = [sales, *addresses]
    facts: dict[str, object] = {}
    for stream in streams:
        stream.start()
    try:
        wait_until(lambda: len(sales.acknowledged) >= 5, timeout=60, message="sales before the outage")
        acknowledged_before = {s.body["partner_sale_id"] for s in sales.acknowledged}
        link.cut()
        fault.set()
        cut_at = time.monotonic()
        try:
            # licensing's own routes: 503 problem+json with Retry-After, through the gateway
            first = administered[0]
            assert_unavailable(world.call("GET", f"/api/v1/admin/licenses?customer_number={first.number}", world.staff))
            assert_unavailable(world.call("GET", f"/api/v1/customers/{first.number}/licenses", first.admin))
            sale = world.sale_body(companies[0], "fault-during-db-outage")
            assert_unavailable(world.partner_sale("fault-during-db-outage", sale))
            # the other services keep working, and distribution keeps applying identity's events
            assert world.call("GET", "/api/v1/me", world.staff).status_code == 200
            assert world.call("GET", f"/api/v1/customers/{first.number}/profile", first.admin).status_code == 200
            assert world.call("GET", "/api/v1/news", world.staff).status_code == 200
            changes_before = {a.customer.number: len(a.acknowledged) for a in addresses}
            versions_at_cut = {c.number: identity_contacts_version(suite, c.number) for c in administered}
            wait_until(
                lambda: all(len(a.acknowledged) >= changes_before[a.customer.number] + 5 for a in addresses),
                timeout=90,
                message="address changes acknowledged by identity while licensing's database is away",
            )
            wait_until(
                lambda: all(
                    contacts_version(suite, "distribution", c.number) >= versions_at_cut[c.number] + 5
                    for c in administered
                ),
                timeout=90,
                interval=0.2,
                message="distribution following identity during licensing's outage",
            )
            # licensing's consumer holds what it cannot apply: not acked, not dead-lettered
            held = wait_until(
                lambda: (lambda ready, unacked: ready + unacked if unacked else 0)(
                    *queue_message_counts(licensing_queue)
                ),
                timeout=60,
                interval=0.5,
                message="the licensing consumer holding messages",
            )
            facts["licensing_messages_held"] = held
            facts["licensing_versions_during_outage"] = [
                contacts_version_or_none(suite, customer.number) for customer in administered
            ]
            remaining = MINIMUM_OUTAGE - (time.monotonic() - cut_at)
            if remaining > 0:
                time.sleep(remaining)
            facts["licensing_dead_letters_during_outage"] = queue_depth(
                suite.env["AMQP_URL"], topology.dead_letter_queue("licensing")
            )
            facts["sales_acknowledged_during_outage"] = sum(s.during_fault for s in sales.acknowledged)
            assert facts["licensing_dead_letters_during_outage"] == 0
        finally:
            fault.clear()
            link.restore()
        facts["outage_seconds"] = round(time.monotonic() - cut_at, 1)
        wait_until(
            lambda: len({s.body["partner_sale_id"] for s in sales.acknowledged} - acknowledged_before) >= 10,
            timeout=120,
            message="sales acknowledged again once the database is back",
        )
    finally:
        for stream in streams:
            stream.finish()
    for stream in streams:
        assert stream.errors == [], stream.errors
    refused = [answer for answer in sales.problems if answer.status_code == 503]
    facts["sale_attempts_refused_with_503"] = len(refused)
    for answer in refused:
        assert_unavailable(answer)

    # licensing's relay and consumer came back by themselves: everything is applied
    result = reconcile_streams(suite, world, "licensing database unreachable", sales, addresses)
    facts["dead_letters"] = dead_letters(suite)
    facts["database_connections_through_the_proxy"] = link.connections
    result.facts.update(facts)
    result.publish(record_property, tmp_path)
    assert facts["sales_acknowledged_during_outage"] == 0, "licensing acknowledged a sale it could not store"
    assert refused, "sales were refused while the database was away"
    assert result.lost == 0, result.parts
    assert result.duplicated == 0, result.parts
    assert not any(facts["dead_letters"].values()), facts["dead_letters"]
    assert all(all_running(suite).values()), all_running(suite)
    assert {name: suite.processes[name].popen.pid for name in LICENSING} == pids, "nothing was restarted"


def contacts_version_or_none(suite, customer_number: str) -> int | None:
    try:
        return contacts_version(suite, "licensing", customer_number)
    except Exception:  # noqa: BLE001 - only a fact for the report
        return None
