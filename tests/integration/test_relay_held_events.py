"""One outbox row can never stop a relay (security review, finding 1), with the real RabbitMQ and
PostgreSQL: a row that cannot be published because of what it holds is set aside ("held") with
its reason while the rows behind it are published; operators see it beside the dead letters (the
gateway's HTTP listing and `python -m ops.deadletters`), release it once the cause is fixed, and
it is published once; `/metrics` counts it. A lost broker connection holds nothing."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pika
import pytest
from identity.app import create_app as identity_app
from sqlalchemy import insert, select

from ops import deadletters
from shared import migrations
from shared.db import Database
from shared.events import new_envelope
from shared.messaging import outbox
from shared.outbox import HELD_AFTER_ATTEMPTS, add_event
from shared.relay import OutboxRelay
from shared.topology import Topology
from tests.conftest import TEST_SECRET
from tests.support import Background, TcpProxy, serving, wait_until

STAFF = {"id": "u-staff", "email": "staff@vendor.example", "name": "Vendor staff", "staff": True}
# Over AMQP's 255-byte short string (String(200) holds it: 2 bytes a character).
UNENCODABLE_KEY = "identity.membership." + "ř" * 150


def membership(database: Database, user: str, active: bool = True) -> str:
    """identity.membership.changed, as identity writes it (active=False: a right revoked)."""
    data = {
        "user_id": user,
        "customer_number": "100001",
        "administrator": False,
        "rights": ["licenses"] if active else [],
        "active": active,
        "version": 1 if active else 2,
    }
    with database.unit_of_work() as session:
        return add_event(session, "identity.membership.changed", data, producer="identity")


def raw_row(database: Database, routing_key: str = "identity.membership.changed", correlation_id=None) -> str:
    """A row written around `add_event`: by an older release, or by hand."""
    data = {"user_id": "u-old", "customer_number": "100001", "administrator": False}
    envelope = new_envelope(
        "identity.membership.changed", {**data, "rights": [], "active": True, "version": 1}, "identity", None
    )
    envelope["correlation_id"] = correlation_id
    with database.unit_of_work() as session:
        session.execute(
            insert(outbox).values(
                event_id=envelope["id"],
                routing_key=routing_key,
                body=json.dumps(envelope),
                correlation_id=correlation_id,
                created_at=datetime.now(UTC),
            )
        )
    return envelope["id"]


def row(database: Database, event_id: str):
    with database.engine.connect() as connection:
        return connection.execute(select(outbox).where(outbox.c.event_id == event_id)).one()


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


class RefusingRelay(OutboxRelay):
    """A relay whose messages for `refused` events carry an `expiration` the real broker refuses
    (it closes the channel with 406 PRECONDITION_FAILED), as it refuses a body over its
    max_message_size, without sending 128 MiB."""

    refused: set[str]

    def _properties(self, row):
        properties = super()._properties(row)
        if row.event_id in self.refused:
            properties.expiration = "never"
        return properties


@pytest.fixture
def database(new_database):
    url = new_database("identity")
    migrations.upgrade("identity", url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture
def topology(namespace) -> Topology:
    return Topology(namespace)


def test_a_row_that_can_never_be_encoded_is_held_at_once_and_the_rows_behind_it_flow(
    settings_for, database, amqp_url, topology
):
    first = membership(database, "u-1")
    unencodable = raw_row(database, routing_key=UNENCODABLE_KEY)
    # Written before the edge checked correlation ids: 100 characters (the column's limit), 300 bytes.
    old = raw_row(database, correlation_id="€" * 100)
    revocation = membership(database, "u-1", active=False)
    relay = OutboxRelay(settings_for("identity", database.url), database)
    with Background(relay):
        wait_until(lambda: row(database, revocation).published_at, message="the revocation behind the bad row")
        wait_until(lambda: not relay.has_pending(), message="nothing left to publish but the held row")
        threading.Event().wait(0.5)  # the relay keeps turning meanwhile
    held = row(database, unencodable)
    assert held.published_at is None and held.attempts == HELD_AFTER_ATTEMPTS, "held at once, and not tried again"
    assert "255 bytes" in held.last_error
    assert all(row(database, event_id).published_at for event_id in (first, old, revocation))
    published = take_all(amqp_url, topology.queue("licensing"))
    assert [event["id"] for _, event in published] == [first, old, revocation]
    properties, event = published[1]
    assert properties.correlation_id is None and event["correlation_id"] == "€" * 100  # sent without it
    assert published[2][1]["data"]["active"] is False


def test_a_message_the_broker_refuses_is_held_after_a_bounded_number_of_attempts(
    settings_for, database, amqp_url, topology
):
    relay = RefusingRelay(settings_for("identity", database.url), database)
    before = membership(database, "u-1")
    refused = membership(database, "u-2")
    relay.refused = {refused}
    published = [before]
    try:
        for attempt in range(1, HELD_AFTER_ATTEMPTS + 1):
            behind = membership(database, f"u-behind-{attempt}")
            published.append(behind)
            assert relay.publish_pending() == (2 if attempt == 1 else 1), "the rows behind it, in the same pass"
            refused_row = row(database, refused)
            assert refused_row.attempts == attempt and "PRECONDITION_FAILED" in refused_row.last_error
            assert relay.has_pending() is (attempt < HELD_AFTER_ATTEMPTS)
        assert relay.publish_pending() == 0  # held: no longer claimed
        assert row(database, refused).attempts == HELD_AFTER_ATTEMPTS
    finally:
        relay._close_broker()
    assert [event["id"] for _, event in take_all(amqp_url, topology.queue("licensing"))] == published


def test_a_lost_broker_connection_marks_nothing_and_holds_nothing(settings_for, database, amqp_url, topology):
    parameters = pika.URLParameters(amqp_url)
    proxy = TcpProxy(parameters.host, parameters.port).start()
    credentials = parameters.credentials
    through_proxy = f"amqp://{credentials.username}:{credentials.password}@127.0.0.1:{proxy.port}/%2F"
    relay = OutboxRelay(replace(settings_for("identity", database.url), amqp_url=through_proxy), database)
    try:
        relay._open_channel()
        events = [membership(database, f"u-{n}") for n in range(3)]
        proxy.cut()
        for _ in range(HELD_AFTER_ATTEMPTS + 1):
            with pytest.raises(pika.exceptions.AMQPError):
                relay.publish_pending()
        assert [(row(database, e).attempts, row(database, e).published_at) for e in events] == [(0, None)] * 3
        proxy.restore()
        assert relay.publish_pending() == 3
    finally:
        relay._close_broker()
        proxy.stop()
    assert [event["id"] for _, event in take_all(amqp_url, topology.queue("licensing"))] == events


# --- operators: the listing, the release, the metric --------------------------------------------
@pytest.fixture
def identity(settings_for, database):
    """identity's web app on the test database, served over HTTP."""
    app = identity_app(settings_for("identity", database.url))
    with serving(app) as url:
        yield app, url


