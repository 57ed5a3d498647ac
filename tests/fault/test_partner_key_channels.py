"""A partner's REST Idempotency-Keys and its broker messages' ids are two key spaces: a REST
key that spells `amqp:` + a message's id is not that message (it was, while the partner inbox
stored message ids as `amqp:<id>` among the REST keys).

A partner with an API key and a broker user of its own (made as the README tells operators)
sells twice in each order: over AMQP with message id X, then over REST with
`Idempotency-Key: amqp:X` and another sale; and over REST first with `amqp:Y`, then over AMQP
with message id Y. Each is a license of its own. Each channel's own retry still replays: the
REST retry (same key, same body) gets the first answer again, the message published again
(same id, same body) makes nothing new. Then everything is reconciled as in the other
scenarios: each acknowledged sale one license, announced once, one entitlement.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote, urlsplit

import pika
import pytest

from shared.topology import Topology
from tests.broker_users import broker_users  # noqa: F401 (fixture)
from tests.fault.world import (
    Reconciliation,
    Sale,
    all_running,
    database_url,
    dead_letters,
    outbox_events,
    reconcile_sales,
    replica_differences,
    settle,
)
from tests.support import read_only_database, wait_until


def publish_as(amqp_url: str, user, exchange: str, body: dict, message_id: str) -> None:
    """Publish a sale as the partner's system does (README): its own user, confirmed."""
    parts = urlsplit(amqp_url)
    credentials = f"{quote(user.name, safe='')}:{quote(user.password, safe='')}"
    url = f"amqp://{credentials}@{parts.hostname}:{parts.port or 5672}/{parts.path[1:] or '%2F'}"
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange,
            "",
            json.dumps(body, ensure_ascii=False).encode(),
            pika.BasicProperties(
                message_id=message_id,
                user_id=user.name,
                content_type="application/json",
                delivery_mode=pika.DeliveryMode.Persistent,
            ),
            mandatory=True,
        )
    finally:
        if connection.is_open:
            connection.close()


def licenses_of(suite, partner_id: str) -> dict[str, list[str]]:
    """The partner's licenses: {partner_sale_id: [installation numbers]}."""
    with read_only_database(database_url(suite, "licensing")) as db:
        rows = db.execute(
            "SELECT partner_sale_id, installation_number FROM licenses WHERE partner_id = %s", (partner_id,)
        ).fetchall()
    found: dict[str, list[str]] = {}
    for sale_id, number in rows:
        found.setdefault(sale_id, []).append(number)
    return found


def rejections(suite, partner_id: str) -> list[dict]:
    return [
        event["data"]
        for event in outbox_events(suite, "licensing", "licensing.partner_sale.rejected")
        if event["data"].get("partner") == partner_id
    ]


