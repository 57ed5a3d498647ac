"""The work queues' `x-delivery-limit` is the broker's backstop, far above the consumer's own
count of handler failures. A queue made by an earlier version with another limit cannot be
changed by declaring it (the broker answers 406 and closes the channel): the declaration
leaves it as it is, says so, and everything else is still declared on a channel that works."""

from __future__ import annotations

import logging

import pika

from shared.config import Settings
from shared.topology import BROKER_DELIVERY_LIMIT, Topology


def test_the_broker_limit_sits_far_above_the_consumers_own():
    assert BROKER_DELIVERY_LIMIT >= 10 * Settings.max_delivery_attempts
    assert Topology().queue_arguments("distribution")["x-delivery-limit"] == BROKER_DELIVERY_LIMIT


def test_a_queue_made_with_the_old_limit_is_left_as_it_is(amqp_url, namespace, caplog):
    topology = Topology(namespace)
    queue = topology.queue("distribution")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        old = {**topology.queue_arguments("distribution"), "x-delivery-limit": 20}
        connection.channel().queue_declare(queue, durable=True, arguments=old)
        channel = connection.channel()
        caplog.set_level(logging.WARNING, logger="shared.topology")

        topology.declare(channel)

        assert channel.is_open
        assert any(queue in r.getMessage() and "keeps the delivery limit" in r.getMessage() for r in caplog.records)
        # Still bound and usable: an event published for distribution lands in it.
        channel.confirm_delivery()
        channel.basic_publish(topology.events_exchange, "licensing.license.issued", b"{}", mandatory=True)
        assert channel.queue_declare(queue, passive=True).method.message_count == 1
        for other in topology.work_queues():
            channel.queue_declare(other, passive=True)  # every other queue was declared
    finally:
        connection.close()
