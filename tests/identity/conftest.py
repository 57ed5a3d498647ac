"""Identity's API on PostgreSQL, called as the gateway calls it (signed identities)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from identity.app import create_app
from identity.handlers import on_customer_created
from identity.models import User
from sqlalchemy import Row, select

from shared import auth, migrations
from shared.auth import Principal
from shared.db import Database
from shared.events import parse_envelope
from shared.mail import outgoing_mail
from tests.conftest import TEST_SECRET

CUSTOMERS = {
    "100001": ("25083325", "Účetnictví Novák s.r.o."),
    "100002": ("27082440", "Stavebniny Morava a.s."),
    "100003": ("45678901", "Pekárna Hanák s.r.o."),
}
PASSWORD = "correct horse battery"


class IdentityApi:
    def __init__(self, app, database: Database):
        self.client = app.test_client()
        self.database = database

    def headers(self, principal: Principal | None = None, client: str = "198.51.100.1") -> dict:
        principal = principal or Principal("anonymous", kind="anonymous")
        if principal.client is None:
            principal = Principal(**{**principal.__dict__, "client": client})
        return {auth.HEADER: auth.issue(TEST_SECRET, "identity", principal)}

    def call(
        self, method: str, path: str, body=None, user: str | None = None, client: str = "198.51.100.1", staff=False
    ):
        principal = Principal(user, staff=staff) if user else None
        return self.client.open(path, method=method, json=body, headers=self.headers(principal, client))

    def user_id(self, email: str) -> str:
        with self.database.unit_of_work() as session:
            return session.scalars(select(User.id).where(User.email == email)).one()

    def mails_to(self, email: str) -> list[Row]:
        with self.database.unit_of_work() as session:
            return list(
                session.execute(
                    select(outgoing_mail).where(outgoing_mail.c.recipient == email).order_by(outgoing_mail.c.id)
                )
            )

    def token_from_mail(self, email: str, page: str) -> str:
        import re

        body = self.mails_to(email)[-1].body
        return re.search(rf"/{page}\?token=([A-Za-z0-9_\-]+)", body).group(1)

    def verify(self, email: str, password: str, client: str = "198.51.100.1"):
        headers = self.headers(Principal("gateway", kind="service"), client)
        return self.client.post(
            "/internal/v1/credentials/verify", json={"email": email, "password": password}, headers=headers
        )

    def register(
        self, customer_number="100001", email="ada@example.com", name="Ada Nováková", password=PASSWORD, **extra
    ):
        body = {
            "customer_number": customer_number,
            "company_id": CUSTOMERS.get(customer_number, ("00000001",))[0],
            "email": email,
            "password": password,
            "name": name,
            **extra,
        }
        return self.call("POST", "/api/v1/registrations", body)

    def administrator(self, customer_number="100001", email="ada@example.com") -> str:
        """Register and confirm; returns the administrator's user id."""
        assert self.register(customer_number, email).status_code == 202
        token = self.token_from_mail(email, "confirm")
        assert self.call("POST", "/api/v1/registrations/confirm", {"token": token}).status_code == 200
        return self.user_id(email)

    def events(self, type_: str) -> list[dict]:
        from shared.messaging import outbox

        with self.database.unit_of_work() as session:
            rows = session.execute(
                select(outbox.c.body).where(outbox.c.routing_key == type_).order_by(outbox.c.id)
            ).all()
        return [json.loads(row.body)["data"] for row in rows]


@pytest.fixture
def identity(new_database, settings_for, monkeypatch):
    url = new_database("identity")
    migrations.upgrade("identity", url)
    settings = settings_for("identity", url, public_url="https://portal.example")
    app = create_app(settings)
    database = app.extensions["database"]
    with database.unit_of_work() as session:
        for number, (company_id, name) in CUSTOMERS.items():
            envelope = {
                "id": f"00000000-0000-4000-8000-{int(number):012d}",
                "type": "licensing.customer.created",
                "version": 1,
                "occurred_at": datetime.now(UTC).isoformat(),
                "producer": "licensing",
                "data": {"customer_number": number, "company_id": company_id, "company_name": name},
            }
            on_customer_created(session, parse_envelope(json.dumps(envelope).encode()))
    yield IdentityApi(app, database)
    database.dispose()
