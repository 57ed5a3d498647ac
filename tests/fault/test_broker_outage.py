"""RabbitMQ stopped and started while partners sell and customers change their addresses: the
HTTP API keeps accepting writes (the outbox holds the events), and once the broker is back
every acknowledged write reaches every consumer exactly once."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fault.world import (
    AddressStream,
    SalesStream,
    all_running,
    dead_letters,
    delivery_gaps,
    reconcile_streams,
    settle,
)
from tests.support import wait_until

MINIMUM_OUTAGE = 5.0  # seconds the broker stays down once it is down


@pytest.mark.fault
def test_broker_stopped_and_started_while_sales_and_address_changes_keep_coming(
    suite, world, broker, record_property, tmp_path
):
    administered = [world.customer_with_administrator(f"Výpadek brokera {n}") for n in range(2)]
    companies = [(c.company_id, c.company_name) for c in administered] + [
        world.new_company("Nový zákazník za výpadku") for _ in range(2)
    ]
    settle(suite)
    fault = threading.Event()
    sales = SalesStream(world, companies, fault)
    addresses = [AddressStream(world, customer, fault) for customer in administered]
    streams = [sales, *addresses]
    for stream in streams:
        stream.start()
    try:
        wait_until(
            lambda: len(sales.acknowledged) >= 5 and all(len(a.acknowledged) >= 2 for a in addresses),
            timeout=60,
            message="writes before the outage",
        )
        broker.stop()
        fault.set()
        stopped_at = time.monotonic()
        try:
            # The API takes writes while the broker is away: they wait in the outboxes.
            wait_until(
                lambda: (
                    sum(s.during_fault for s in sales.acknowledged) >= 10
                    and all(sum(c.during_fault for c in a.acknowledged) >= 3 for a in addresses)
                    and time.monotonic() - stopped_at >= MINIMUM_OUTAGE
                ),
                timeout=120,
                interval=0.1,
                message="writes acknowledged while the broker is down",
            )
            waiting = delivery_gaps(suite)
        finally:
            fault.clear()
            broker.start()
        outage = time.monotonic() - stopped_at
        acknowledged_before = len(sales.acknowledged)
        wait_until(lambda: len(sales.acknowledged) >= acknowledged_before + 5, timeout=60, message="writes after")
    finally:
        for stream in streams:
            stream.finish()
    for stream in streams:
        assert stream.errors == [], stream.errors

    result = reconcile_streams(suite, world, "broker stopped and started", sales, addresses)
    result.facts.update(
        outage_seconds=round(outage, 1),
        events_waiting_in_outboxes_during_outage=len(waiting["unsent"]),
        failed_attempts={s.name: dict(s.failures) for s in streams if s.failures},
        dead_letters=dead_letters(suite),
    )
    result.publish(record_property, tmp_path)
    assert result.parts["partner sales"]["acknowledged_during_fault"] >= 10
    assert result.parts["address changes"]["acknowledged_during_fault"] >= 3 * len(addresses)
    assert waiting["unsent"], "the events of the writes during the outage waited in the outboxes"
    assert result.lost == 0, result.parts
    assert result.duplicated == 0, result.parts
    assert not any(result.facts["dead_letters"].values()), result.facts["dead_letters"]
    assert all(all_running(suite).values()), all_running(suite)
