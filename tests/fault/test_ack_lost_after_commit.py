"""A consumer whose broker connection is lost between the commit and the ack: the message was
applied, so the lost ack is a reconnect, not a failure of the message. It is not logged as a
handler failure, not counted against the message's budget, and the redelivery after the
reconnect is recognised as a duplicate and acked.

Component level (identity's consumer, the real broker behind a TCP proxy, real PostgreSQL):
the link is cut exactly after the handler's transaction committed, which a real outage
cannot aim at."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from urllib.parse import urlsplit

import pika
import pytest
from identity.handlers import HANDLERS
from sqlalchemy import func, select

from shared import migrations
from shared.consumer import EventConsumer
from shared.db import Database
from shared.events import new_envelope
from shared.messaging import consumer_failures, inbox
from shared.topology import Topology
from tests.support import (
    Background,
    TcpProxy,
    envelope_json,
    publish_many,
    queue_depth,
    valid_company_id,
    wait_until,
)


def count(database: Database, table) -> int:
    with database.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(table))


@pytest.mark.fault
def test_an_ack_lost_after_the_commit_is_no_handler_failure(amqp_url, namespace, settings_for, new_database, caplog):
    url = new_database("identity")
    migrations.upgrade("identity", url)
    database = Database(url)
    parts = urlsplit(amqp_url)
    link = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672).start()
    settings = dataclasses.replace(settings_for("identity", url), amqp_url=link.url_for(amqp_url))
    consumer = EventConsumer(settings, HANDLERS, database)
    committed = threading.Event()
    handle = consumer.handle

    def handle_then_lose_the_broker(properties, body):
        handle(properties, body)  # applied and committed
        if not committed.is_set():
            committed.set()
            link.cut()
            time.sleep(0.3)  # the consumer's socket has seen the reset before it acks
            threading.Timer(1.0, link.restore).start()

    consumer.handle = handle_then_lose_the_broker
    consumer.max_batch = 1  # one delivery at a time: the one-by-one path, where the ack sat in the try
    event = new_envelope(
        "licensing.customer.created",
        {"customer_number": "100900", "company_id": valid_company_id(9_000_900), "company_name": "Potvrzení s.r.o."},
        "licensing",
        None,
    )
    topology = Topology(namespace)
    caplog.set_level(logging.INFO, logger="shared.consumer")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    topology.declare(connection.channel())
    connection.close()
    with Background(consumer):
        publish_many(amqp_url, topology.events_exchange, [(event["type"], envelope_json(event), event["id"])])
        wait_until(committed.is_set, timeout=20, message="the event is applied")
        # After the reconnect the redelivery is a duplicate, acked: the queue ends empty.
        wait_until(
            lambda: any("duplicate delivery ignored" in r.getMessage() for r in caplog.records),
            timeout=30,
            message="the redelivery after the reconnect is recognised as a duplicate",
        )
        wait_until(lambda: queue_depth(amqp_url, topology.queue("identity")) == 0, message="the redelivery is acked")
    link.stop()
    try:
        failures = [r.getMessage() for r in caplog.records if "handler failed" in r.getMessage()]
        assert failures == [], "a lost ack was logged as a failure of the message"
        assert count(database, consumer_failures) == 0, "a lost ack was counted against the message"
        assert count(database, inbox) == 1, "applied once"
        print("\nreconciled [ack lost after the commit]: applied=1 handler_failures=0 redelivered_as_duplicate=1")
    finally:
        database.dispose()