@pytest.fixture
def gateway(settings_for, tmp_path, identity):
    from gateway.app import create_app

    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    migrations.upgrade("gateway", url)
    app = create_app(settings_for("gateway", url, service_urls={"identity": identity[1]}))
    yield app
    app.extensions["database"].dispose()


def hold(relay: RefusingRelay, database: Database, *event_ids: str) -> None:
    relay.refused = set(event_ids)
    for _ in range(HELD_AFTER_ATTEMPTS):
        relay.publish_pending()
    assert [row(database, event_id).attempts for event_id in event_ids] == [HELD_AFTER_ATTEMPTS] * len(event_ids)


def test_operators_see_held_events_beside_the_dead_letters_and_a_replay_publishes_one_once(
    settings_for, database, gateway, amqp_url, topology
):
    relay = RefusingRelay(settings_for("identity", database.url), database)
    event_id = membership(database, "u-1", active=False)
    try:
        hold(relay, database, event_id)
        token, _ = gateway.extensions["sessions"].open(STAFF)
        staff, client = {"Authorization": f"Bearer {token}"}, gateway.test_client()
        listed = client.get("/api/v1/admin/dead-letters", headers=staff)
        assert listed.status_code == 200, listed.get_data(as_text=True)
        [item] = listed.get_json()["items"]
        assert (item["id"], item["consumer"], item["producer"], item["type"]) == (
            event_id,
            "identity.outbox",
            "identity",
            "identity.membership.changed",
        )
        assert item["attempts"] == HELD_AFTER_ATTEMPTS and "PRECONDITION_FAILED" in item["reason"]
        assert item["replayable"] is True and item["created_at"]

        relay.refused = set()  # the cause is fixed
        replayed = client.post(f"/api/v1/admin/dead-letters/{event_id}/replay", headers=staff)
        assert replayed.status_code == 200, replayed.get_data(as_text=True)
        assert replayed.get_json() == {"id": event_id, "replayed_to": ["identity.outbox"]}
        assert client.post(f"/api/v1/admin/dead-letters/{event_id}/replay", headers=staff).status_code == 404
        assert relay.publish_pending() == 1 and relay.publish_pending() == 0
    finally:
        relay._close_broker()
    assert client.get("/api/v1/admin/dead-letters", headers=staff).get_json()["items"] == []
    assert [event["id"] for _, event in take_all(amqp_url, topology.queue("licensing"))] == [event_id]


