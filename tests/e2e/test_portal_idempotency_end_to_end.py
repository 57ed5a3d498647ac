"""The portal's forms sent twice through the real gateway and services: the same rendering of a
form (the same hidden `idempotency_key`) posted twice, as a double click or a resent page
would, creates one thing, and both sendings lead the person to the same place (api.md,
"Retries": the service answers the second with the first answer). Forum topic, member
invitation and product registration."""

from __future__ import annotations

import re
import uuid
from datetime import date

import pytest
import requests

from tests.e2e.test_identity_end_to_end import administrator_of
from tests.gateway.test_portal_idempotency import rendered_form
from tests.support import valid_company_id

COMPANY_ID, COMPANY = valid_company_id(4301), "Dvojklik s.r.o."
PRODUCT = {"code": "sklad", "name": "Skladové hospodářství", "editions": ["Standard"], "add_ons": []}
ADDRESS = {"street": "Nádražní 1", "city": "Plzeň", "postal_code": "30100", "country": "CZ"}


@pytest.fixture(scope="module")
def administrator(gateway, staff, mailbox) -> tuple[str, dict]:
    """A profile's administrator: (customer number, auth headers)."""
    return administrator_of(gateway, staff, mailbox, COMPANY_ID, COMPANY, "dvojklik@example.com")


@pytest.fixture
def browser(administrator) -> requests.Session:
    """The administrator's browser: their session in the portal's cookie."""
    session = requests.Session()
    session.cookies.set("cc_session", administrator[1]["Authorization"].removeprefix("Bearer "))
    return session


def send_twice(browser, gateway: str, page: str, action: str, data: dict) -> list[requests.Response]:
    """Open the page once and send its form twice, hidden fields and all."""
    shown = browser.get(f"{gateway}{page}", timeout=10)
    assert shown.status_code == 200, shown.text
    hidden = rendered_form(shown.text, action)
    assert hidden.get("idempotency_key"), "the form carries no idempotency key"
    return [browser.post(f"{gateway}{action}", data=data | hidden, allow_redirects=False, timeout=10) for _ in "12"]


def assert_same_place(answers: list[requests.Response]) -> str:
    for answer in answers:
        shown = re.findall(r'<p class="alert" role="alert"[^>]*>([^<]*)</p>', answer.text)
        assert answer.status_code == 303, f"{answer.status_code}: {shown or answer.text[:500]}"
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    return answers[0].headers["Location"]


def test_a_forum_topic_sent_twice_is_one_topic(gateway, staff, browser, administrator):
    category = requests.post(
        f"{gateway}/api/v1/admin/forum/categories", json={"name": "Dvojklik"}, headers=staff, timeout=10
    )
    assert category.status_code == 201, category.text
    category_id = category.json()["id"]
    title = f"Dvakrát odeslané téma {uuid.uuid4().hex[:6]}"
    answers = send_twice(
        browser,
        gateway,
        f"/forum/categories/{category_id}/new",
        f"/forum/categories/{category_id}/new",
        {"title": title, "body": "Stačí jednou."},
    )
    location = assert_same_place(answers)
    assert location.startswith("/forum/topics/")
    topics = requests.get(
        f"{gateway}/api/v1/forum/categories/{category_id}/topics", headers=administrator[1], timeout=10
    ).json()["items"]
    assert [topic["title"] for topic in topics].count(title) == 1


def test_an_invitation_sent_twice_is_one_member(gateway, browser, administrator):
    number, admin = administrator
    email = f"pozvany-{uuid.uuid4().hex[:6]}@example.com"
    page = f"/customers/{number}/users"
    answers = send_twice(browser, gateway, page, page, {"name": "Pozvaný", "email": email, "rights": ["news"]})
    assert assert_same_place(answers) == f"/customers/{number}/users?done=invited"
    members = requests.get(f"{gateway}/api/v1/customers/{number}/users", headers=admin, timeout=10).json()["items"]
    assert [member["email"] for member in members].count(email) == 1


def test_a_product_registration_sent_twice_registers_once(gateway, staff, browser, administrator):
    number, admin = administrator
    assert requests.post(f"{gateway}/api/v1/admin/products", json=PRODUCT, headers=staff, timeout=10).ok
    partner = requests.post(f"{gateway}/api/v1/admin/partners", json={"name": "Prodejce"}, headers=staff, timeout=10)
    sale = requests.post(
        f"{gateway}/api/v1/partner/sales",
        json={
            "partner_sale_id": f"dvojklik-{uuid.uuid4().hex[:6]}",
            "customer": {"company_id": COMPANY_ID, "company_name": COMPANY, "billing_address": ADDRESS},
            "product": PRODUCT["code"],
            "edition": "Standard",
            "seats": 1,
            "sold_on": date.today().isoformat(),
        },
        headers={"Authorization": f"Bearer {partner.json()['api_key']}", "Idempotency-Key": str(uuid.uuid4())},
        timeout=10,
    )
    assert sale.status_code == 201, sale.text
    installation = sale.json()["installation_number"]
    page = f"/customers/{number}/product-registration"
    answers = send_twice(browser, gateway, page, page, {"installation_number": installation})
    assert assert_same_place(answers) == f"/customers/{number}/licenses?registered={installation}"
    licenses = requests.get(f"{gateway}/api/v1/customers/{number}/licenses", headers=admin, timeout=10).json()
    assert [item["installation_number"] for item in licenses["items"]].count(installation) == 1
