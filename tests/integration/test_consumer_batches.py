"""The consumer applies what the broker has delivered together: one transaction, one commit,
one ack (`multiple`) for the lot. A message that fails in such a batch must not take its
batch-mates down with it: the batch is rolled back and applied one by one, so the others are
applied once and acked, and only the failing one is retried and dead-lettered.

The first tests drive `EventConsumer._on_deliveries` with a channel that records what the
consumer tells the broker (real PostgreSQL); the last one goes through the real broker."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pika
import pytest
from identity.handlers import HANDLERS as IDENTITY_HANDLERS
from identity.models import CustomerProfile
from sqlalchemy import event, select

from shared.consumer import EventConsumer
from shared.db import Database
from shared.events import new_envelope
from shared.messaging import inbox
from shared.topology import Topology
from tests.support import Background, drain, envelope_json, publish_many, queue_depth, valid_company_id, wait_until

ATTEMPTS = 3
POISONED_NAME = "Jed s.r.o."


class RecordingChannel:
    """What the consumer says to the broker, kept in order."""

    def __init__(self):
        self.said: list[tuple] = []

    def basic_ack(self, delivery_tag, multiple=False):
        self.said.append(("ack", delivery_tag, multiple))

    def basic_nack(self, delivery_tag, multiple=False, requeue=True):
        self.said.append(("nack", delivery_tag, requeue))

    def basic_publish(self, exchange, routing_key, body, properties, mandatory=False):
        self.said.append(("dead-letter", body, properties.headers["x-failure-reason"]))


def fragile(session, event):
    """identity's handler, except for one customer that cannot be stored."""
    if event.data["company_name"] == POISONED_NAME:
        raise ValueError("this customer cannot be stored")
    IDENTITY_HANDLERS["licensing.customer.created"](session, event)


@pytest.fixture
def consumer(settings_for, identity_db):
    consumer = EventConsumer(
        settings_for("identity", identity_db.url, max_delivery_attempts=ATTEMPTS),
        {"licensing.customer.created": fragile},
        identity_db,
    )
    consumer._connection = SimpleNamespace(sleep=lambda seconds: None)  # the pause before a redelivery
    return consumer


def customer_created(number: int, name: str | None = None) -> dict:
    data = {
        "customer_number": str(100700 + number),
        "company_id": valid_company_id(7_000_000 + number),
        "company_name": name or f"Dávka {number} s.r.o.",
    }
    return new_envelope("licensing.customer.created", data, "licensing", None)


def delivery(tag: int, envelope: dict | None, delivered_before: int = 0, body: bytes | None = None):
    """(method, properties, body) as pika's consume() yields them."""
    headers = {"x-delivery-count": delivered_before} if delivered_before else {}
    properties = pika.BasicProperties(message_id=envelope["id"] if envelope else None, headers=headers)
    method = SimpleNamespace(delivery_tag=tag, routing_key="licensing.customer.created")
    return method, properties, body if body is not None else envelope_json(envelope)


def applied(database: Database) -> list[str]:
    with database.unit_of_work() as session:
        return sorted(session.scalars(select(inbox.c.event_id)))


def profiles(database: Database) -> list[str]:
    with database.unit_of_work() as session:
        return sorted(session.scalars(select(CustomerProfile.customer_number)))


def commits(database: Database) -> list[int]:
    counted = [0]
    event.listen(database.engine, "commit", lambda _connection: counted.__setitem__(0, counted[0] + 1))
    return counted


def test_delivered_messages_are_applied_in_one_transaction_and_acked_at_once(consumer, identity_db):
    envelopes = [customer_created(n) for n in range(3)]
    channel, committed = RecordingChannel(), commits(identity_db)

    consumer._on_deliveries(channel, [delivery(tag, e) for tag, e in enumerate(envelopes, start=1)])

    assert committed[0] == 1
    assert channel.said == [("ack", 3, True)]
    assert applied(identity_db) == sorted(e["id"] for e in envelopes)
    assert profiles(identity_db) == ["100700", "100701", "100702"]


