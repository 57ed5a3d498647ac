"""Distribution's API on PostgreSQL, fed with the events licensing and identity would send.

A person's download link is checked with identity when it is used (links.py): `member()` also
makes the person and their membership in a real identity, served over HTTP and started the
first time a test needs one.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import replace

import pytest
from distribution.app import create_app
from distribution.handlers import HANDLERS

from shared import auth, memberships, migrations
from shared.auth import Principal
from shared.consumer import EventConsumer
from shared.events import new_envelope
from tests.conftest import TEST_SECRET
from tests.support import membership_event, serving


class Identity:
    """A real identity for distribution to ask: its own database, served on a free port."""

    def __init__(self, database_url: str, settings_for, stack: contextlib.ExitStack):
        from identity.app import create_app as create_identity

        migrations.upgrade("identity", database_url)
        self.app = create_identity(settings_for("identity", database_url))
        self.url = stack.enter_context(serving(self.app))
        stack.callback(self.app.extensions["database"].dispose)

    def grant(self, user_id: str, customer_number: str, rights) -> None:
        from identity.models import RIGHTS, CustomerProfile, Membership, User

        from shared.db import utc_now

        with self.app.extensions["database"].unit_of_work() as session:
            if session.get(CustomerProfile, customer_number) is None:
                session.add(
                    CustomerProfile(
                        customer_number=customer_number,
                        company_id="25083325",
                        company_name=f"Zákazník {customer_number}",
                        source_updated_at=utc_now(),
                    )
                )
            if session.get(User, user_id) is None:
                session.add(User(id=user_id, email=f"{user_id}-{uuid.uuid4().hex[:6]}@example.com", name=user_id))
            session.flush()
            membership = session.get(Membership, (user_id, customer_number))
            if membership is None:
                membership = Membership(user_id=user_id, customer_number=customer_number, version=1)
                session.add(membership)
            membership.administrator = "users" in rights
            membership.rights = [r for r in RIGHTS if r in rights]


class DistributionApi:
    def __init__(self, app, identity_factory=None):
        self.app = app
        self._identity_factory = identity_factory
        self._identity: Identity | None = None
        self.client = app.test_client()
        self.database = app.extensions["database"]
        self.consumer = EventConsumer(app.extensions["settings"], HANDLERS, self.database)

    def call(self, method, path, body=None, user=None, staff=False, data=None, headers=None, client="198.51.100.9"):
        principal = Principal(user or "anonymous", kind="user" if user else "anonymous", staff=staff, client=client)
        all_headers = {auth.HEADER: auth.issue(TEST_SECRET, "distribution", principal), **(headers or {})}
        if data is not None:
            return self.client.open(
                path, method=method, data=data, headers={**all_headers, "Content-Type": "application/octet-stream"}
            )
        return self.client.open(path, method=method, json=body, headers=all_headers)

    def staff(self, method, path, body=None, **kwargs):
        return self.call(method, path, body, user="staff-1", staff=True, **kwargs)

    def event(self, type_: str, data: dict, producer: str) -> None:
        self.consumer.apply(json.dumps(new_envelope(type_, data, producer, None), default=str).encode())

    def customer(self, number: str, name: str = "Účetnictví Novák s.r.o.") -> None:
        self.event(
            "licensing.customer.created",
            {"customer_number": number, "company_id": "25083325", "company_name": name},
            "licensing",
        )

    def license(
        self,
        number: str,
        installation: str,
        product="ucetnictvi",
        status="registered",
        support_until="2027-12-31",
        version=1,
        type_="licensing.license.issued",
    ):
        data = {
            "installation_number": installation,
            "customer_number": number,
            "product": product,
            "edition": "Jazz",
            "add_ons": [],
            "seats": 1,
            "channel": "direct",
            "status": status,
            "support_until": support_until,
            "version": version,
        }
        self.event(type_, data, "licensing")

    def member(self, user_id: str, number: str, rights=("downloads",)):
        with self.database.unit_of_work() as session:
            memberships.apply(session, membership_event(user_id, number, rights))
        self.identity().grant(user_id, number, rights)

    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = self._identity_factory()
            settings = self.app.extensions["settings"]
            urls = {**settings.service_urls, "identity": self._identity.url}
            self.app.extensions["settings"] = replace(settings, service_urls=urls)
        return self._identity

    def release(
        self,
        version="2026.1",
        kind="full",
        released_on="2026-06-01",
        product="ucetnictvi",
        channel="stable",
        files=None,
        publish=True,
        **extra,
    ):
        body = {
            "product": product,
            "version": version,
            "kind": kind,
            "channel": channel,
            "released_on": released_on,
            "notes": "Novinky",
            **extra,
        }
        answer = self.staff("POST", "/api/v1/admin/releases", body)
        assert answer.status_code == 201, answer.get_json()
        release_id = answer.get_json()["id"]
        for name, content in (files or {"setup.exe": b"installer bytes " * 1000}).items():
            uploaded = self.staff("PUT", f"/api/v1/admin/releases/{release_id}/files/{name}", data=content)
            assert uploaded.status_code == 201, uploaded.get_json()
        if publish:
            assert self.staff("POST", f"/api/v1/admin/releases/{release_id}/publish").status_code == 200
        return release_id


@pytest.fixture
def distribution(new_database, settings_for, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTRIBUTION_STORAGE_DIR", str(tmp_path / "files"))
    url = new_database("distribution")
    migrations.upgrade("distribution", url)
    app = create_app(settings_for("distribution", url, public_url="https://portal.example"))
    with contextlib.ExitStack() as stack:
        api = DistributionApi(app, lambda: Identity(new_database("identity"), settings_for, stack))
        yield api
        api.database.dispose()
