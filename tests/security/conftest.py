"""One small, consistent Customer Center for the bad-input tests: the four services on
PostgreSQL (one database each), seeded through their own APIs and domain functions, their
events relayed between them in-process (outbox → the other services' handlers, as the relays
and consumers would), and the gateway in front of them over real HTTP (each service served
by a threaded WSGI server on a free port).

Built once per session: the fuzzing and the hand-written cases share it, so every test that
changes something makes its own names and ids.

Callers act as one of these principals, each as a signed `X-Identity` for the service:
- `anonymous`: the gateway vouching for an anonymous client;
- `member`: the administrator (every right) of customer `world.customer`;
- `staff`: a vendor staff account;
- `gateway`: the gateway itself (identity's internal calls).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from shared import auth, migrations
from shared.auth import Principal
from shared.config import Settings
from shared.consumer import EventConsumer
from shared.messaging import outbox
from tests.conftest import TEST_SECRET
from tests.support import serving, valid_company_id

SERVICES = ("identity", "licensing", "distribution", "forum")
ROLES = ("anonymous", "member", "staff")
CLIENT = "198.51.100.77"
PASSWORD = "correct horse battery staple"
MEMBER_EMAIL = "ada@example.com"
STAFF_EMAIL = "staff@example.com"
PRODUCT = {"code": "ucetnictvi", "name": "Účetní systém", "editions": ["Jazz", "Komplet"], "add_ons": ["kasa"]}
ADDRESS = {"street": "Dlouhá 1", "city": "Praha", "postal_code": "11000"}
PROBLEM = "application/problem+json"


@dataclass
class World:
    apps: dict[str, Flask]
    gateway: Flask
    service_urls: dict[str, str]
    customer: str = ""  # the member's customer number
    other_customer: str = ""  # a customer the member does not belong to
    member_id: str = ""
    staff_id: str = ""
    colleague_id: str = ""
    installation_number: str = ""  # registered, the member's
    unregistered_number: str = ""  # a partner's sale to the member's company, not registered yet
    partner_id: str = ""
    partner_key: str = ""
    release_id: int = 0  # published, with `file_id`
    draft_release_id: int = 0  # not published: files may be uploaded
    file_id: int = 0
    file_name: str = "setup.exe"
    document_id: int = 0
    category_id: int = 0
    topic_id: int = 0
    post_id: int = 0

    def principal(self, role: str) -> Principal | None:
        if role == "anonymous":
            return Principal("anonymous", kind="anonymous", client=CLIENT)
        if role == "member":
            return Principal(self.member_id, email=MEMBER_EMAIL, name="Ada Nováková", client=CLIENT)
        if role == "staff":
            return Principal(self.staff_id, email=STAFF_EMAIL, name="Podpora", staff=True, client=CLIENT)
        if role == "gateway":
            return Principal("gateway", kind="service", client=CLIENT)
        raise ValueError(role)

    def headers(self, service: str, role: str) -> dict[str, str]:
        return {auth.HEADER: auth.issue(TEST_SECRET, service, self.principal(role))}

    def call(self, service: str, method: str, path: str, role: str = "staff", body=None, **kwargs):
        """A request to one service, as the gateway would make it for `role`."""
        headers = {**self.headers(service, role), **kwargs.pop("headers", {})}
        if body is not None:
            kwargs["json"] = body
        return self.apps[service].test_client().open(path, method=method, headers=headers, **kwargs)

    def known_path_values(self) -> dict[str, list]:
        """Seeded values for path parameters, by name: fuzzing sometimes uses them to get past the 404."""
        return {
            "customer_number": [self.customer, self.other_customer],
            "user_id": [self.member_id, self.colleague_id],
            "installation_number": [self.installation_number],
            "partner_id": [self.partner_id],
            "release_id": [self.draft_release_id, self.release_id],
            "file_id": [self.file_id],
            "name": [self.file_name],
            "document_id": [self.document_id],
            "category_id": [self.category_id],
            "topic_id": [self.topic_id],
            "post_id": [self.post_id],
        }

    def open_session(self, who: str = "member") -> str:
        """A gateway session token for the member (or staff), without signing in (no password hashing)."""
        user = (
            {"id": self.member_id, "email": MEMBER_EMAIL, "name": "Ada Nováková", "staff": False}
            if who == "member"
            else {"id": self.staff_id, "email": STAFF_EMAIL, "name": "Podpora", "staff": True}
        )
        token, _ = self.gateway.extensions["sessions"].open(user)
        return token


@functools.cache
def openapi_document(component: str) -> dict:
    """A component's OpenAPI document, from an app on a throwaway in-memory database: only the
    document is read, so tests can be parametrized from it at collection, without PostgreSQL."""
    settings = Settings(service=component, database_url="sqlite://", internal_auth_secret=TEST_SECRET)
    app = importlib.import_module(f"{component}.app").create_app(settings)
    document = app.test_client().get("/openapi.json").get_json()
    app.extensions["database"].dispose()
    return document


def _settings(service: str, database_url: str, **overrides) -> Settings:
    return Settings.from_env(
        service,
        database_url=database_url,
        internal_auth_secret=TEST_SECRET,
        events_namespace="security-tests.",
        public_url="https://portal.example",
        **overrides,
    )


class Relay:
    """Hands every service's new outbox events to the services that handle them."""

    def __init__(self, apps: dict[str, Flask]):
        self.apps = apps
        self.seen: dict[str, int] = dict.fromkeys(apps, 0)
        self.consumers = {}
        for name, app in apps.items():
            handlers = importlib.import_module(f"{name}.handlers").HANDLERS
            self.consumers[name] = EventConsumer(app.extensions["settings"], handlers, app.extensions["database"])

    def deliver(self) -> None:
        moved = True
        while moved:
            moved = False
            for producer, app in self.apps.items():
                with app.extensions["database"].unit_of_work() as session:
                    rows = session.execute(
                        select(outbox.c.id, outbox.c.routing_key, outbox.c.body)
                        .where(outbox.c.id > self.seen[producer])
                        .order_by(outbox.c.id)
                    ).all()
                for row in rows:
                    self.seen[producer] = row.id
                    moved = True
                    for name, consumer in self.consumers.items():
                        if name != producer and row.routing_key in consumer.handlers:
                            consumer.apply(row.body.encode())


