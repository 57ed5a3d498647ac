"""The event backbone with the real RabbitMQ and PostgreSQL: outbox -> relay -> broker ->
idempotent consumer, and what happens when things go wrong."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from identity.handlers import HANDLERS as IDENTITY_HANDLERS
from identity.models import CustomerProfile
from licensing.customers import create_customer
from sqlalchemy import func, select

from shared.consumer import EventConsumer
from shared.db import Database
from shared.events import new_envelope
from shared.messaging import inbox, outbox
from shared.relay import OutboxRelay
from shared.topology import Topology
from tests.support import (
    Background,
    BrokerControl,
    drain,
    envelope_json,
    publish_raw,
    queue_depth,
    valid_company_id,
    wait_until,
)

ADDRESS = {"street": "Dlouhá 12", "city": "Praha", "postal_code": "11000", "country": "CZ"}
# Valid company IDs (mod-11 check digit) for the customers these tests create.
COMPANY_IDS = ["25083325", "27082440", "45274649", "00006947", "26185610", "47114983"]


@pytest.fixture
def relay(settings_for, licensing_db):
    return OutboxRelay(settings_for("licensing", licensing_db.url), licensing_db)


@pytest.fixture
def identity_consumer(settings_for, identity_db):
    return EventConsumer(
        settings_for("identity", identity_db.url, max_delivery_attempts=3), IDENTITY_HANDLERS, identity_db
    )


def sell(licensing_db: Database, company_id: str, name: str = "Účetní kancelář s.r.o.") -> str:
    with licensing_db.unit_of_work() as session:
        return create_customer(session, company_id, name, ADDRESS).customer_number


def profile(identity_db: Database, customer_number: str) -> CustomerProfile | None:
    with identity_db.unit_of_work() as session:
        return session.get(CustomerProfile, customer_number)


def customer_event(customer_number: str, company_id: str, company_name: str) -> dict:
    data = {"customer_number": customer_number, "company_id": company_id, "company_name": company_name}
    return new_envelope("licensing.customer.created", data, "licensing", None)


def publish(amqp_url: str, topology: Topology, envelope: dict) -> None:
    publish_raw(amqp_url, topology.events_exchange, envelope["type"], envelope_json(envelope), envelope["id"])


def unsent(database: Database) -> int:
    with database.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))


def test_event_committed_with_the_change_reaches_the_consumer(relay, identity_consumer, licensing_db, identity_db):
    with Background(relay), Background(identity_consumer):
        number = sell(licensing_db, COMPANY_IDS[0])
        wait_until(lambda: profile(identity_db, number), message="the customer profile in identity")
    got = profile(identity_db, number)
    assert (got.company_id, got.company_name) == (COMPANY_IDS[0], "Účetní kancelář s.r.o.")
    assert unsent(licensing_db) == 0


def test_a_rolled_back_change_publishes_nothing(relay, licensing_db):
    with pytest.raises(RuntimeError):
        with licensing_db.unit_of_work() as session:
            create_customer(session, COMPANY_IDS[1], "Nikdy s.r.o.", ADDRESS)
            raise RuntimeError("the business transaction fails after writing its event")
    with licensing_db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(outbox)) == 0


@pytest.mark.fault
def test_event_committed_while_the_broker_is_stopped_is_delivered_when_it_is_back(
    amqp_url, relay, identity_consumer, licensing_db, identity_db
):
    broker = BrokerControl(amqp_url)
    with Background(relay), Background(identity_consumer):
        first = sell(licensing_db, COMPANY_IDS[0])
        wait_until(lambda: profile(identity_db, first), message="delivery before the outage")
        broker.stop()
        try:
            second = sell(licensing_db, COMPANY_IDS[1], "Za výpadku s.r.o.")  # the user is told "done" here
            threading.Event().wait(1.0)
            assert unsent(licensing_db) == 1, "nothing can be confirmed while the broker is down"
        finally:
            broker.start()
        wait_until(lambda: profile(identity_db, second), timeout=60, message="delivery after the broker came back")
    assert unsent(licensing_db) == 0


def test_a_duplicate_delivery_has_no_second_effect(amqp_url, namespace, settings_for, identity_db):
    applied: list[str] = []

    def count(session, event):  # a deliberately non-idempotent effect
        applied.append(event.id)
        IDENTITY_HANDLERS["licensing.customer.created"](session, event)

    consumer = EventConsumer(
        settings_for("identity", identity_db.url), {"licensing.customer.created": count}, identity_db
    )
    envelope = customer_event("100777", COMPANY_IDS[2], "Dvakrát a.s.")
    topology = Topology(namespace)
    with Background(consumer):
        wait_until(lambda: _queue_exists(amqp_url, topology.queue("identity")))
        for _ in range(2):  # the same event, twice, as a relay that crashed before marking would send it
            publish(amqp_url, topology, envelope)
        wait_until(lambda: queue_depth(amqp_url, topology.queue("identity")) == 0 and applied)
        threading.Event().wait(0.5)
    assert applied == [envelope["id"]]
    with identity_db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(inbox)) == 1
        assert session.scalar(select(func.count()).select_from(CustomerProfile)) == 1


def test_events_out_of_order_keep_the_newest_state(identity_db, settings_for):
    consumer = EventConsumer(settings_for("identity", identity_db.url), IDENTITY_HANDLERS, identity_db)
    older = customer_event("100888", COMPANY_IDS[3], "Staré jméno")
    newer = dict(older, id=str(uuid.uuid4()), data=dict(older["data"], company_name="Nové jméno"))
    newer["occurred_at"] = _later(older["occurred_at"])
    for envelope in (newer, older):  # swapped
        consumer.apply(envelope_json(envelope))
    assert profile(identity_db, "100888").company_name == "Nové jméno"


def _later(iso: str) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(iso) + timedelta(seconds=1)).isoformat()


def test_a_message_that_always_fails_ends_in_the_dlq_and_the_next_still_flows(
    amqp_url, namespace, settings_for, identity_db
):
    def fragile(session, event):
        if event.data["company_name"] == "Jed s.r.o.":
            raise ValueError("this customer cannot be stored")
        IDENTITY_HANDLERS["licensing.customer.created"](session, event)

    consumer = EventConsumer(
        settings_for("identity", identity_db.url, max_delivery_attempts=3),
        {"licensing.customer.created": fragile},
        identity_db,
    )
    topology = Topology(namespace)
    poison = customer_event("100901", COMPANY_IDS[4], "Jed s.r.o.")
    healthy = customer_event("100902", COMPANY_IDS[5], "Zdravá a.s.")
    with Background(consumer):
        wait_until(lambda: _queue_exists(amqp_url, topology.queue("identity")))
        publish(amqp_url, topology, poison)
        publish(amqp_url, topology, healthy)
        wait_until(lambda: profile(identity_db, "100902"), message="the healthy message after the poison")
        wait_until(
            lambda: queue_depth(amqp_url, topology.dead_letter_queue("identity")) == 1, timeout=60, message="the DLQ"
        )
    dead = drain(amqp_url, topology.dead_letter_queue("identity"))
    headers, body = dead[0]
    assert json.loads(body)["id"] == poison["id"]
    assert "failed 3 times" in headers["x-failure-reason"] and "cannot be stored" in headers["x-failure-reason"]
    assert headers["x-original-routing-key"] == "licensing.customer.created"
    assert profile(identity_db, "100901") is None
    assert queue_depth(amqp_url, topology.queue("identity")) == 0


def test_a_malformed_message_goes_to_the_dlq_at_once(amqp_url, namespace, settings_for, identity_db):
    consumer = EventConsumer(settings_for("identity", identity_db.url), IDENTITY_HANDLERS, identity_db)
    topology = Topology(namespace)
    with Background(consumer):
        # The DLQ is declared after its queue: wait for it, or the copy would find no queue.
        wait_until(lambda: _queue_exists(amqp_url, topology.dead_letter_queue("identity")))
        publish_raw(amqp_url, topology.events_exchange, "licensing.customer.created", b"{not json")
        wait_until(lambda: queue_depth(amqp_url, topology.dead_letter_queue("identity")) == 1)
    [(headers, body)] = drain(amqp_url, topology.dead_letter_queue("identity"))
    assert body == b"{not json" and headers["x-failure-reason"].startswith("invalid message")


def test_two_relays_on_postgres_publish_each_event_once(amqp_url, namespace, settings_for, licensing_db):
    """SKIP LOCKED: relays running side by side never publish the same rows at once."""
    topology = Topology(namespace)
    relays = [OutboxRelay(settings_for("licensing", licensing_db.url), licensing_db, batch_size=20) for _ in range(2)]
    with Background(relays[0]), Background(relays[1]):
        wait_until(lambda: _queue_exists(amqp_url, topology.queue("identity")))
        with licensing_db.unit_of_work() as session:
            for number in range(300):
                company_id = valid_company_id(1000000 + number)
                create_customer(session, company_id, f"Firma {number}", ADDRESS)
        wait_until(lambda: unsent(licensing_db) == 0, timeout=60)
    ids = [json.loads(body)["id"] for _, body in drain(amqp_url, topology.queue("identity"))]
    assert len(ids) == 300 and len(set(ids)) == 300


def _queue_exists(amqp_url: str, queue: str) -> bool:
    try:
        queue_depth(amqp_url, queue)
        return True
    except Exception:
        return False


def test_operators_list_and_replay_a_dead_letter_after_the_fix(amqp_url, namespace, settings_for, identity_db):
    from shared.dead_letters import DeadLetters

    fixed = threading.Event()

    def handler(session, event):
        if not fixed.is_set():
            raise ValueError("bug: cannot store this customer yet")
        IDENTITY_HANDLERS["licensing.customer.created"](session, event)

    consumer = EventConsumer(
        settings_for("identity", identity_db.url, max_delivery_attempts=2),
        {"licensing.customer.created": handler},
        identity_db,
    )
    topology = Topology(namespace)
    envelope = customer_event("100950", COMPANY_IDS[0], "Oprava s.r.o.")
    operators = DeadLetters(amqp_url, namespace)
    with Background(consumer):
        wait_until(lambda: _queue_exists(amqp_url, topology.queue("identity")))
        publish(amqp_url, topology, envelope)
        wait_until(lambda: operators.list("identity"), message="the dead letter")
        [letter] = operators.list("identity")  # listing leaves it where it is
        assert letter.event_id == envelope["id"] and "cannot store" in letter.reason
        fixed.set()
        assert operators.replay("identity") == 1
        wait_until(lambda: profile(identity_db, "100950"), message="the replayed event applied")
    assert operators.list("identity") == []
