"""Partners publishing sales over RabbitMQ (`licensing.partner_inbox`), with the real broker,
real per-test broker users (made with rabbitmqctl, as the README tells operators) and
PostgreSQL: the broker vouches for the sender, each message becomes a sale once, and a bad
one goes to the DLQ with its reason and a `licensing.partner_sale.rejected` event."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import uuid
from datetime import date
from pathlib import Path
from urllib.parse import quote, urlsplit

import pika
import pika.exceptions
import pytest
from licensing.models import IdempotentRequest, License, Product
from licensing.partner_inbox import CONSUMER, PartnerInbox
from licensing.partners import create_partner
from sqlalchemy import select

from shared.consumer import Poison
from shared.db import Database
from shared.messaging import outbox
from shared.topology import Topology
from tests.integration.conftest import migrated
from tests.support import Background, drain, queue_depth, wait_until

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = {"street": "Dlouhá 1", "city": "Praha", "postal_code": "11000"}
PRODUCT = {"code": "ucetnictvi", "name": "Účetní systém", "editions": ["Mini", "Jazz"], "add_ons": ["kasa"]}
ACCESS_REFUSED, PRECONDITION_FAILED = 403, 406


def sale(partner_sale_id: str = "S-1", company_id: str = "27082440", **changes) -> dict:
    return {
        "partner_sale_id": partner_sale_id,
        "customer": {"company_id": company_id, "company_name": "Stavebniny Morava a.s.", "billing_address": ADDRESS},
        "product": "ucetnictvi",
        "edition": "Jazz",
        "add_ons": ["kasa"],
        "seats": 3,
        "sold_on": date.today().isoformat(),
        **changes,
    }


def body_of(value) -> bytes:
    return json.dumps(value).encode()


# --- fixtures -------------------------------------------------------------------------------
@pytest.fixture
def licensing_db(new_database):
    database = migrated(new_database, "licensing")
    with database.unit_of_work() as session:
        session.add(Product(**PRODUCT))
    yield database
    database.dispose()


@pytest.fixture
def topology(namespace) -> Topology:
    return Topology(namespace)


class BrokerUser:
    """A partner's broker account, made as the README tells operators to make one."""

    def __init__(self, amqp_url: str, name: str, password: str):
        self.name, self.password = name, password
        parts = urlsplit(amqp_url)
        vhost = parts.path[1:] or "%2F"
        credentials = f"{quote(name, safe='')}:{quote(password, safe='')}"
        self.url = f"amqp://{credentials}@{parts.hostname}:{parts.port or 5672}/{vhost}"

    def publish(self, exchange: str, body: bytes, *, message_id: str | None, user_id: str | None = "self") -> None:
        """Publish as this user, with confirms; raises what the broker answers."""
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish(
                exchange,
                "",
                body,
                pika.BasicProperties(
                    message_id=message_id,
                    user_id=self.name if user_id == "self" else user_id,
                    content_type="application/json",
                    delivery_mode=pika.DeliveryMode.Persistent,
                ),
                mandatory=True,
            )
        finally:
            if connection.is_open:
                connection.close()


@pytest.fixture
def broker_users(amqp_url, topology):
    """Factory: a broker user that may write to this test's partner exchange and nothing else."""
    if shutil.which("rabbitmqctl") is None or urlsplit(amqp_url).hostname not in ("localhost", "127.0.0.1"):
        pytest.skip("needs rabbitmqctl for the local broker to make partners' broker users")
    vhost = urlsplit(amqp_url).path[1:].replace("%2F", "/") or "/"
    made: list[str] = []

    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    def make() -> BrokerUser:
        user = BrokerUser(amqp_url, f"partner-{secrets.token_hex(4)}", secrets.token_urlsafe(16))
        # "--": a random password may begin with "-", which rabbitmqctl would take for an option
        ctl("add_user", "--", user.name, user.password)
        made.append(user.name)
        write = f"^{re.escape(topology.partner_sales_exchange)}$"
        ctl("set_permissions", "-p", vhost, user.name, "^$", write, "^$")
        return user

    yield make
    for name in made:
        subprocess.run(["rabbitmqctl", "-q", "delete_user", name], capture_output=True, timeout=60)


@pytest.fixture
def register(licensing_db):
    """Factory: the partner a broker user publishes for (what POST /api/v1/admin/partners does)."""

    def make(user: BrokerUser, name: str = "Softwarový dům s.r.o.") -> str:
        with licensing_db.unit_of_work() as session:
            partner, _api_key = create_partner(session, name, user.name)
            return partner.id

    return make


@pytest.fixture
def inbox(settings_for, licensing_db, amqp_url, topology):
    worker = PartnerInbox(settings_for("licensing", licensing_db.url), licensing_db)
    with Background(worker):
        wait_until(lambda: _queue_exists(amqp_url, topology.partner_sales_queue), message="the topology")
        yield worker