def _ok(answer, status: int = 201) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)
    return answer.get_json() if answer.is_json else {}


def _seed(world: World, relay: Relay) -> None:
    from identity.__main__ import ensure_staff
    from identity.accounts import find_user
    from identity.demo import ensure_demo_accounts

    # licensing: the catalogue, two customers, a direct sale and a partner's sale
    _ok(world.call("licensing", "POST", "/api/v1/admin/products", body=PRODUCT))
    customers = []
    for seed, name in ((2026_1128, "Účetnictví Novák s.r.o."), (2026_1129, "Stavebniny Morava a.s.")):
        body = {"company_id": valid_company_id(seed), "company_name": name, "billing_address": ADDRESS}
        customers.append(_ok(world.call("licensing", "POST", "/api/v1/admin/customers", body=body)))
    world.customer, world.other_customer = (c["customer_number"] for c in customers)
    license_ = {"customer_number": world.customer, "product": "ucetnictvi", "edition": "Jazz", "seats": 2}
    support = (date.today() + timedelta(days=3650)).isoformat()
    license_ = _ok(
        world.call("licensing", "POST", "/api/v1/admin/licenses", body=license_ | {"support_until": support})
    )
    world.installation_number = license_["installation_number"]
    partner = _ok(world.call("licensing", "POST", "/api/v1/admin/partners", body={"name": "Softwarový dům s.r.o."}))
    world.partner_id, world.partner_key = partner["partner_id"], partner["api_key"]
    sale = {
        "partner_sale_id": "SEED-1",
        "customer": {
            "company_id": customers[0]["company_id"],
            "company_name": customers[0]["company_name"],
            "billing_address": ADDRESS,
        },
        "product": "ucetnictvi",
        "edition": "Komplet",
        "add_ons": ["kasa"],
        "seats": 1,
        "sold_on": date.today().isoformat(),
    }
    headers = {"Authorization": f"Bearer {world.partner_key}", "Idempotency-Key": "seed-1"}
    answer = world.apps["licensing"].test_client().post("/api/v1/partner/sales", json=sale, headers=headers)
    world.unregistered_number = _ok(answer)["installation_number"]
    relay.deliver()

    # identity: a staff account, the member (administrator) and a colleague of the first customer
    identity = world.apps["identity"]
    database = identity.extensions["database"]
    world.staff_id = ensure_staff(database, STAFF_EMAIL, PASSWORD, name="Podpora").id
    ensure_demo_accounts(
        identity.extensions["settings"],
        world.customer,
        (MEMBER_EMAIL, "Ada Nováková", PASSWORD),
        ("bob@example.com", "Bob Svoboda", PASSWORD),
        wait=0,
    )
    with database.unit_of_work() as session:
        world.member_id = find_user(session, MEMBER_EMAIL).id
        world.colleague_id = find_user(session, "bob@example.com").id
    relay.deliver()

    # distribution: a published release with a file, a draft release, a document
    release = {"product": "ucetnictvi", "version": "2026.1", "kind": "full", "released_on": date.today().isoformat()}
    world.release_id = _ok(world.call("distribution", "POST", "/api/v1/admin/releases", body=release))["id"]
    stored = world.call(
        "distribution",
        "PUT",
        f"/api/v1/admin/releases/{world.release_id}/files/{world.file_name}",
        data=b"installer bytes " * 64,
        headers={"Content-Type": "application/octet-stream"},
    )
    world.file_id = _ok(stored)["file_id"]
    _ok(world.call("distribution", "POST", f"/api/v1/admin/releases/{world.release_id}/publish"), 200)
    draft = release | {"version": "2026.2", "kind": "update"}
    world.draft_release_id = _ok(world.call("distribution", "POST", "/api/v1/admin/releases", body=draft))["id"]
    document = {"title": "Ceník 2026", "description": "Ceník"}
    world.document_id = _ok(world.call("distribution", "POST", "/api/v1/admin/documents", body=document))["id"]
    relay.deliver()

    # forum: a category (staff), a topic by the member, a reply by staff
    category = {"name": "Účetnictví", "product": "ucetnictvi"}
    world.category_id = _ok(world.call("forum", "POST", "/api/v1/admin/forum/categories", body=category))["id"]
    topic = {"category_id": world.category_id, "title": "Jak zaúčtovat zálohu?", "body": "Dotaz **k záloze**"}
    world.topic_id = _ok(world.call("forum", "POST", "/api/v1/forum/topics", role="member", body=topic))["id"]
    reply = world.call("forum", "POST", f"/api/v1/forum/topics/{world.topic_id}/posts", body={"body": "Odpověď"})
    world.post_id = _ok(reply)["id"]
    relay.deliver()


