"""The license pages in Chromium against the real suite (every Procfile process, PostgreSQL,
RabbitMQ, mails through a real SMTP server): staff sells a license directly and a partner
sells another; the customer's administrator sees the direct one, registers the partner's
with its installation number (a typo first), and then sees both."""

from __future__ import annotations

import secrets
import uuid
from datetime import date, timedelta

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import STAFF
from tests.browser.test_identity_flow import mailed_link, sign_in
from tests.support import valid_company_id, wait_until

pytestmark = pytest.mark.browser

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


def created(response: requests.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def with_typo(number: str) -> str:
    """The same number with its first character mistyped: the check character catches it."""
    wrong = ALPHABET[(ALPHABET.index(number[0]) + 1) % len(ALPHABET)]
    return wrong + number[1:]


def test_the_administrator_sees_direct_licenses_and_registers_a_partner_sale(suite, smtp_inbox, browser):
    gateway = suite.web_url("gateway")
    public_url = suite.env["PUBLIC_URL"]
    staff = requests.post(f"{gateway}/api/v1/sessions", json=STAFF, timeout=10)
    assert staff.status_code == 201, staff.text
    as_staff = {"Authorization": f"Bearer {staff.json()['token']}"}

    # The catalogue, a customer, a direct sale, a partner and the partner's sale.
    ico = valid_company_id(secrets.randbelow(10_000_000))
    address = {"street": "Vinohradská 12", "city": "Praha", "postal_code": "12000", "country": "CZ"}
    company = "Pekárna U Mostu s.r.o."
    number = str(
        created(
            requests.post(
                f"{gateway}/api/v1/admin/customers",
                json={"company_id": ico, "company_name": company, "billing_address": address},
                headers=as_staff,
                timeout=10,
            )
        )["customer_number"]
    )
    created(
        requests.post(
            f"{gateway}/api/v1/admin/products",
            json={"code": "ucetnictvi", "name": "Účetnictví", "editions": ["Standard", "Premium"], "add_ons": ["Mzdy"]},
            headers=as_staff,
            timeout=10,
        )
    )
    support_until = date.today() + timedelta(days=400)
    direct = created(
        requests.post(
            f"{gateway}/api/v1/admin/licenses",
            json={
                "customer_number": number,
                "product": "ucetnictvi",
                "edition": "Premium",
                "add_ons": ["Mzdy"],
                "seats": 3,
                "support_until": support_until.isoformat(),
            },
            headers=as_staff,
            timeout=10,
        )
    )["installation_number"]
    partner = created(
        requests.post(f"{gateway}/api/v1/admin/partners", json={"name": "Alfa Software"}, headers=as_staff, timeout=10)
    )
    sold = created(
        requests.post(
            f"{gateway}/api/v1/partner/sales",
            json={
                "partner_sale_id": f"ALFA-{uuid.uuid4().hex[:8]}",
                "customer": {
                    "company_id": ico,
                    "company_name": company,
                    "customer_number": number,
                    "billing_address": address,
                },
                "product": "ucetnictvi",
                "edition": "Standard",
                "add_ons": [],
                "seats": 1,
                "sold_on": date.today().isoformat(),
            },
            headers={"Authorization": f"Bearer {partner['api_key']}", "Idempotency-Key": uuid.uuid4().hex},
            timeout=10,
        )
    )
    assert sold["status"] == "unregistered"
    from_partner = sold["installation_number"]
    wait_until(
        lambda: requests.get(f"{gateway}/api/v1/admin/customer-profiles/{number}", headers=as_staff, timeout=10).ok,
        timeout=30,
        message="the new customer reaching identity",
    )

    admin = {"email": "petra@pekarna.example", "password": "Chleba s máslem 2026", "name": "Petra Pekařová"}
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway)
    page = context.new_page()
    try:
        page.goto(gateway + "/register")
        page.get_by_label("ID zákazníka").fill(number)
        page.get_by_label("IČ", exact=True).fill(ico)
        page.get_by_label("Vaše jméno").fill(admin["name"])
        page.get_by_label("E-mailová adresa").fill(admin["email"])
        page.get_by_label("Heslo").fill(admin["password"])
        page.get_by_role("button", name="Dokončit registraci").click()
        page.wait_for_url(gateway + "/register/sent")
        page.goto(mailed_link(smtp_inbox, admin["email"], "confirm", public_url))
        page.get_by_role("button", name="Potvrdit registraci").click()
        assert page.locator("h1").inner_text() == "Registrace potvrzena"
        sign_in(page, gateway, admin["email"], admin["password"])

        # The administrator holds every right: the licenses are in the menu.
        menu = page.get_by_role("navigation", name="Hlavní navigace")
        menu.get_by_role("link", name="Licence", exact=True).click()
        page.wait_for_url(f"{gateway}/customers/{number}/licenses")
        # Licensing learns of the new membership from identity's event: until then, not found.
        wait_until(
            lambda: page.goto(f"{gateway}/customers/{number}/licenses").status == 200,
            timeout=30,
            interval=0.5,
            message="licensing knowing the new administrator",
        )
        assert page.locator("h1").inner_text() == "Licence"
        row = page.locator("tbody tr", has_text=direct)
        assert "Účetnictví" in row.inner_text() and "Premium" in row.inner_text() and "Mzdy" in row.inner_text()
        assert "přímo od nás" in row.inner_text()
        until = f"{support_until.day}. {support_until.month}. {support_until.year}"
        assert row.locator(".support-active").inner_text() == f"platí do {until}"
        assert page.locator("tbody tr", has_text=from_partner).count() == 0  # not registered yet

        # The copy button (JavaScript) puts the number on the clipboard.
        row.get_by_role("button", name=f"Kopírovat instalační číslo {direct}").click()
        expect(row.get_by_role("button")).to_have_text("Zkopírováno")  # the clipboard answers asynchronously
        assert page.evaluate("navigator.clipboard.readText()") == direct

        # Register the partner's sale: a typo first, caught by the check character.
        menu = page.get_by_role("navigation", name="Hlavní navigace")
        menu.get_by_role("link", name="Registrace produktu").click()
        page.wait_for_url(f"{gateway}/customers/{number}/product-registration")
        field = page.get_by_label("Instalační číslo")
        field.fill(with_typo(from_partner))
        page.get_by_role("button", name="Zaregistrovat produkt").click()
        error = page.locator("#f-installation-number-error")
        assert "překlep" in error.inner_text()
        assert field.get_attribute("aria-invalid") == "true"
        assert field.input_value() == with_typo(from_partner)  # kept, to be corrected

        # Typed as people do: small letters, spaces instead of dashes.
        field.fill(from_partner.lower().replace("-", " "))
        page.get_by_role("button", name="Zaregistrovat produkt").click()
        page.wait_for_url(f"{gateway}/customers/{number}/licenses?registered={from_partner}")
        assert (
            f"Produkt s instalačním číslem {from_partner} je zaregistrovaný"
            in page.get_by_role("status").first.inner_text()
        )
        registered = page.locator("tbody tr", has_text=from_partner)
        assert "od partnera Alfa Software" in registered.inner_text()
        assert "Standard" in registered.inner_text()
        assert registered.locator(".support-active").inner_text().startswith("platí do ")
        assert page.locator("tbody tr", has_text=direct).count() == 1

        # The CSV link downloads the same rows, with this browser's session.
        csv = page.request.get(gateway + page.get_by_role("link", name="Stáhnout jako CSV").get_attribute("href"))
        assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
        assert direct in csv.text() and from_partner in csv.text()

        # Registering it again says so.
        page.goto(f"{gateway}/customers/{number}/product-registration")
        page.get_by_label("Instalační číslo").fill(from_partner)
        page.get_by_role("button", name="Zaregistrovat produkt").click()
        assert "už je zaregistrovaný" in page.get_by_role("alert").inner_text()
    finally:
        context.close()