# --- helpers --------------------------------------------------------------------------------
def _queue_exists(amqp_url: str, queue: str) -> bool:
    try:
        queue_depth(amqp_url, queue)
        return True
    except Exception:
        return False


def licenses(database: Database) -> list[License]:
    with database.unit_of_work() as session:
        return session.scalars(select(License).order_by(License.id)).all()


def events(database: Database, type_: str) -> list[dict]:
    with database.unit_of_work() as session:
        rows = session.execute(select(outbox.c.body).where(outbox.c.routing_key == type_).order_by(outbox.c.id)).all()
    return [json.loads(row.body)["data"] for row in rows]


def dlq(topology: Topology) -> str:
    return topology.dead_letter_queue_of(topology.partner_sales_queue)


def settled(amqp_url: str, topology: Topology) -> bool:
    return queue_depth(amqp_url, topology.partner_sales_queue) == 0


# --- the tests ------------------------------------------------------------------------------
def test_a_partners_message_becomes_one_unregistered_license(
    amqp_url, topology, broker_users, register, inbox, licensing_db
):
    user = broker_users()
    partner_id = register(user)
    message_id = str(uuid.uuid4())
    user.publish(topology.partner_sales_exchange, body_of(sale()), message_id=message_id)
    wait_until(lambda: licenses(licensing_db), message="the license")

    [license_] = licenses(licensing_db)
    assert (license_.status, license_.channel, license_.partner_id) == ("unregistered", "partner", partner_id)
    assert (license_.partner_sale_id, license_.edition, license_.seats) == ("S-1", "Jazz", 3)
    [issued] = events(licensing_db, "licensing.license.issued")
    assert issued["installation_number"] == license_.installation_number and issued["status"] == "unregistered"
    with licensing_db.unit_of_work() as session:
        record = session.get(IdempotentRequest, (partner_id, "amqp", message_id))
        assert record.status == 201 and json.loads(record.response)["status"] == "unregistered"
    assert queue_depth(amqp_url, dlq(topology)) == 0
    assert events(licensing_db, "licensing.partner_sale.rejected") == []


def test_the_same_message_twice_makes_one_license(amqp_url, topology, broker_users, register, inbox, licensing_db):
    user = broker_users()
    register(user)
    message_id = str(uuid.uuid4())
    for _ in range(2):  # as a partner whose confirm got lost would publish it again
        user.publish(topology.partner_sales_exchange, body_of(sale("S-2")), message_id=message_id)
    # The same sale under a new message id is still the same sale (partner_sale_id).
    user.publish(topology.partner_sales_exchange, body_of(sale("S-2")), message_id=str(uuid.uuid4()))
    # A sync point: a later, different sale is recorded only after the ones before it.
    user.publish(topology.partner_sales_exchange, body_of(sale("S-3")), message_id=str(uuid.uuid4()))
    wait_until(lambda: len(licenses(licensing_db)) == 2 and settled(amqp_url, topology), message="both sales")
    threading.Event().wait(0.3)

    assert sorted(license_.partner_sale_id for license_ in licenses(licensing_db)) == ["S-2", "S-3"]
    assert len(events(licensing_db, "licensing.license.issued")) == 2
    assert queue_depth(amqp_url, dlq(topology)) == 0


def test_a_partner_message_with_a_forged_user_id_is_refused_by_the_broker(
    amqp_url, topology, broker_users, register, inbox, licensing_db
):
    forger, victim = broker_users(), broker_users()
    register(forger, "Padělatel s.r.o.")
    victim_id = register(victim, "Poctivý partner a.s.")

    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        forger.publish(topology.partner_sales_exchange, body_of(sale("F-1")), message_id="f-1", user_id=victim.name)
    assert refused.value.reply_code == PRECONDITION_FAILED
    assert "user_id" in refused.value.reply_text

    # Later messages arrive in order: once this one is recorded, the forged one would have been.
    forger.publish(topology.partner_sales_exchange, body_of(sale("OK-1")), message_id="ok-1")
    wait_until(lambda: licenses(licensing_db), message="the honest sale after the forged one")
    [license_] = licenses(licensing_db)
    assert license_.partner_sale_id == "OK-1" and license_.partner_id != victim_id
    assert queue_depth(amqp_url, dlq(topology)) == 0
    assert events(licensing_db, "licensing.partner_sale.rejected") == []


