"""Crashes do not spend a message's budget. A consumer that dies while it holds messages
gives them back to the broker, which counts one more delivery each time; a message returned
that way more often than the broker's old limit (20) was dead-lettered by the broker although
no handler ever failed on it. Now only the consumer's own count of handler failures
(`consumer_failures`, MAX_DELIVERY_ATTEMPTS) makes a message poison; the broker's limit is a
backstop far above it.

On the suite: distribution's consumer is stopped while partner sales arrive; a stand-in for a
consumer that crashes takes every message of its queue and dies without acking, more often
than the old limit; then the real consumer starts and applies each event once."""

from __future__ import annotations

import pika
import pytest

from shared.topology import BROKER_DELIVERY_LIMIT, Topology
from tests.fault.world import all_running, dead_letters, inbox_ids, outbox_events, settle
from tests.support import queue_depth, wait_until

CRASHES = 25  # more than the broker's old x-delivery-limit of 20


def crash_holding_everything(amqp_url: str, queue: str) -> int:
    """Take every ready message without acking, then drop the connection as a crash would."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    taken = 0
    while channel.basic_get(queue, auto_ack=False)[0] is not None:
        taken += 1
    connection.close()  # unacked: the broker returns them and counts a delivery for each
    return taken


@pytest.mark.fault
def test_messages_returned_by_crashes_more_often_than_the_old_limit_are_applied(suite, world):
    assert BROKER_DELIVERY_LIMIT > CRASHES
    topology = Topology(suite.namespace)
    amqp_url, queue = suite.env["AMQP_URL"], topology.queue("distribution")
    settle(suite)
    suite.stop("distribution-consumer")
    companies = [world.new_company(f"Pády {n}") for n in range(3)]
    for n, company in enumerate(companies):
        answer = world.partner_sale(f"crash-redeliveries-{n}", world.sale_body(company, f"PAD-{n}"))
        assert answer.status_code == 201, answer.text
    license_events = lambda: [  # noqa: E731
        e for e in outbox_events(suite, "licensing") if e["type"].startswith("licensing.license.") and e["published"]
    ]
    wait_until(lambda: len(license_events()) >= len(companies), timeout=30, message="the sales' events published")
    waiting = {e["id"] for e in license_events()} - inbox_ids(suite, "distribution")
    wait_until(lambda: queue_depth(amqp_url, queue) >= len(waiting), timeout=30, message="the events queued")

    held = [crash_holding_everything(amqp_url, queue) for _ in range(CRASHES)]
    assert min(held) >= len(waiting), f"every crash held the whole backlog: {held}"

    suite.processes.pop("distribution-consumer", None)
    suite.start_one("distribution-consumer")
    settle(suite)
    applied = inbox_ids(suite, "distribution")
    lost = sorted(waiting - applied)
    letters = {name: count for name, count in dead_letters(suite).items() if count}
    print(
        f"\nreconciled [crash redeliveries]: crashes={CRASHES} messages_returned_each_time={min(held)} "
        f"applied={len(waiting & applied)} lost={len(lost)} dead_lettered={sum(letters.values())}"
    )
    assert letters == {}, f"dead-lettered without any handler failure: {letters}"
    assert lost == [], f"events the broker gave up on: {lost}"
    assert all(all_running(suite).values())
