"""The identity pages end to end in Chromium against the real suite (every Procfile process,
PostgreSQL, RabbitMQ, mails through a real SMTP server): a company registers, confirms from
the e-mail, invites a colleague with one right, and the colleague sees only what that allows."""

from __future__ import annotations

import re
import secrets

import pytest
import requests

from tests.browser.conftest import STAFF
from tests.support import valid_company_id, wait_until

pytestmark = pytest.mark.browser


def mailed_link(inbox, recipient: str, page: str, public_url: str) -> str:
    body = inbox.wait_for(recipient, timeout=60).get_body(("plain",)).get_content()
    match = re.search(rf"{re.escape(public_url)}/{page}\?token=[A-Za-z0-9_\-]+", body)
    assert match, f"no {public_url}/{page}?token= link in: {body}"
    return match.group(0)


def sign_in(page, gateway: str, email: str, password: str) -> None:
    page.goto(gateway + "/sign-in")
    page.get_by_label("E-mailová adresa").fill(email)
    page.get_by_label("Heslo").fill(password)
    page.get_by_role("button", name="Přihlásit se").click()
    page.wait_for_url(gateway + "/")


def test_register_confirm_invite_and_a_colleague_with_one_right(suite, smtp_inbox, browser):
    gateway = suite.web_url("gateway")
    public_url = suite.env["PUBLIC_URL"]
    staff = requests.post(f"{gateway}/api/v1/sessions", json=STAFF, timeout=10)
    assert staff.status_code == 201, staff.text
    staff_headers = {"Authorization": f"Bearer {staff.json()['token']}"}
    ico = valid_company_id(secrets.randbelow(10_000_000))
    created = requests.post(
        f"{gateway}/api/v1/admin/customers",
        json={
            "company_id": ico,
            "company_name": "Účetní kancelář Vltava s.r.o.",
            "billing_address": {"street": "Nábřeží 4", "city": "Praha", "postal_code": "11000"},
        },
        headers=staff_headers,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    number = str(created.json()["customer_number"])
    wait_until(
        lambda: (
            requests.get(f"{gateway}/api/v1/admin/customer-profiles/{number}", headers=staff_headers, timeout=10).ok
        ),
        timeout=30,
        message="the new customer reaching identity",
    )

    admin = {"email": "marie@vltava.example", "password": "Vltava teče Prahou 2026", "name": "Marie Vltavská"}
    colleague = {"email": "jan@vltava.example", "password": "jan má rád stahování", "name": "Jan Stahovač"}
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        # Register the customer: both numbers, and the first person becomes its administrator.
        page.goto(gateway + "/register")
        page.get_by_label("ID zákazníka").fill(number)
        page.get_by_label("IČ", exact=True).fill(ico)
        page.get_by_label("Vaše jméno").fill(admin["name"])
        page.get_by_label("E-mailová adresa").fill(admin["email"])
        page.get_by_label("Heslo").fill(admin["password"])
        page.get_by_role("button", name="Dokončit registraci").click()
        page.wait_for_url(gateway + "/register/sent")
        assert page.locator("h1").inner_text() == "Zkontrolujte svůj e-mail"

        # The confirmation link from the mail: opening it changes nothing, the button confirms.
        page.goto(mailed_link(smtp_inbox, admin["email"], "confirm", public_url))
        page.get_by_role("button", name="Potvrdit registraci").click()
        assert page.locator("h1").inner_text() == "Registrace potvrzena"

        sign_in(page, gateway, admin["email"], admin["password"])
        assert page.locator("h1").inner_text() == f"Dobrý den, {admin['name']}"
        assert "Účetní kancelář Vltava s.r.o." in page.locator("main").inner_text()

        # Invite a colleague with the downloads right only.
        menu = page.get_by_role("navigation", name="Hlavní navigace")
        menu.get_by_role("link", name="Uživatelé a práva").click()
        page.wait_for_url(f"{gateway}/customers/{number}/users")
        page.get_by_label("Jméno", exact=True).fill(colleague["name"])
        page.get_by_label("E-mailová adresa", exact=True).fill(colleague["email"])
        page.get_by_label("Stahování", exact=True).check()
        page.get_by_role("button", name="Přidat uživatele").click()
        page.wait_for_url(f"{gateway}/customers/{number}/users?done=invited")
        assert "Uživatel byl přidán" in page.get_by_role("status").inner_text()
        row = page.locator("tbody tr", has_text=colleague["email"])
        assert row.get_by_label(f"Stahování: {colleague['name']}").is_checked()
        assert not row.get_by_label(f"Licence: {colleague['name']}").is_checked()
        page.get_by_role("button", name="Odhlásit se").click()

        # The colleague sets a password from the invitation mail and signs in.
        page.goto(mailed_link(smtp_inbox, colleague["email"], "invitation", public_url))
        page.get_by_label("Zvolte heslo").fill(colleague["password"])
        page.get_by_role("button", name="Nastavit heslo").click()
        assert page.locator("h1").inner_text() == "Váš účet je připraven"
        sign_in(page, gateway, colleague["email"], colleague["password"])
        assert page.locator("h1").inner_text() == f"Dobrý den, {colleague['name']}"

        # Only what the downloads right allows: no users, no contacts, in the menu or by URL.
        menu = page.get_by_role("navigation", name="Hlavní navigace").inner_text()
        assert "Uživatelé a práva" not in menu and "Adresy a zasílání" not in menu
        assert "Můj účet" in menu
        for path in ("users", "contacts"):
            refused = page.goto(f"{gateway}/customers/{number}/{path}")
            assert refused.status == 403
            assert page.locator("h1").inner_text() == "Přístup odepřen"
        account = page.goto(gateway + "/account")
        assert account.status == 200
        assert page.locator("h1").inner_text() == "Můj účet"
        profiles = page.locator(".profile-card").inner_text()
        assert "Účetní kancelář Vltava s.r.o." in profiles and "Stahování" in profiles and "Licence" not in profiles
    finally:
        context.close()
