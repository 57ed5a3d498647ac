"""Licensing's API on PostgreSQL, called as the gateway calls it (signed identities)."""

from __future__ import annotations

import json

import pytest
from licensing.app import create_app
from sqlalchemy import select

from shared import auth, memberships, migrations
from shared.auth import Principal
from shared.messaging import outbox
from tests.conftest import TEST_SECRET
from tests.support import membership_event

ADDRESS = {"street": "Dlouhá 1", "city": "Praha", "postal_code": "11000"}
PRODUCT = {
    "code": "ucetnictvi",
    "name": "Účetní systém",
    "editions": ["Mini", "Jazz", "Standard", "Komplet", "Premium"],
    "add_ons": ["síťová verze", "kasa"],
}


class LicensingApi:
    def __init__(self, app):
        self.app = app
        self.client = app.test_client()
        self.database = app.extensions["database"]

    def call(self, method, path, body=None, user=None, staff=False, client="198.51.100.7", headers=None):
        principal = Principal(user or "anonymous", kind="user" if user else "anonymous", staff=staff, client=client)
        all_headers = {auth.HEADER: auth.issue(TEST_SECRET, "licensing", principal), **(headers or {})}
        return self.client.open(path, method=method, json=body, headers=all_headers)

    def staff(self, method, path, body=None, **kwargs):
        return self.call(method, path, body, user="staff-1", staff=True, **kwargs)

    def member(self, user_id: str, customer_number: str, rights=("licenses",), active=True):
        with self.database.unit_of_work() as session:
            memberships.apply(session, membership_event(user_id, customer_number, rights, active))

    def customer(self, company_id: str, name: str = "Účetnictví Novák s.r.o.") -> str:
        answer = self.staff(
            "POST",
            "/api/v1/admin/customers",
            {"company_id": company_id, "company_name": name, "billing_address": ADDRESS},
        )
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()["customer_number"]

    def partner(self, name: str = "Softwarový dům s.r.o.") -> str:
        return self.staff("POST", "/api/v1/admin/partners", {"name": name}).get_json()["api_key"]

    def sell(self, api_key: str, key: str, sale: dict):
        headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": key}
        return self.client.post("/api/v1/partner/sales", json=sale, headers=headers)

    def events(self, type_: str) -> list[dict]:
        with self.database.unit_of_work() as session:
            rows = session.execute(
                select(outbox.c.body).where(outbox.c.routing_key == type_).order_by(outbox.c.id)
            ).all()
        return [json.loads(row.body)["data"] for row in rows]


def sale(partner_sale_id="S-1", company_id="27082440", **changes) -> dict:
    return {
        "partner_sale_id": partner_sale_id,
        "customer": {"company_id": company_id, "company_name": "Stavebniny Morava a.s.", "billing_address": ADDRESS},
        "product": "ucetnictvi",
        "edition": "Jazz",
        "add_ons": ["kasa"],
        "seats": 3,
        "sold_on": "2026-11-20",
        **changes,
    }


@pytest.fixture
def licensing(new_database, settings_for):
    url = new_database("licensing")
    migrations.upgrade("licensing", url)
    app = create_app(settings_for("licensing", url))
    api = LicensingApi(app)
    assert api.staff("POST", "/api/v1/admin/products", PRODUCT).status_code == 201
    yield api
    api.database.dispose()
