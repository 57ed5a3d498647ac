"""A relay that loses the broker in the middle of a batch keeps what the broker confirmed:
those rows are marked sent (and not published again), the rest wait for the next pass.
Component level (one relay, the real broker and PostgreSQL): the moment of the loss is
chosen exactly, which a real outage cannot do."""

from __future__ import annotations

import json

import pika.exceptions
import pytest
from licensing.customers import create_customer
from sqlalchemy import func, select

from shared import migrations
from shared.db import Database
from shared.messaging import outbox
from shared.relay import OutboxRelay
from shared.topology import Topology
from tests.support import drain, valid_company_id

EVENTS = 5
LOST_AT = 3  # the third publish finds the connection gone


def unsent(database: Database) -> int:
    with database.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))


@pytest.mark.fault
def test_a_relay_losing_the_broker_mid_batch_marks_what_was_confirmed(amqp_url, namespace, settings_for, new_database):
    url = new_database("licensing")
    migrations.upgrade("licensing", url)
    database = Database(url)
    with database.unit_of_work() as session:
        for n in range(EVENTS):
            create_customer(session, valid_company_id(6_100_000 + n), f"Dávka {n} s.r.o.", None)
    relay = OutboxRelay(settings_for("licensing", url), database)
    channel = relay._open_channel()
    publish, calls = channel.basic_publish, []

    def publish_until_the_connection_is_lost(**kwargs):
        calls.append(kwargs["properties"].message_id)
        if len(calls) == LOST_AT:
            raise pika.exceptions.StreamLostError("Transport indicated EOF")
        return publish(**kwargs)  # confirmed by the real broker

    channel.basic_publish = publish_until_the_connection_is_lost
    try:
        with pytest.raises(pika.exceptions.StreamLostError):
            relay.publish_pending()
        assert unsent(database) == EVENTS - (LOST_AT - 1), "the confirmed events are marked sent"
        assert relay.publish_pending() == EVENTS - (LOST_AT - 1)  # a new connection, the rest
        assert unsent(database) == 0
    finally:
        relay._close_broker()
        database.dispose()
    published = [json.loads(body)["id"] for _, body in drain(amqp_url, Topology(namespace).queue("identity"))]
    assert len(published) == EVENTS and len(set(published)) == EVENTS, "each event published once"
