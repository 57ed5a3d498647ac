"""A caller-chosen `X-Correlation-ID` can no longer stop a service's event flow (security review,
finding 1): the edge keeps a correlation id only when it is short and well formed
(`shared.logs.CORRELATION_ID`) and makes its own otherwise, and so does every place that takes
one from outside (a partner's AMQP properties, another service's envelope).

The reproduction runs a real gateway in front of identity and licensing (each served over HTTP,
on PostgreSQL), and their relays against the real RabbitMQ."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from datetime import date

import pika
import pytest
from identity.__main__ import ensure_staff
from licensing.models import Product
from licensing.partner_inbox import PartnerInbox
from licensing.partners import create_partner
from sqlalchemy import select

from shared import migrations
from shared.consumer import Poison
from shared.db import Database
from shared.events import new_envelope, parse_envelope
from shared.messaging import outbox
from shared.relay import OutboxRelay
from shared.topology import Topology
from tests.support import Background, serving, wait_until

LONG = "c" * 300
# The rule the README states (shared.logs.CORRELATION_ID), written out: what a test holds the code to.
BOUNDED = re.compile(r"[A-Za-z0-9._:-]{1,64}")
STAFF = {"email": "staff@vendor.example", "name": "Podpora", "password": "correct horse battery staple"}
PRODUCT = {"code": "ucetnictvi", "name": "Účetní systém", "editions": ["Jazz"], "add_ons": []}
ADDRESS = {"street": "Dlouhá 1", "city": "Praha", "postal_code": "11000"}


def sale(partner_sale_id: str) -> dict:
    customer = {"company_id": "27082440", "company_name": "Stavebniny Morava a.s.", "billing_address": ADDRESS}
    return {
        "partner_sale_id": partner_sale_id,
        "customer": customer,
        "product": "ucetnictvi",
        "edition": "Jazz",
        "add_ons": [],
        "seats": 1,
        "sold_on": date.today().isoformat(),
    }


def bounded(correlation_id: str | None) -> bool:
    return correlation_id is not None and BOUNDED.fullmatch(correlation_id) is not None


def take_all(amqp_url: str, queue: str) -> list[tuple[pika.BasicProperties, dict]]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    messages = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        messages.append((properties, json.loads(body)))
    connection.close()
    return messages


def unsent(database: Database) -> list:
    with database.engine.connect() as connection:
        return connection.execute(select(outbox).where(outbox.c.published_at.is_(None))).all()


@pytest.fixture
def suite(new_database, settings_for, tmp_path):
    """A gateway in front of identity and licensing (real HTTP), each service with its relay."""
    from gateway.app import create_app as gateway_app
    from identity.app import create_app as identity_app
    from licensing.app import create_app as licensing_app

    databases = {}
    for service in ("identity", "licensing"):
        url = new_database(service)
        migrations.upgrade(service, url)
        databases[service] = Database(url)
    apps = {
        "identity": identity_app(settings_for("identity", databases["identity"].url)),
        "licensing": licensing_app(settings_for("licensing", databases["licensing"].url)),
    }
    with databases["licensing"].unit_of_work() as session:
        session.add(Product(**PRODUCT))
    staff = ensure_staff(databases["identity"], STAFF["email"], STAFF["password"], name=STAFF["name"])
    with contextlib.ExitStack() as stack:
        urls = {service: stack.enter_context(serving(app)) for service, app in apps.items()}
        gateway_db = f"sqlite:///{tmp_path / 'gateway.db'}"
        migrations.upgrade("gateway", gateway_db)
        gateway = gateway_app(settings_for("gateway", gateway_db, service_urls=urls))
        token, _ = gateway.extensions["sessions"].open(
            {"id": staff.id, "email": STAFF["email"], "name": STAFF["name"], "staff": True}
        )
        relays = {
            service: OutboxRelay(settings_for(service, database.url), database)
            for service, database in databases.items()
        }
        yield gateway, {"Authorization": f"Bearer {token}"}, databases, relays
        gateway.extensions["database"].dispose()
        for database in databases.values():
            database.dispose()


def test_an_overlong_correlation_id_stops_no_event(suite, amqp_url, namespace):
    """The finding's reproduction: `PATCH /api/v1/me` and `POST /api/v1/partner/sales` with a
    300-character `X-Correlation-ID` answer as usual, and their events reach the broker."""
    gateway, staff, databases, relays = suite
    client = gateway.test_client()
    long_id = {"X-Correlation-ID": LONG}

    renamed = client.patch("/api/v1/me", json={"name": "Podpora zákazníků"}, headers={**staff, **long_id})
    assert renamed.status_code == 200, renamed.get_data(as_text=True)
    assert renamed.get_json()["name"] == "Podpora zákazníků"
    assert bounded(renamed.headers["X-Correlation-ID"])

    partner = client.post("/api/v1/admin/partners", json={"name": "Softwarový dům s.r.o."}, headers=staff)
    assert partner.status_code == 201, partner.get_data(as_text=True)
    seller = {"Authorization": f"Bearer {partner.get_json()['api_key']}", "Idempotency-Key": "sale-1", **long_id}
    sold = client.post("/api/v1/partner/sales", json=sale("FA-2026-1"), headers=seller)
    assert sold.status_code == 201, sold.get_data(as_text=True)
    assert bounded(sold.headers["X-Correlation-ID"])

    with Background(relays["identity"]), Background(relays["licensing"]):
        wait_until(lambda: not unsent(databases["identity"]) and not unsent(databases["licensing"]), timeout=30)
    topology = Topology(namespace)
    [(properties, renamed_event)] = [
        (properties, event)
        for properties, event in take_all(amqp_url, topology.queue("forum"))
        if event["data"]["name"] == "Podpora zákazníků"  # the staff account's own announcement came first
    ]
    assert renamed_event["type"] == "identity.user.changed"
    assert properties.correlation_id == renamed_event["correlation_id"] == renamed.headers["X-Correlation-ID"]
    issued = [event for _, event in take_all(amqp_url, topology.queue("distribution"))]
    assert "licensing.license.issued" in [event["type"] for event in issued]
    assert {event["correlation_id"] for event in issued} == {sold.headers["X-Correlation-ID"]}


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("e2e-correlation-1", True),
        (str(uuid.uuid4()), True),
        ("a" * 64, True),
        ("trace:7f.x_Y-1", True),
        ("a" * 65, False),
        ("two words", False),
        ("čeština", False),
        ("<script>", False),
        ("", False),
    ],
)
def test_the_edge_keeps_only_a_bounded_well_formed_correlation_id(settings_for, sent, kept):
    from identity.app import create_app

    app = create_app(settings_for("identity"))
    try:
        answer = app.test_client().get("/healthz", headers={"X-Correlation-ID": sent})
    finally:
        app.extensions["database"].dispose()
    assert answer.status_code == 200  # never refused for it
    got = answer.headers["X-Correlation-ID"]
    assert bounded(got)
    assert (got == sent) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f-]{36}", got), "a new UUID of our own"


def test_another_services_envelope_with_an_overlong_correlation_id_is_applied_under_none():
    envelope = new_envelope(
        "licensing.customer.created",
        {"customer_number": "100001", "company_id": "27082440", "company_name": "Stavebniny Morava a.s."},
        "licensing",
        None,
    )
    event = parse_envelope(json.dumps({**envelope, "correlation_id": "€" * 100}).encode())
    assert event.correlation_id is None
    kept = parse_envelope(json.dumps({**envelope, "correlation_id": "from-licensing-1"}).encode())
    assert kept.correlation_id == "from-licensing-1"
    assert new_envelope("licensing.customer.created", envelope["data"], "licensing", LONG)["correlation_id"] is None


@pytest.fixture
def licensing_db(new_database):
    url = new_database("licensing")
    migrations.upgrade("licensing", url)
    database = Database(url)
    with database.unit_of_work() as session:
        session.add(Product(**PRODUCT))
    yield database
    database.dispose()


def test_a_partner_message_with_an_overlong_correlation_id_becomes_a_sale(settings_for, licensing_db):
    """The partner inbox takes the correlation id from the message's properties: a partner's
    300-character one used to fail the outbox INSERT on PostgreSQL, and the sale with it."""
    with licensing_db.unit_of_work() as session:
        create_partner(session, "Softwarový dům s.r.o.", broker_user="partner-novak")
    inbox = PartnerInbox(settings_for("licensing", licensing_db.url), licensing_db)
    properties = pika.BasicProperties(user_id="partner-novak", message_id="m-1", correlation_id=LONG)
    inbox.handle(properties, json.dumps(sale("FA-2026-2")).encode())
    with licensing_db.engine.connect() as connection:
        rows = connection.execute(select(outbox.c.routing_key, outbox.c.correlation_id)).all()
    assert "licensing.license.issued" in [row.routing_key for row in rows]
    assert all(bounded(row.correlation_id) for row in rows)


def test_a_partner_message_id_that_is_not_utf8_is_refused_as_missing(settings_for, licensing_db):
    """pika leaves a short string that is not UTF-8 as bytes; the inbox used to fail on it with a
    TypeError (retried, then dead-lettered without the rejection event)."""
    with licensing_db.unit_of_work() as session:
        create_partner(session, "Softwarový dům s.r.o.", broker_user="partner-novak")
    inbox = PartnerInbox(settings_for("licensing", licensing_db.url), licensing_db)
    properties = pika.BasicProperties(user_id="partner-novak", message_id=b"\xff\xfe-1")
    with pytest.raises(Poison, match="message_id"):
        inbox.handle(properties, json.dumps(sale("FA-2026-3")).encode())
    with licensing_db.engine.connect() as connection:
        assert connection.execute(select(outbox.c.routing_key)).scalars().all() == ["licensing.partner_sale.rejected"]


def test_neither_metrics_nor_internal_endpoints_are_reachable_through_the_gateway(suite):
    gateway, staff, _databases, _relays = suite
    client = gateway.test_client()
    for path in (
        "/metrics",
        "/internal/v1/outbox/held",
        "/api/v1/../metrics",
        "/api/v1/me/../../../metrics",
        "/api/v1/../internal/v1/outbox/held",
    ):
        answer = client.get(path, headers=staff)
        assert answer.status_code == 404, (path, answer.status_code, answer.get_data(as_text=True)[:200])
    answer = client.post("/internal/v1/outbox/held/x/release", headers=staff)
    assert answer.status_code in (404, 405)


def test_a_dead_letter_whose_message_id_is_not_utf8_is_listed(settings_for, tmp_path, amqp_url, namespace):
    """Such a partner's message ends in the partner-sales DLQ; listing it used to fail on the bytes."""
    from gateway.app import create_app

    from shared.dead_letters import DeadLetters

    topology = Topology(namespace)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    topology.declare(channel)
    headers = {"x-failure-reason": "a unique message_id property (1 to 200 characters) is required"}
    properties = pika.BasicProperties(message_id=b"\xff\xfe-1", delivery_mode=2, headers=headers)
    channel.basic_publish("", topology.dead_letter_queue_of(topology.partner_sales_queue), b"{}", properties)
    connection.close()

    [letter] = DeadLetters(amqp_url, namespace).list_partner_sales()
    assert letter.event_id == "\ufffd\ufffd-1" and json.dumps(letter.__dict__)
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrations.upgrade("gateway", url)
    gateway = create_app(settings_for("gateway", url, service_urls={}))  # the broker's dead letters only
    try:
        token, _ = gateway.extensions["sessions"].open(
            {"id": "u-staff", "email": STAFF["email"], "name": STAFF["name"], "staff": True}
        )
        listed = gateway.test_client().get("/api/v1/admin/dead-letters", headers={"Authorization": f"Bearer {token}"})
    finally:
        gateway.extensions["database"].dispose()
    assert listed.status_code == 200, listed.get_data(as_text=True)
    assert [item["id"] for item in listed.get_json()["items"]] == ["\ufffd\ufffd-1"]