def test_the_command_line_lists_and_releases_held_events(
    settings_for, database, identity, amqp_url, namespace, topology, monkeypatch, capsys
):
    for name, value in {
        "AMQP_URL": amqp_url,
        "EVENTS_NAMESPACE": namespace,
        "INTERNAL_AUTH_SECRET": TEST_SECRET,
        "IDENTITY_URL": identity[1],
    }.items():
        monkeypatch.setenv(name, value)
    relay = RefusingRelay(settings_for("identity", database.url), database)
    held = [membership(database, "u-1"), membership(database, "u-2")]
    try:
        hold(relay, database, *held)
        relay.refused = set()
        assert deadletters.main(["list", "identity.outbox"]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(x["consumer"], x["event_id"], x["attempts"]) for x in lines] == [
            ("identity.outbox", event_id, HELD_AFTER_ATTEMPTS) for event_id in held
        ]
        assert deadletters.main(["replay", "identity.outbox", held[1]]) == 0
        assert "released 1 held event(s)" in capsys.readouterr().err
        assert relay.publish_pending() == 1
        assert deadletters.main(["replay", "identity.outbox"]) == 0  # all the others
        assert relay.publish_pending() == 1
    finally:
        relay._close_broker()
    assert [event["id"] for _, event in take_all(amqp_url, topology.queue("licensing"))] == [held[1], held[0]]


def test_metrics_count_pending_and_held_events(settings_for, database, identity):
    app, _url = identity
    relay = RefusingRelay(settings_for("identity", database.url), database)
    try:
        hold(relay, database, membership(database, "u-1"))
    finally:
        relay._close_broker()
    membership(database, "u-2")
    membership(database, "u-3")
    answer = app.test_client().get("/metrics")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    text = answer.get_data(as_text=True)
    assert 'cc_outbox_held{service="identity"} 1.0' in text.splitlines()
    assert 'cc_outbox_pending{service="identity"} 2.0' in text.splitlines()


def test_internal_endpoints_answer_only_the_gateway_and_ops(settings_for, database, identity):
    from shared import auth
    from shared.auth import Principal

    app, _url = identity
    client = app.test_client()
    for principal in (None, Principal("u-staff", staff=True), Principal("forum", kind="service")):
        headers = {auth.HEADER: auth.issue(TEST_SECRET, "identity", principal)} if principal else {}
        assert client.get("/internal/v1/outbox/held", headers=headers).status_code == 401
        assert client.post(f"/internal/v1/outbox/held/{uuid.uuid4()}/release", headers=headers).status_code == 401
