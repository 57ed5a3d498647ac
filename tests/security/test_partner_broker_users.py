"""The broker user a partner publishes sales as (security review, finding 12). Registering the
application's own broker user (`guest` here) made the application's own messages that
partner's sales. Licensing now asks RabbitMQ's management API about the user before a partner
may publish as it, and refuses the application's user, an unknown one, and any with more
rights than a partner's: tags, configure or read, writing anything but the partner-sales
exchange, topic permissions. The management API unreachable is a 503 (fail closed). And the
partner inbox never takes a message sent as the application's user, whoever is registered."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pika
import pytest
from licensing.broker_users import BrokerUsers as Checker
from licensing.partner_inbox import PartnerInbox
from licensing.partners import create_partner

from ops.suite import free_port
from shared.topology import Topology
from tests.broker_users import broker_users  # noqa: F401 (fixture)
from tests.licensing.conftest import licensing, sale  # noqa: F401 (fixture)
from tests.security.conftest import assert_problem


@pytest.fixture
def world(licensing, broker_users):  # noqa: F811
    settings = licensing.app.extensions["settings"]
    return licensing, broker_users, Topology(settings.events_namespace), urlsplit(settings.amqp_url).username


def register(api, broker_user: str | None, name: str = "Novák software s.r.o."):
    return api.staff("POST", "/api/v1/admin/partners", {"name": name, "broker_user": broker_user})


def partners(api) -> list[dict]:
    return api.staff("GET", "/api/v1/admin/partners").get_json()["items"]


def test_the_applications_own_broker_user_is_refused(world):
    api, _users, _topology, own = world
    body = assert_problem(register(api, own), 422)
    assert body["errors"][0]["field"] == "broker_user" and "application" in body["detail"]
    assert partners(api) == []


def test_an_unknown_broker_user_is_refused(world):
    api, _users, _topology, _own = world
    body = assert_problem(register(api, "partner-nobody-knows"), 422)
    assert "no such user" in body["detail"].lower()


@pytest.mark.parametrize(
    "rights",
    [
        {"tags": ("impersonator",)},
        {"tags": ("management",)},
        {"tags": ("administrator",)},
        {"configure": ".*"},
        {"read": ".*"},
        {"read": "^cc\\.events$"},
        {"write": ".*"},
        {"write": "^{namespace}cc.partner-sales$"},  # an unescaped dot matches more than the exchange
        {"write": "^{namespace}cc\\.partner-sales|cc\\.events$"},
        {"write": "^{namespace}cc\\.events$"},
        {"topic_write": ".*"},
    ],
    ids=lambda rights: ",".join(f"{k}={v}" for k, v in rights.items()),
)
def test_a_broker_user_with_more_rights_than_a_partners_is_refused(world, rights):
    api, users, topology, _own = world
    if "write" in rights:
        rights = rights | {"write": rights["write"].replace("{namespace}", re.escape(topology.namespace))}
    user = users.make(topology, **rights)
    body = assert_problem(register(api, user.name), 422)
    assert body["errors"][0]["field"] == "broker_user"
    assert partners(api) == []


@pytest.mark.parametrize("escape", [re.escape, lambda name: name.replace(".", "\\.")], ids=["re.escape", "README"])
def test_a_partners_broker_user_is_registered_and_changed(world, escape):
    api, users, topology, own = world
    user = users.make(topology, write=f"^{escape(topology.partner_sales_exchange)}$")
    created = register(api, user.name)
    assert created.status_code == 201, created.get_json()
    partner_id = created.get_json()["partner_id"]

    other = users.make(topology)
    path = f"/api/v1/admin/partners/{partner_id}"
    assert_problem(api.staff("PATCH", path, {"broker_user": own}), 422)
    assert_problem(api.staff("PATCH", path, {"broker_user": users.make(topology, read=".*").name}), 422)
    changed = api.staff("PATCH", path, {"broker_user": other.name})
    assert changed.status_code == 200 and changed.get_json()["broker_user"] == other.name
    assert api.staff("PATCH", path, {"broker_user": None}).get_json()["broker_user"] is None
    assert api.staff("PATCH", path, {"name": "Novák a syn s.r.o."}).get_json()["name"] == "Novák a syn s.r.o."
    assert api.staff("PATCH", "/api/v1/admin/partners/no-such-partner", {"name": "X"}).status_code == 404


def test_an_unreachable_management_api_refuses_the_registration(world):
    api, users, topology, _own = world
    settings = api.app.extensions["settings"]
    api.app.extensions["broker_users"] = Checker(f"http://127.0.0.1:{free_port()}", settings.amqp_url, topology)
    answer = register(api, users.make(topology).name)
    assert_problem(answer, 503)
    assert answer.headers["Retry-After"].isdigit()
    assert partners(api) == []
    # a partner without a broker user needs no broker
    assert register(api, None).status_code == 201


def test_the_inbox_never_takes_a_message_from_the_applications_own_user(world):
    api, _users, _topology, own = world
    with api.database.unit_of_work() as session:  # registered before registrations were checked
        create_partner(session, "Dávný partner s.r.o.", own)
    inbox = PartnerInbox(api.app.extensions["settings"], api.database)
    properties = pika.BasicProperties(user_id=own, message_id="m-1")
    with api.database.unit_of_work() as session:
        reason = inbox.record(session, properties, json.dumps(sale("OWN-1")).encode())
    assert reason and "application's own broker user" in reason
    assert api.events("licensing.license.issued") == []
    assert api.events("licensing.partner_sale.rejected")[-1]["broker_user"] == own
