"""Operators list and replay dead letters over HTTP (api.md: `GET /api/v1/admin/dead-letters`,
`POST /api/v1/admin/dead-letters/{id}/replay`): the gateway's own endpoints, against the real
broker, with sessions from the gateway's real store."""

from __future__ import annotations

import pika
import pytest
from gateway.app import create_app

from ops.suite import free_port
from shared.config import Settings
from shared.migrations import upgrade
from shared.topology import Topology
from tests.support import drain, queue_depth

STAFF = {"id": "u-staff", "email": "staff@vendor.example", "name": "Vendor staff", "staff": True}
CUSTOMER = {"id": "u-ada", "email": "ada@example.com", "name": "Ada Lovelace", "staff": False}
FAILED = {
    "x-failure-reason": "ProgrammingError: relation entitlements does not exist",
    "x-failed-consumer": "distribution",
    "x-failed-at": "2026-12-07T02:00:00+00:00",
    "x-original-routing-key": "licensing.license.issued",
    "x-delivery-count": 5,
}


def gateway(tmp_path, amqp_url: str, namespace: str):
    database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade("gateway", database_url)
    settings = Settings(
        service="gateway",
        database_url=database_url,
        internal_auth_secret="t" * 64,
        amqp_url=amqp_url,
        events_namespace=namespace,
    )
    return create_app(settings)


@pytest.fixture
def app(tmp_path, amqp_url, namespace):
    app = gateway(tmp_path, amqp_url, namespace)
    yield app
    app.extensions["database"].dispose()


@pytest.fixture
def topology(amqp_url, namespace) -> Topology:
    """The topology with dead letters in it, as consumers leave them: the same license event
    refused by distribution and by identity, another by distribution, and a partner's sale."""
    topology = Topology(namespace)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    topology.declare(channel)
    letters = [
        (topology.dead_letter_queue("distribution"), "evt-1"),
        (topology.dead_letter_queue("distribution"), "evt-2"),
        (topology.dead_letter_queue("identity"), "evt-1"),
        (topology.dead_letter_queue_of(topology.partner_sales_queue), "sale-1"),
    ]
    for queue, event_id in letters:
        properties = pika.BasicProperties(message_id=event_id, delivery_mode=2, headers=FAILED, type="x")
        channel.basic_publish("", queue, f'{{"id": "{event_id}"}}'.encode(), properties)
    connection.close()
    return topology


def bearer(app, person: dict) -> dict:
    token, _session = app.extensions["sessions"].open(person)
    return {"Authorization": f"Bearer {token}"}


def test_staff_list_every_consumers_dead_letters_and_the_listing_leaves_them(app, topology, amqp_url):
    answer = app.test_client().get("/api/v1/admin/dead-letters", headers=bearer(app, STAFF))
    assert answer.status_code == 200
    items = answer.get_json()["items"]
    assert [(x["consumer"], x["id"], x["replayable"]) for x in items] == [
        ("distribution", "evt-1", True),
        ("distribution", "evt-2", True),
        ("identity", "evt-1", True),
        ("licensing.partner-sales", "sale-1", False),
    ]
    assert items[0]["type"] == "licensing.license.issued" and "entitlements" in items[0]["reason"]
    assert items[0]["failed_at"] == "2026-12-07T02:00:00+00:00"
    assert queue_depth(amqp_url, topology.dead_letter_queue("distribution")) == 2  # still there


def test_a_replay_goes_back_to_each_consumer_that_refused_it_and_to_no_other(app, topology, amqp_url):
    client, staff = app.test_client(), bearer(app, STAFF)
    answer = client.post("/api/v1/admin/dead-letters/evt-1/replay", headers=staff)
    assert answer.status_code == 200
    assert answer.get_json() == {"id": "evt-1", "replayed_to": ["distribution", "identity"]}
    for consumer in ("distribution", "identity"):
        [(headers, body)] = drain(amqp_url, topology.queue(consumer))
        assert body == b'{"id": "evt-1"}'
        # a clean copy: no failure of its own, counted afresh by the broker
        assert set(headers) & set(FAILED) <= {"x-delivery-count"} and headers.get("x-delivery-count", 0) == 0
    assert queue_depth(amqp_url, topology.queue("licensing")) == 0
    remaining = client.get("/api/v1/admin/dead-letters", headers=staff).get_json()["items"]
    assert [(x["consumer"], x["id"]) for x in remaining] == [
        ("distribution", "evt-2"),
        ("licensing.partner-sales", "sale-1"),
    ]


def test_unknown_ids_and_partner_sales_are_refused_with_a_problem(app, topology, amqp_url):
    client, staff = app.test_client(), bearer(app, STAFF)
    unknown = client.post("/api/v1/admin/dead-letters/evt-404/replay", headers=staff)
    assert unknown.status_code == 404 and unknown.mimetype == "application/problem+json"
    sale = client.post("/api/v1/admin/dead-letters/sale-1/replay", headers=staff)
    assert sale.status_code == 409 and sale.get_json()["type"].endswith(":not-replayable")
    assert queue_depth(amqp_url, topology.dead_letter_queue_of(topology.partner_sales_queue)) == 1
    assert queue_depth(amqp_url, topology.dead_letter_queue("distribution")) == 2


def test_only_staff_and_a_browser_only_with_its_csrf_token(app, topology, amqp_url):
    client = app.test_client()
    assert client.get("/api/v1/admin/dead-letters").status_code == 401
    assert client.post("/api/v1/admin/dead-letters/evt-1/replay").status_code == 401
    customer = bearer(app, CUSTOMER)
    assert client.get("/api/v1/admin/dead-letters", headers=customer).status_code == 403
    assert client.post("/api/v1/admin/dead-letters/evt-1/replay", headers=customer).status_code == 403

    token, session = app.extensions["sessions"].open(STAFF)
    client.set_cookie("cc_session", token)
    assert client.get("/api/v1/admin/dead-letters").status_code == 200
    forged = client.post("/api/v1/admin/dead-letters/evt-2/replay", headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403 and forged.get_json()["type"].endswith(":csrf-failed")
    assert queue_depth(amqp_url, topology.dead_letter_queue("distribution")) == 2
    sent = client.post("/api/v1/admin/dead-letters/evt-2/replay", headers={"X-CSRF-Token": session.csrf_token})
    assert sent.status_code == 200 and sent.get_json()["replayed_to"] == ["distribution"]


def test_an_unreachable_broker_is_a_503_with_retry_after(tmp_path, namespace):
    app = gateway(tmp_path, f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F", namespace)
    try:
        client, staff = app.test_client(), bearer(app, STAFF)
        for answer in (
            client.get("/api/v1/admin/dead-letters", headers=staff),
            client.post("/api/v1/admin/dead-letters/evt-1/replay", headers=staff),
        ):
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
            assert answer.mimetype == "application/problem+json"
    finally:
        app.extensions["database"].dispose()


def test_the_gateways_openapi_document_has_both(app):
    paths = app.test_client().get("/openapi.json").get_json()["paths"]
    assert "get" in paths["/api/v1/admin/dead-letters"]
    assert "post" in paths["/api/v1/admin/dead-letters/{event_id}/replay"]


def test_before_any_consumer_declared_its_queues_there_is_nothing_to_list(app):
    """A broker started afresh has no DLQs until a consumer connects: nothing failed yet."""
    client, staff = app.test_client(), bearer(app, STAFF)
    assert client.get("/api/v1/admin/dead-letters", headers=staff).get_json() == {"items": [], "next": None}
    assert client.post("/api/v1/admin/dead-letters/evt-1/replay", headers=staff).status_code == 404
