"""A poison message: distribution's handler for license events fails for real (a migration
gone wrong renamed its `entitlements` table). Each license event is tried
`MAX_DELIVERY_ATTEMPTS` times and then lands in distribution's DLQ with the reason, while the
other events for distribution (memberships, contacts) keep flowing. Once the table is back,
the operators replay the dead letters (half through the gateway's `/api/v1/admin/dead-letters`,
half with `python -m ops.deadletters`) and each sale is applied once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ops.suite import ROOT
from shared.topology import Topology
from tests.fault.world import (
    AddressStream,
    Reconciliation,
    SalesStream,
    all_running,
    database_url,
    dead_letters,
    inbox_ids,
    outbox_events,
    reconcile_addresses,
    reconcile_sales,
    replica_differences,
    settle,
)
from tests.support import queue_depth, wait_until

SALES = 4


def alter(suite, statement: str) -> None:
    """A schema change in distribution's database, as a migration would make it."""
    url = make_url(database_url(suite, "distribution")).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as db:
        db.execute(statement)


def operators_tool(suite, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ops.deadletters", *args],
        env=suite.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.mark.fault
def test_a_poison_message_is_dead_lettered_the_rest_flows_and_the_replay_applies_it_once(
    suite, world, record_property, tmp_path
):
    amqp_url = suite.env["AMQP_URL"]
    attempts = int(suite.env.get("MAX_DELIVERY_ATTEMPTS") or 5)
    dlq = Topology(suite.namespace).dead_letter_queue("distribution")
    customer = world.customer_with_administrator("Jed v potrubí")
    settle(suite)
    issued_before = {e["id"] for e in outbox_events(suite, "licensing", "licensing.license.issued")}

    alter(suite, "ALTER TABLE entitlements RENAME TO entitlements_broken")
    no_fault = threading.Event()
    sales = SalesStream(world, [(customer.company_id, customer.company_name)], no_fault)
    for _ in range(SALES):
        sales.step()
    assert len(sales.acknowledged) == SALES, sales.failures
    poisoned = {e["id"] for e in outbox_events(suite, "licensing", "licensing.license.issued")} - issued_before
    assert len(poisoned) == SALES

    # Other events for distribution: memberships granted and changed, addresses changed.
    identity_before = {e["id"] for e in outbox_events(suite, "identity")}
    for n in range(2):
        invited = world.call(
            "POST",
            f"/api/v1/customers/{customer.number}/users",
            customer.admin,
            json={"email": f"jed-{n}-{customer.number}@example.com", "name": f"Kolega {n}", "rights": ["downloads"]},
        )
        assert invited.status_code == 201, invited.text
        changed = world.call(
            "PATCH",
            f"/api/v1/customers/{customer.number}/users/{invited.json()['id']}",
            customer.admin,
            json={"rights": ["downloads", "documents"]},
        )
        assert changed.status_code == 200, changed.text
    addresses = AddressStream(world, customer, no_fault)
    for _ in range(3):
        assert addresses.change(), addresses.failures
    flowing = {
        e["id"]
        for e in outbox_events(suite, "identity")
        if e["id"] not in identity_before
        and e["type"] in ("identity.membership.changed", "identity.customer.contact_changed")
    }

    wait_until(
        lambda: queue_depth(amqp_url, dlq) == SALES,
        timeout=180,
        interval=0.5,
        message=f"the {SALES} license events in {dlq}",
    )
    wait_until(
        lambda: flowing <= inbox_ids(suite, "distribution"),
        timeout=120,
        interval=0.5,
        message="memberships and contacts applied by distribution while the license events fail",
    )
    applied_while_broken = len(flowing & inbox_ids(suite, "distribution"))
    assert not poisoned & inbox_ids(suite, "distribution")
    letters = [json.loads(line) for line in operators_tool(suite, "list", "distribution").stdout.splitlines()]
    assert {letter["event_id"] for letter in letters} == poisoned
    for letter in letters:
        assert letter["event_type"] == "licensing.license.issued"
        assert f"failed {attempts} times" in letter["reason"], letter["reason"]
        assert "entitlements" in letter["reason"], letter["reason"]
    # listing leaves the dead letters where they are (its unacknowledged gets go back)
    wait_until(lambda: queue_depth(amqp_url, dlq) == SALES, timeout=60, message="the dead letters back in the DLQ")

    # The same through the gateway's API, as an operator's browser or script sees it.
    listed = world.staff_call("GET", "/api/v1/admin/dead-letters")["items"]
    assert {(x["consumer"], x["id"], x["replayable"]) for x in listed} == {
        ("distribution", event_id, True) for event_id in poisoned
    }
    wait_until(lambda: queue_depth(amqp_url, dlq) == SALES, timeout=60, message="the dead letters back in the DLQ")

    alter(suite, "ALTER TABLE entitlements_broken RENAME TO entitlements")  # the fix
    # Half replayed one by one over HTTP, the rest at once with the command-line tool.
    by_api = sorted(poisoned)[: SALES // 2]
    for event_id in by_api:
        answer = world.staff_call("POST", f"/api/v1/admin/dead-letters/{event_id}/replay")
        assert answer == {"id": event_id, "replayed_to": ["distribution"]}, answer
    replayed = operators_tool(suite, "replay", "distribution")
    assert f"replayed {SALES - len(by_api)} message(s)" in replayed.stderr, replayed.stderr

    settle(suite)
    result = Reconciliation("poison message, dead-lettered and replayed")
    result.parts["partner sales"] = reconcile_sales(world, sales.sales)
    result.parts["address changes"] = reconcile_addresses(world, [addresses])
    result.parts["replicas vs their sources"] = replica_differences(suite)
    result.facts.update(
        dead_lettered=len(letters),
        reasons=sorted({letter["reason"][:160] for letter in letters}),
        other_events_applied_while_broken=applied_while_broken,
        dead_letters_after_replay=dead_letters(suite),
    )
    result.publish(record_property, tmp_path)
    assert result.lost == 0, result.parts
    assert result.duplicated == 0, result.parts
    assert not any(result.facts["dead_letters_after_replay"].values()), result.facts["dead_letters_after_replay"]
    assert all(all_running(suite).values()), all_running(suite)
