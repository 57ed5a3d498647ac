"""The suite's real processes working together through the gateway and the broker."""

from __future__ import annotations

import time

import psycopg
import pytest
import requests
from sqlalchemy.engine import make_url

from tests.e2e.conftest import STAFF
from tests.support import wait_until

ADDRESS = {"street": "Náměstí 5", "city": "Brno", "postal_code": "60200"}


def test_a_customer_created_in_licensing_reaches_identity_and_distribution(gateway, staff, suite):
    response = requests.post(
        f"{gateway}/api/v1/admin/customers",
        json={"company_id": "25596641", "company_name": "Stavby Brno a.s.", "billing_address": ADDRESS},
        headers={**staff, "X-Correlation-ID": "e2e-correlation-1"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    number = response.json()["customer_number"]
    assert response.headers["X-Correlation-ID"] == "e2e-correlation-1"

    def identity_profile():
        answer = requests.get(f"{gateway}/api/v1/admin/customer-profiles/{number}", headers=staff, timeout=10)
        return answer.json() if answer.status_code == 200 else None

    profile = wait_until(identity_profile, timeout=20, interval=0.05, message="the profile in identity")
    assert profile["company_id"] == "25596641" and profile["delivery_method"] == "download"

    # distribution keeps its own replica (for shipping), filled by its own consumer
    url = make_url(suite.env["DISTRIBUTION_DATABASE_URL"]).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
        wait_until(
            lambda: connection.execute(
                "SELECT company_name FROM customers WHERE customer_number = %s", (number,)
            ).fetchone(),
            message="the customer in distribution",
        )
    # the correlation id travelled with the event
    url = make_url(suite.env["LICENSING_DATABASE_URL"]).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
        row = connection.execute("SELECT correlation_id, published_at FROM outbox").fetchone()
    assert row[0] == "e2e-correlation-1" and row[1] is not None


def test_the_same_company_twice_is_a_conflict(gateway, staff):
    body = {"company_id": "27074358", "company_name": "Jednou s.r.o.", "billing_address": ADDRESS}
    assert requests.post(f"{gateway}/api/v1/admin/customers", json=body, headers=staff, timeout=10).status_code == 201
    again = requests.post(f"{gateway}/api/v1/admin/customers", json=body, headers=staff, timeout=10)
    assert again.status_code == 409 and again.headers["Content-Type"] == "application/problem+json"


def test_admin_routes_need_staff_and_reject_a_bad_company_id(gateway, staff):
    body = {"company_id": "12345678", "company_name": "Špatné IČ s.r.o.", "billing_address": ADDRESS}
    assert requests.post(f"{gateway}/api/v1/admin/customers", json=body, timeout=10).status_code == 401
    bad = requests.post(f"{gateway}/api/v1/admin/customers", json=body, headers=staff, timeout=10)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "company_id"


def test_sign_in_failures_get_one_generic_answer(gateway):
    wrong_password = requests.post(
        f"{gateway}/api/v1/sessions", json={**STAFF, "password": "wrong-password"}, timeout=10
    )
    unknown = requests.post(
        f"{gateway}/api/v1/sessions", json={"email": "nobody@example.com", "password": "x" * 12}, timeout=10
    )
    assert wrong_password.status_code == unknown.status_code == 401
    assert wrong_password.json() == unknown.json()


def test_a_client_cannot_send_its_own_identity_header(gateway):
    forged = requests.get(f"{gateway}/api/v1/me", headers={"X-Identity": "anything", "X-User-Id": "1"}, timeout=10)
    assert forged.status_code == 401


def test_sign_out_ends_the_session_at_once_and_cookies_need_csrf(gateway):
    browser = requests.Session()
    signed_in = browser.post(f"{gateway}/api/v1/sessions", json=STAFF, timeout=10)
    cookie = signed_in.cookies.get("cc_session")
    assert (
        cookie and "HttpOnly" in signed_in.headers["Set-Cookie"] and "SameSite=Lax" in signed_in.headers["Set-Cookie"]
    )
    assert browser.get(f"{gateway}/api/v1/me", timeout=10).json()["staff"] is True
    # A state-changing request with the cookie but without the CSRF token is refused.
    assert browser.delete(f"{gateway}/api/v1/sessions/current", timeout=10).status_code == 403
    ended = browser.delete(
        f"{gateway}/api/v1/sessions/current", headers={"X-CSRF-Token": signed_in.json()["csrf_token"]}, timeout=10
    )
    assert ended.status_code == 204
    after = requests.get(f"{gateway}/api/v1/me", cookies={"cc_session": cookie}, timeout=10)
    assert after.status_code == 401
    bearer = requests.get(
        f"{gateway}/api/v1/me", headers={"Authorization": f"Bearer {signed_in.json()['token']}"}, timeout=10
    )
    assert bearer.status_code == 401


@pytest.mark.fault
def test_a_service_that_is_down_gives_503_on_its_routes_only(gateway, staff, suite):
    suite.stop("forum")
    try:
        started = time.monotonic()
        down = requests.get(f"{gateway}/api/v1/forum/categories", headers=staff, timeout=10)
        assert time.monotonic() - started < float(suite.env["UPSTREAM_TIMEOUT"]) + 1
        assert down.status_code == 503
        assert down.headers["Content-Type"] == "application/problem+json" and int(down.headers["Retry-After"]) > 0
        assert down.json()["service"] == "forum"
        # everything else keeps working
        assert requests.get(f"{gateway}/api/v1/me", headers=staff, timeout=10).status_code == 200
        assert requests.get(f"{gateway}/api/v1/news", headers=staff, timeout=10).status_code == 200
    finally:
        suite.start_one("forum")
        suite.wait_ready(("forum",))
    assert requests.get(f"{gateway}/api/v1/forum/categories", headers=staff, timeout=10).status_code == 200
