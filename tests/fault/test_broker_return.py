"""RabbitMQ stopped for a few seconds, again and again, while a partner sells and a customer's
administrator changes the addresses: once the broker accepts connections again, the relays and
consumers are back on it within RESUME_LIMIT seconds, so the outage's writes are applied by the
consumers that soon (distribution's entitlement for the sale, licensing's and distribution's
copy of the addresses). Their back-off between connection tries is short and capped, with
jitter; a broker that stays away is still tried only about once a second by each."""

from __future__ import annotations

import statistics
import subprocess
import threading
import time

import pika
import pytest

from shared import amqp
from tests.fault.world import (
    AddressStream,
    SalesStream,
    all_running,
    database_url,
    dead_letters,
    reconcile_streams,
    settle,
)
from tests.support import read_only_database

OUTAGES = 5
OUTAGE = 3.0  # seconds the broker stays down once it is down
RESUME_LIMIT = 2.0  # seconds from the broker accepting connections until the outage's writes are applied


def _broker_accepts(url: str) -> bool:
    params = amqp.parameters(url, heartbeat=0)
    params.socket_timeout = params.stack_timeout = 1
    try:
        pika.BlockingConnection(params).close()
        return True
    except Exception:  # refused, or up but not taking connections yet
        return False


def _start_and_time_the_return(broker, url: str) -> float:
    """`rabbitmqctl start_app`, and the moment (monotonic) the broker took a connection again."""
    starting = subprocess.Popen(["rabbitmqctl", "start_app"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _broker_accepts(url):
            assert starting.poll() in (None, 0), "rabbitmqctl start_app failed"
            time.sleep(0.01)
        back = time.monotonic()
    finally:
        starting.wait(60)
    broker.start()  # already started: waits for the node's start-up to have finished, and notes it
    return back


def _applied(suite, installation_number: str, number: str, change) -> bool:
    """The sale's entitlement in distribution, the address change in distribution and licensing."""
    with read_only_database(database_url(suite, "distribution")) as db:
        entitled = db.execute("SELECT 1 FROM entitlements WHERE installation_number = %s", (installation_number,))
        if entitled.fetchone() is None:
            return False
        row = db.execute("SELECT delivery_address FROM customers WHERE customer_number = %s", (number,)).fetchone()
        if row is None or row[0] != change.delivery:
            return False
    with read_only_database(database_url(suite, "licensing")) as db:
        row = db.execute("SELECT billing_address FROM customers WHERE customer_number = %s", (number,)).fetchone()
        return row is not None and row[0] == change.billing


@pytest.mark.fault
def test_events_resume_within_2s_of_the_brokers_return(suite, world, broker, record_property, tmp_path):
    customer = world.customer_with_administrator("Návrat brokera")
    settle(suite)
    fault = threading.Event()
    # The streams' own steps, made one at a time (their threads are not started).
    sales = SalesStream(world, [(customer.company_id, customer.company_name), world.new_company("Návrat")], fault)
    addresses = AddressStream(world, customer, fault)
    url = suite.env["AMQP_URL"]
    resumed = []
    for _ in range(OUTAGES):
        broker.stop()
        fault.set()
        stopped_at = time.monotonic()
        sales.step()
        assert not sales.pending, f"a sale not acknowledged while the broker was down: {sales.failures}"
        assert addresses.change(), f"an address change not acknowledged while the broker was down: {addresses.failures}"
        sale, change = sales.sales[-1], addresses.acknowledged[-1]
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped_at)))
        assert not _applied(suite, sale.answer["installation_number"], customer.number, change)
        fault.clear()
        back = _start_and_time_the_return(broker, url)
        while not _applied(suite, sale.answer["installation_number"], customer.number, change):
            assert time.monotonic() - back < 60, "the outage's writes not applied 60s after the broker's return"
            time.sleep(0.02)
        resumed.append(time.monotonic() - back)

    figures = {
        "outages": len(resumed),
        "outage_seconds": OUTAGE,
        "resumed_seconds": [round(r, 2) for r in resumed],
        "min": round(min(resumed), 2),
        "median": round(statistics.median(resumed), 2),
        "max": round(max(resumed), 2),
    }
    print(
        f"\nresumed [broker back]: {len(resumed)} outages of {OUTAGE}s, the outage's writes applied "
        f"min={figures['min']}s median={figures['median']}s max={figures['max']}s after the broker's return "
        f"(each: {figures['resumed_seconds']})"
    )
    result = reconcile_streams(suite, world, "broker back, again and again", sales, [addresses])
    result.facts.update(resumption=figures, dead_letters=dead_letters(suite))
    result.publish(record_property, tmp_path)
    assert max(resumed) <= RESUME_LIMIT, figures
    assert result.lost == 0, result.parts
    assert result.duplicated == 0, result.parts
    assert not any(result.facts["dead_letters"].values()), result.facts["dead_letters"]
    assert all(all_running(suite).values()), all_running(suite)
