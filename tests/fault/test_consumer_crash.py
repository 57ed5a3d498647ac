"""A consumer killed (SIGKILL) while it works through a backlog, and started again as compose's
restart policy (or `make run`'s supervisor) would: what it had received but not acknowledged
is delivered again, and its inbox makes the second delivery harmless."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fault.world import (
    AddressStream,
    SalesStream,
    all_running,
    dead_letters,
    inbox_ids,
    reconcile_streams,
    settle,
)
from tests.support import wait_until

KILLS_PER_CONSUMER = 3


def restart(suite, name: str) -> None:
    """What ops.run.supervise does for a process that exited."""
    suite.restart(name)


def kill_mid_backlog(suite, name: str, service: str) -> dict:
    """Kill the consumer, let a backlog pile up, start it and kill it again as soon as it has
    applied the first events of that backlog (so it holds more, received and not acked)."""
    suite.kill(name)
    time.sleep(2.0)  # the streams keep writing: a backlog for the consumer
    restart(suite, name)
    before = len(inbox_ids(suite, service))
    wait_until(lambda: len(inbox_ids(suite, service)) > before, timeout=60, interval=0.01, message=f"{name} working")
    suite.kill(name)
    applied_before_kill = len(inbox_ids(suite, service)) - before
    time.sleep(0.5)
    restart(suite, name)
    return {"consumer": name, "applied_from_backlog_before_the_kill": applied_before_kill}


@pytest.mark.fault
def test_consumers_killed_mid_message_and_restarted_apply_everything_once(suite, world, record_property, tmp_path):
    administered = [world.customer_with_administrator(f"Pád konzumenta {n}") for n in range(2)]
    companies = [(c.company_id, c.company_name) for c in administered] + [world.new_company("Pád konzumenta nový")]
    settle(suite)
    fault = threading.Event()
    sales = SalesStream(world, companies, fault, pause=0.05)
    addresses = [AddressStream(world, customer, fault, pause=0.1) for customer in administered]
    streams = [sales, *addresses]
    kills = []
    for stream in streams:
        stream.start()
    try:
        wait_until(lambda: len(sales.acknowledged) >= 5, timeout=60, message="sales flowing")
        fault.set()
        for _ in range(KILLS_PER_CONSUMER):
            kills.append(kill_mid_backlog(suite, "distribution-consumer", "distribution"))
            kills.append(kill_mid_backlog(suite, "licensing-consumer", "licensing"))
        fault.clear()
    finally:
        for stream in streams:
            stream.finish()
    for stream in streams:
        assert stream.errors == [], stream.errors

    result = reconcile_streams(suite, world, "consumer killed mid-message", sales, addresses)
    result.facts.update(kills=kills, dead_letters=dead_letters(suite))
    result.publish(record_property, tmp_path)
    assert result.lost == 0, result.parts
    assert result.duplicated == 0, result.parts
    assert not any(result.facts["dead_letters"].values()), result.facts["dead_letters"]
    assert all(all_running(suite).values()), all_running(suite)