def test_a_poison_partner_message_goes_to_the_dlq_while_the_next_is_accepted(
    amqp_url, topology, broker_users, register, inbox, licensing_db
):
    user = broker_users()
    partner_id = register(user)
    poison = sale("P-1", seats=0)
    del poison["sold_on"]
    user.publish(topology.partner_sales_exchange, body_of(poison), message_id="poison-1")
    user.publish(topology.partner_sales_exchange, body_of(sale("P-2")), message_id="healthy-1")

    wait_until(lambda: licenses(licensing_db), message="the healthy message after the poison")
    wait_until(lambda: queue_depth(amqp_url, dlq(topology)) == 1, message="the poison in the DLQ")
    assert [license_.partner_sale_id for license_ in licenses(licensing_db)] == ["P-2"]
    assert settled(amqp_url, topology)

    [(headers, body)] = drain(amqp_url, dlq(topology))
    assert json.loads(body) == poison
    reason = headers["x-failure-reason"]
    assert reason.startswith("invalid sale:") and "seats" in reason and "sold_on" in reason
    assert headers["x-failed-consumer"] == CONSUMER
    assert headers["x-original-user-id"] == user.name
    [rejected] = events(licensing_db, "licensing.partner_sale.rejected")
    assert rejected == {"partner": partner_id, "broker_user": user.name, "message_id": "poison-1", "reason": reason}


def test_messages_that_cannot_be_attributed_or_read_are_rejected(
    amqp_url, topology, broker_users, register, inbox, licensing_db
):
    registered, stranger = broker_users(), broker_users()
    register(registered)
    exchange = topology.partner_sales_exchange
    stranger.publish(exchange, body_of(sale("X-1")), message_id="from-a-stranger")  # no partner has this user
    registered.publish(exchange, body_of(sale("X-2")), message_id="anonymous", user_id=None)  # no user_id
    registered.publish(exchange, body_of(sale("X-3")), message_id=None)  # no idempotency key
    registered.publish(exchange, b"{not json", message_id="garbage")
    registered.publish(exchange, body_of(sale("X-4", product="neexistuje")), message_id="unknown-product")
    wait_until(lambda: queue_depth(amqp_url, dlq(topology)) == 5, message="five dead letters")

    dead = drain(amqp_url, dlq(topology))
    reasons = [headers["x-failure-reason"] for headers, _ in dead]
    assert reasons[0] == f"no partner is registered with broker user {stranger.name!r}"
    assert reasons[1].startswith("no user_id property")
    assert reasons[2].startswith("a unique message_id property")
    assert reasons[3].startswith("invalid sale: not JSON")
    assert reasons[4] == "invalid sale: There is no product 'neexistuje'."
    rejected = events(licensing_db, "licensing.partner_sale.rejected")
    assert [event["reason"] for event in rejected] == reasons
    assert [event["partner"] is None for event in rejected] == [True, True, False, False, False]
    assert [event["message_id"] for event in rejected] == [
        "from-a-stranger",
        "anonymous",
        None,
        "garbage",
        "unknown-product",
    ]
    assert licenses(licensing_db) == []


def test_a_partner_user_can_only_write_to_the_partner_exchange(amqp_url, topology, broker_users, inbox):
    user = broker_users()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        user.publish(topology.events_exchange, b"{}", message_id="sneaky")
    assert refused.value.reply_code == ACCESS_REFUSED
    connection = pika.BlockingConnection(pika.URLParameters(user.url))
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            connection.channel().basic_get(topology.partner_sales_queue)  # others' sales: not readable
        assert refused.value.reply_code == ACCESS_REFUSED
    finally:
        connection.close()


def test_a_rejected_message_redelivered_is_dead_lettered_again_but_announced_once(
    settings_for, broker_users, register, licensing_db
):
    """A crash after the rejection's commit and before the ack redelivers the message."""
    user = broker_users()
    register(user)
    worker = PartnerInbox(settings_for("licensing", licensing_db.url), licensing_db)
    properties = pika.BasicProperties(message_id="bad-1", user_id=user.name)
    for _ in range(2):
        with pytest.raises(Poison, match="seats"):
            worker.handle(properties, body_of(sale("B-1", seats=-1)))
    assert len(events(licensing_db, "licensing.partner_sale.rejected")) == 1
    # The same message id with another body is not the same message.
    with pytest.raises(Poison, match="used before for another message"):
        worker.handle(properties, body_of(sale("B-1")))
    assert len(events(licensing_db, "licensing.partner_sale.rejected")) == 2
    assert licenses(licensing_db) == []


def test_the_process_runs_and_passes_its_health_check(
    amqp_url, namespace, topology, broker_users, register, licensing_db, tmp_path
):
    """`python -m licensing.partner_inbox`, as the Procfile and compose run it."""
    from ops import healthcheck

    env = {
        **os.environ,
        "AMQP_URL": amqp_url,
        "EVENTS_NAMESPACE": namespace,
        "LICENSING_DATABASE_URL": licensing_db.url,
        "HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "licensing.partner_inbox"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: healthcheck.check("consumer", "licensing.partner_inbox", env=env) == [], timeout=20)
        user = broker_users()
        register(user)
        user.publish(topology.partner_sales_exchange, body_of(sale("R-1")), message_id="r-1")
        wait_until(lambda: licenses(licensing_db), message="the sale through the real process")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert '"component": "licensing-partner-inbox"' in stderr
