"""Finding 6 (a revoked right kept working in licensing and distribution until their copy of
identity's memberships caught up) and finding 8 (a password change or reset left every other
session signed in).

A small suite of its own: identity, licensing and distribution on PostgreSQL, each served
over real HTTP (licensing and distribution ask identity when their copy is older than the
caller's token), and the real gateway in front. After the seeding, **no event is delivered
any more**: the broker might as well be down, so whatever counts at once here does so without
the events. Every check is the request right after the administrator's `2xx`.
"""

from __future__ import annotations

import contextlib
import importlib
import tempfile
from dataclasses import replace
from datetime import date, timedelta

import pytest

from shared import migrations
from tests.security.conftest import ADDRESS, PASSWORD, PRODUCT, Relay, _ok, _settings, assert_problem
from tests.support import serving, valid_company_id

SERVICES = ("identity", "licensing", "distribution")
ADMIN = "eva.admin@example.com"
COLLEAGUE = "petr.kolega@example.com"


@pytest.fixture(scope="module")
def suite(new_database):
    from distribution.storage import DirectoryStorage
    from gateway.app import create_app
    from identity.__main__ import ensure_staff
    from identity.demo import ensure_demo_accounts

    apps = {}
    for service in SERVICES:
        url = new_database(f"now_{service}")
        migrations.upgrade(service, url)
        app = importlib.import_module(f"{service}.app").create_app(_settings(service, url))
        app.testing = False
        apps[service] = app
    with contextlib.ExitStack() as stack:
        files = stack.enter_context(tempfile.TemporaryDirectory(prefix="rights-at-once-"))
        apps["distribution"].extensions["storage"] = DirectoryStorage(files)
        urls = {service: stack.enter_context(serving(app)) for service, app in apps.items()}
        for app in apps.values():  # licensing and distribution find identity here
            app.extensions["settings"] = replace(app.extensions["settings"], service_urls=urls)
        gateway_db = new_database("now_gateway")
        migrations.upgrade("gateway", gateway_db)
        gateway = create_app(_settings("gateway", gateway_db, service_urls=urls, upstream_timeout=20.0))
        relay = Relay(apps)
        staff = ensure_staff(apps["identity"].extensions["database"], "staff.now@example.com", PASSWORD).id
        world = _World(apps, gateway, relay, staff)
        world.seed(ensure_demo_accounts)
        yield world
        for app in [*apps.values(), gateway]:
            app.extensions["database"].dispose()


class _World:
    def __init__(self, apps, gateway, relay, staff_id):
        self.apps, self.gateway, self.relay, self.staff_id = apps, gateway, relay, staff_id
        self.client = gateway.test_client(use_cookies=False)  # bearer tokens only

    def staff_call(self, service, method, path, body=None):
        from shared import auth
        from shared.auth import Principal
        from tests.conftest import TEST_SECRET

        token = auth.issue(TEST_SECRET, service, Principal(self.staff_id, email="staff.now@example.com", staff=True))
        return self.apps[service].test_client().open(path, method=method, json=body, headers={auth.HEADER: token})

    def seed(self, ensure_demo_accounts) -> None:
        _ok(self.staff_call("licensing", "POST", "/api/v1/admin/products", PRODUCT))
        customer = {"company_id": valid_company_id(2026_1207), "company_name": "Pekárna Rychlá s.r.o."}
        self.customer = _ok(
            self.staff_call("licensing", "POST", "/api/v1/admin/customers", customer | {"billing_address": ADDRESS})
        )["customer_number"]
        support = (date.today() + timedelta(days=365)).isoformat()
        license_ = {"customer_number": self.customer, "product": "ucetnictvi", "edition": "Jazz", "seats": 1}
        _ok(self.staff_call("licensing", "POST", "/api/v1/admin/licenses", license_ | {"support_until": support}))
        release = {
            "product": "ucetnictvi",
            "version": "2026.1",
            "kind": "full",
            "released_on": date.today().isoformat(),
        }
        release_id = _ok(self.staff_call("distribution", "POST", "/api/v1/admin/releases", release))["id"]
        stored = (
            self.apps["distribution"]
            .test_client()
            .put(
                f"/api/v1/admin/releases/{release_id}/files/setup.exe",
                data=b"installer " * 100,
                headers={
                    "Content-Type": "application/octet-stream",
                    **self._staff_header("distribution"),
                },
            )
        )
        _ok(stored)
        _ok(self.staff_call("distribution", "POST", f"/api/v1/admin/releases/{release_id}/publish"), 200)
        self.relay.deliver()
        ensure_demo_accounts(
            self.apps["identity"].extensions["settings"],
            self.customer,
            (ADMIN, "Eva Správcová", PASSWORD),
            (COLLEAGUE, "Petr Kolega", PASSWORD),
            wait=0,
        )
        self.relay.deliver()  # the last events ever delivered: from here on the broker is "down"

    def _staff_header(self, service):
        from shared import auth
        from shared.auth import Principal
        from tests.conftest import TEST_SECRET

        return {auth.HEADER: auth.issue(TEST_SECRET, service, Principal(self.staff_id, staff=True))}

    def sign_in(self, email: str, password: str = PASSWORD) -> dict:
        answer = self.client.post("/api/v1/sessions", json={"email": email, "password": password})
        assert answer.status_code == 201, answer.get_data(as_text=True)
        return {"Authorization": "Bearer " + answer.get_json()["token"]}

    def get(self, path: str, who: dict):
        return self.client.get(path, headers=who)

    def colleague_id(self, admin: dict) -> str:
        users = _ok(self.get(f"/api/v1/customers/{self.customer}/users", admin), 200)["items"]
        return next(u["id"] for u in users if u["email"] == COLLEAGUE)

    def set_rights(self, admin: dict, user_id: str, rights: list[str]) -> None:
        answer = self.client.patch(
            f"/api/v1/customers/{self.customer}/users/{user_id}", json={"rights": rights}, headers=admin
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)