@pytest.mark.fault
def test_a_rest_key_never_meets_a_message_id(suite, world, broker_users, record_property, tmp_path):  # noqa: F811
    amqp_url, topology = suite.env["AMQP_URL"], Topology(suite.namespace)
    settle(suite)
    user = broker_users.make(topology)
    partner = world.staff_call(
        "POST", "/api/v1/admin/partners", json={"name": "Dva kanály s.r.o.", "broker_user": user.name}, expect=201
    )
    api_key, partner_id = partner["api_key"], partner["partner_id"]

    def sale(label: str) -> Sale:
        return Sale(key="", body=world.sale_body(world.new_company(label), f"{label}-{uuid.uuid4().hex[:10]}"))

    def over_rest(sale: Sale) -> tuple[int, dict]:
        sale.attempts += 1
        headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": sale.key}
        answer = world.call("POST", "/api/v1/partner/sales", headers=headers, json=sale.body)
        return answer.status_code, answer.json()

    def over_amqp(sale: Sale) -> None:
        sale.attempts += 1
        publish_as(amqp_url, user, topology.partner_sales_exchange, sale.body, sale.key)

    def taken(*messages: Sale) -> bool:
        """Whether the partner inbox has made each message's license, or refused the message."""
        sold, refused = licenses_of(suite, partner_id), {r["message_id"] for r in rejections(suite, partner_id)}
        return all(m.body["partner_sale_id"] in sold or m.key in refused for m in messages)

    x, y = f"sale-{uuid.uuid4().hex[:12]}", f"sale-{uuid.uuid4().hex[:12]}"
    # AMQP first with message id X, then REST with the key `amqp:X`
    first_message, then_rest = sale("fronta-napred"), sale("rest-potom")
    first_message.key, then_rest.key = x, f"amqp:{x}"
    over_amqp(first_message)
    wait_until(lambda: taken(first_message), timeout=60, interval=0.2, message=f"message {x} taken")
    answered = {then_rest.key: over_rest(then_rest)}
    # REST first with the key `amqp:Y`, then AMQP with message id Y
    first_rest, then_message = sale("rest-napred"), sale("fronta-potom")
    first_rest.key, then_message.key = f"amqp:{y}", y
    answered[first_rest.key] = over_rest(first_rest)
    over_amqp(then_message)
    wait_until(lambda: taken(then_message), timeout=60, interval=0.2, message=f"message {y} taken")

    # Each channel's own retry: the same REST key and body, the same message again.
    retried = {rest.key: over_rest(rest) for rest in (then_rest, first_rest)}
    for message in (first_message, then_message):
        over_amqp(message)
    # The partner inbox takes messages one by one, in order: once this one is in, the repeats were handled.
    last = sale("fronta-posledni")
    last.key = f"sale-{uuid.uuid4().hex[:12]}"
    over_amqp(last)
    wait_until(lambda: taken(last), timeout=60, interval=0.2, message="the last message taken")

    lost: dict[str, str] = {}
    for rest in (then_rest, first_rest):
        status, body = answered[rest.key]
        if status != 201:
            lost[f"REST {rest.key}"] = f"{status} {body}"
            continue
        rest.answer = body
        if retried[rest.key] != (201, body):
            lost[f"REST retry {rest.key}"] = f"answered {retried[rest.key]} instead of {body}"
    sold = licenses_of(suite, partner_id)
    for message in (first_message, then_message, last):
        numbers = sold.get(message.body["partner_sale_id"])
        if numbers:
            message.answer = {"installation_number": numbers[0]}  # as the inbox answered it
        else:
            lost[f"message {message.key}"] = "no license"

    settle(suite)
    sales = [first_message, then_rest, first_rest, then_message, last]
    with read_only_database(database_url(suite, "licensing")) as db:
        keys = [
            row[0]
            for row in db.execute(
                "SELECT to_jsonb(r) - 'response' - 'request_hash' FROM idempotent_requests r "
                "WHERE partner_id = %s ORDER BY created_at",
                (partner_id,),
            )
        ]
    result = Reconciliation("REST keys and message ids, two key spaces")
    result.parts["partner sales"] = reconcile_sales(world, sales)
    result.parts["the two channels"] = {
        "acknowledged": 0,
        "lost": len(lost),
        "duplicated": 0,  # a license twice is counted in "partner sales"
        "lost_detail": lost,
        "duplicated_detail": {},
    }
    result.parts["replicas vs their sources"] = replica_differences(suite)
    result.facts.update(
        licenses_per_sale={sale_id: len(numbers) for sale_id, numbers in licenses_of(suite, partner_id).items()},
        idempotency_rows=keys,
        rejected=[r["reason"] for r in rejections(suite, partner_id)],
        dead_letters=dead_letters(suite),
    )
    world.staff_call("PATCH", f"/api/v1/admin/partners/{partner_id}", json={"broker_user": None})
    result.publish(record_property, tmp_path)
    assert result.lost == 0, result.parts
    assert result.duplicated == 0, result.parts
    assert result.facts["rejected"] == [], result.facts["rejected"]
    assert not any(result.facts["dead_letters"].values()), result.facts["dead_letters"]
    assert all(all_running(suite).values()), all_running(suite)