@pytest.fixture(scope="session")
def world(new_database) -> Iterator[World]:
    from distribution.storage import DirectoryStorage
    from gateway.app import create_app

    # Throttles read at request time stay at their defaults: fuzzing meets 429s, which are answers too.
    os.environ.setdefault("FORUM_POST_LIMIT", "1000/60")
    apps: dict[str, Flask] = {}
    for service in SERVICES:
        url = new_database(f"sec_{service}")
        migrations.upgrade(service, url)
        app = importlib.import_module(f"{service}.app").create_app(_settings(service, url))
        app.testing = False  # errors are answered as in production, never raised into the test
        apps[service] = app
    with contextlib.ExitStack() as stack:
        files = stack.enter_context(tempfile.TemporaryDirectory(prefix="security-files-"))
        apps["distribution"].extensions["storage"] = DirectoryStorage(files)
        urls = {service: stack.enter_context(serving(app)) for service, app in apps.items()}
        gateway_url = new_database("sec_gateway")
        migrations.upgrade("gateway", gateway_url)
        gateway = create_app(_settings("gateway", gateway_url, service_urls=urls, upstream_timeout=20.0))
        world = World(apps=apps, gateway=gateway, service_urls=urls)
        _seed(world, Relay(apps))
        yield world
        for app in [*apps.values(), gateway]:
            app.extensions["database"].dispose()


def chunked(data: bytes) -> dict:
    """Test-client arguments for a body without Content-Length, as a chunked request arrives
    (the WSGI server dechunks it and says so with `wsgi.input_terminated`)."""
    return {
        "input_stream": io.BytesIO(data),
        "environ_overrides": {"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
    }


def assert_problem(response, status: int | tuple[int, ...]) -> dict:
    """An error answer as api.md promises it: problem+json with type, title, status and detail."""
    statuses = (status,) if isinstance(status, int) else status
    text = response.get_data(as_text=True)
    assert response.status_code in statuses, f"{response.status_code} (expected {statuses}): {text[:500]}"
    assert response.mimetype == PROBLEM, f"{response.mimetype}: {text[:500]}"
    body = json.loads(text)
    assert body["status"] == response.status_code
    assert body["type"].startswith("urn:customer-center:problem:")
    assert body["title"] and body["detail"]
    return body