def test_a_granted_right_counts_on_the_next_request_without_any_event(suite):
    admin, colleague = suite.sign_in(ADMIN), suite.sign_in(COLLEAGUE)
    licenses = f"/api/v1/customers/{suite.customer}/licenses"
    assert_problem(suite.get(licenses, colleague), 403)
    suite.set_rights(admin, suite.colleague_id(admin), ["downloads", "news", "licenses"])
    assert suite.get(licenses, colleague).status_code == 200  # no event delivered: licensing asked identity


def test_a_revoked_right_is_refused_on_the_next_request_without_any_event(suite):
    admin, colleague = suite.sign_in(ADMIN), suite.sign_in(COLLEAGUE)
    colleague_id = suite.colleague_id(admin)
    downloads = f"/api/v1/customers/{suite.customer}/downloads"
    licenses = f"/api/v1/customers/{suite.customer}/licenses"
    suite.set_rights(admin, colleague_id, ["downloads", "news", "licenses"])
    suite.relay.deliver()  # the grant reached every copy, as it normally would
    assert suite.get(licenses, colleague).status_code == 200
    listed = _ok(suite.get(downloads, colleague), 200)
    link = "/api/" + listed["items"][0]["files"][0]["url"].split("/api/", 1)[1]
    assert suite.client.get(link).status_code == 200

    # From here on no event is delivered: the broker might be down.
    suite.set_rights(admin, colleague_id, ["news"])
    assert_problem(suite.get(downloads, colleague), 403)
    assert_problem(suite.get(licenses, colleague), 403)
    # The link handed to them before the revocation stops working with it.
    assert_problem(suite.client.get(link), 403)
    assert suite.get(f"/api/v1/customers/{suite.customer}/news", colleague).status_code == 200

    removed = suite.client.delete(f"/api/v1/customers/{suite.customer}/users/{colleague_id}", headers=admin)
    assert removed.status_code == 204
    assert_problem(suite.get(f"/api/v1/customers/{suite.customer}/news", colleague), 404)
    assert_problem(suite.get(licenses, colleague), 404)


def test_a_password_change_ends_every_other_session(suite):
    laptop, phone = suite.sign_in(ADMIN), suite.sign_in(ADMIN)
    changed = suite.client.put(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": PASSWORD + " again"},
        headers=laptop,
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    try:
        assert_problem(suite.get("/api/v1/me", phone), 401)
        assert suite.get("/api/v1/me", laptop).status_code == 200
    finally:  # the old password again, for the other tests
        back = suite.client.put(
            "/api/v1/me/password",
            json={"current_password": PASSWORD + " again", "new_password": PASSWORD},
            headers=suite.sign_in(ADMIN, PASSWORD + " again"),
        )
        assert back.status_code == 200


def test_a_password_reset_ends_every_session(suite):
    from identity import tokens
    from identity.accounts import find_user

    one, two = suite.sign_in(ADMIN), suite.sign_in(ADMIN)
    database = suite.apps["identity"].extensions["database"]
    with database.unit_of_work() as session:
        raw, _ = tokens.issue(session, tokens.RESET, find_user(session, ADMIN).id, 600)
    reset = suite.client.post("/api/v1/password-resets/confirm", json={"token": raw, "password": PASSWORD})
    assert reset.status_code == 200, reset.get_data(as_text=True)
    assert_problem(suite.get("/api/v1/me", one), 401)
    assert_problem(suite.get("/api/v1/me", two), 401)
    assert suite.sign_in(ADMIN)