def test_a_failing_message_leaves_its_batch_mates_applied_once_and_is_retried_alone(consumer, identity_db):
    first, poison, last = customer_created(1), customer_created(2, POISONED_NAME), customer_created(3)
    channel = RecordingChannel()

    # The first delivery of the poison: the batch falls apart, the poison goes back to the queue.
    consumer._on_deliveries(channel, [delivery(1, first), delivery(2, poison), delivery(3, last)])

    assert channel.said == [("ack", 1, False), ("nack", 2, True), ("ack", 3, False)]
    assert applied(identity_db) == sorted([first["id"], last["id"]])
    assert profiles(identity_db) == ["100701", "100703"]

    # Failures between its first and its last one, alone.
    for tag in range(10, 10 + ATTEMPTS - 2):
        channel = RecordingChannel()
        consumer._on_deliveries(channel, [delivery(tag, poison, delivered_before=tag)])
        assert channel.said == [("nack", tag, True)]

    # Its last attempt, redelivered among new messages and a redelivery of one applied already.
    channel = RecordingChannel()
    newer = customer_created(4)
    consumer._on_deliveries(
        channel, [delivery(4, poison, delivered_before=ATTEMPTS - 1), delivery(5, newer), delivery(6, first, 1)]
    )

    dead_letter, *rest = channel.said
    assert dead_letter[:2] == ("dead-letter", envelope_json(poison))
    assert f"failed {ATTEMPTS} times" in dead_letter[2] and "cannot be stored" in dead_letter[2]
    assert rest == [("ack", 4, False), ("ack", 5, False), ("ack", 6, False)]  # the poison's after its copy
    assert applied(identity_db) == sorted([first["id"], last["id"], newer["id"]])
    assert profiles(identity_db) == ["100701", "100703", "100704"]


def test_deliveries_the_broker_counted_are_no_failures_of_the_handler(consumer, identity_db):
    """A message redelivered many times after consumer crashes has its whole budget: only the
    handler's own failures count (`consumer_failures`), not the broker's x-delivery-count."""
    poison = customer_created(7, POISONED_NAME)
    channel = RecordingChannel()

    consumer._on_deliveries(channel, [delivery(7, poison, delivered_before=40)])

    assert channel.said == [("nack", 7, True)]  # retried, not dead-lettered on its first failure


def test_a_malformed_message_in_a_batch_is_dead_lettered_and_the_others_applied(consumer, identity_db):
    before, after = customer_created(5), customer_created(6)
    channel = RecordingChannel()
    malformed = delivery(2, None, body=b"{not json")

    consumer._on_deliveries(channel, [delivery(1, before), malformed, delivery(3, after)])

    assert channel.said[0] == ("ack", 1, False)
    assert channel.said[1][:2] == ("dead-letter", b"{not json") and channel.said[1][2].startswith("invalid message")
    assert channel.said[2:] == [("ack", 2, False), ("ack", 3, False)]
    assert applied(identity_db) == sorted([before["id"], after["id"]])


def test_the_same_event_twice_in_one_batch_is_applied_once(consumer, identity_db):
    envelope = customer_created(7)
    channel, committed = RecordingChannel(), commits(identity_db)

    consumer._on_deliveries(channel, [delivery(1, envelope), delivery(2, envelope)])

    assert committed[0] == 1 and channel.said == [("ack", 2, True)]
    assert applied(identity_db) == [envelope["id"]]


def test_a_backlog_with_a_poison_in_the_middle_through_the_broker(amqp_url, namespace, settings_for, identity_db):
    """Queued before the consumer starts, so the broker hands it over in batches."""
    topology = Topology(namespace)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    topology.declare(connection.channel())
    connection.close()
    healthy = [customer_created(10 + n) for n in range(12)]
    poison = customer_created(30, POISONED_NAME)
    backlog = [*healthy[:6], poison, *healthy[6:], healthy[0]]  # and one event published twice
    publish_many(amqp_url, topology.events_exchange, [(e["type"], envelope_json(e), e["id"]) for e in backlog])
    consumer = EventConsumer(
        settings_for("identity", identity_db.url, max_delivery_attempts=ATTEMPTS),
        {"licensing.customer.created": fragile},
        identity_db,
    )
    with Background(consumer):
        wait_until(
            lambda: queue_depth(amqp_url, topology.dead_letter_queue("identity")) == 1, timeout=60, message="the DLQ"
        )
        wait_until(lambda: len(applied(identity_db)) == len(healthy), message="the healthy events applied")
        wait_until(lambda: queue_depth(amqp_url, topology.queue("identity")) == 0, message="the queue drained")
    [(headers, body)] = drain(amqp_url, topology.dead_letter_queue("identity"))
    assert json.loads(body)["id"] == poison["id"]
    assert f"failed {ATTEMPTS} times" in headers["x-failure-reason"]
    assert applied(identity_db) == sorted(e["id"] for e in healthy)
    assert profiles(identity_db) == sorted(e["data"]["customer_number"] for e in healthy)
