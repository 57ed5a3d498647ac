"""The home page after signing in, in Chromium against the real suite (every Procfile process,
PostgreSQL, RabbitMQ): the profile view of the customer's company, its licenses with support
ending soon highlighted, the newest release, an upcoming training course and the forum's
latest topic; on a phone and in English too; and with the forum stopped, the page still
shows the rest, with a polite notice where the forum's part was.
Screenshots: /tmp/home-cs.png, /tmp/home-phone.png, /tmp/home-en.png, /tmp/home-degraded.png."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import STAFF
from tests.browser.test_identity_flow import sign_in
from tests.support import api_session, ok, valid_company_id, wait_until

pytestmark = pytest.mark.browser

ADMIN = {"email": "marta@pila.example", "password": "Piliny a hobliny 2026", "name": "Marta Pilařová"}
COMPANY = "Pila Na Vršku s.r.o."
NOTICE = "Tuto část teď nelze zobrazit, zkuste to prosím za chvíli."


def fits_the_screen(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_the_home_page_is_the_profile_view_and_survives_a_stopped_forum(suite, smtp_inbox, browser):
    gateway = suite.web_url("gateway")
    staff = api_session(gateway, STAFF)

    # A customer with two licenses (one's support ends in 30 days), a published release, a
    # training course, a forum category.
    ico = valid_company_id(secrets.randbelow(10_000_000))
    address = {"street": "Lesní 8", "city": "Jihlava", "postal_code": "58601", "country": "CZ"}
    number = str(
        ok(
            staff.post(
                f"{gateway}/api/v1/admin/customers",
                json={"company_id": ico, "company_name": COMPANY, "billing_address": address},
            )
        )["customer_number"]
    )
    for code, name in (("ucetnictvi", "Účetnictví"), ("sklady", "Sklady")):
        ok(staff.post(f"{gateway}/api/v1/admin/products", json={"code": code, "name": name, "editions": ["Standard"]}))
    expiring = date.today() + timedelta(days=30)
    installation_numbers = {}
    for code, support_until in (("ucetnictvi", date.today() + timedelta(days=400)), ("sklady", expiring)):
        license_ = {
            "customer_number": number,
            "product": code,
            "edition": "Standard",
            "support_until": str(support_until),
        }
        installation_numbers[code] = ok(staff.post(f"{gateway}/api/v1/admin/licenses", json=license_))[
            "installation_number"
        ]
    release = ok(
        staff.post(
            f"{gateway}/api/v1/admin/releases",
            json={"product": "ucetnictvi", "version": "2026.2", "kind": "full", "released_on": str(date.today())},
        )
    )["id"]
    ok(
        staff.put(
            f"{gateway}/api/v1/admin/releases/{release}/files/ucetnictvi-2026.2.exe",
            data=b"MZ installer",
            headers={"Content-Type": "application/octet-stream"},
        )
    )
    ok(staff.post(f"{gateway}/api/v1/admin/releases/{release}/publish"))
    starts = (datetime.now(UTC) + timedelta(days=20)).replace(hour=8, minute=0, second=0, microsecond=0)
    training = {"kind": "training", "title": "Uzávěrka roku v praxi", "body": "Celodenní školení."}
    ok(staff.post(f"{gateway}/api/v1/admin/news", json=training | {"starts_at": starts.isoformat(), "city": "Brno"}))
    category = ok(staff.post(f"{gateway}/api/v1/admin/forum/categories", json={"name": "Účetnictví", "position": 1}))

    # Its administrator registers (by the API: the registration pages have tests of their own)
    # and asks in the forum.
    wait_until(
        lambda: staff.get(f"{gateway}/api/v1/admin/customer-profiles/{number}", timeout=10).ok,
        timeout=30,
        message="the new customer reaching identity",
    )
    ok(requests.post(f"{gateway}/api/v1/registrations", json=ADMIN | {"customer_number": number, "company_id": ico}))
    token = smtp_inbox.link_token(smtp_inbox.wait_for(ADMIN["email"], timeout=60), "confirm")
    ok(requests.post(f"{gateway}/api/v1/registrations/confirm", json={"token": token}))
    admin = api_session(gateway, ADMIN)
    topic = ok(
        admin.post(
            f"{gateway}/api/v1/forum/topics",
            json={"category_id": category["id"], "title": "Inventura skladu na konci roku", "body": "Jak na ni?"},
        )
    )

    # Licensing and distribution learn of the membership (and the license) from events.
    def complete() -> bool:
        answer = admin.get(f"{gateway}/api/v1/customers/{number}/overview", timeout=10)
        view = answer.json() if answer.ok else {}
        return bool(view.get("licenses") and view.get("downloads") and view.get("news") and view.get("forum"))

    wait_until(complete, timeout=45, interval=0.5, message="every part of the profile view")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, gateway, ADMIN["email"], ADMIN["password"])
        assert page.locator("h1").inner_text() == f"Dobrý den, {ADMIN['name']}"

        company = page.locator("section.overview-company")
        expect(company.get_by_role("heading", name="Firma")).to_be_visible()
        expect(company).to_contain_text(COMPANY)
        expect(company).to_contain_text(f"ID zákazníka {number}")
        expect(company).to_contain_text("Lesní 8")
        expect(company.get_by_role("link", name="Změnit adresy a způsob zasílání")).to_have_attribute(
            "href", f"/customers/{number}/contacts"
        )

        licenses = page.locator("section.overview-licenses")
        soon = licenses.locator("li.support-row-expiring")
        expect(soon).to_have_count(1)
        expect(soon).to_contain_text("Sklady")
        expect(soon).to_contain_text(installation_numbers["sklady"])
        expect(soon.locator(".support-expiring")).to_have_text("SERVIS končí za 30 dní")
        assert soon.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"  # highlighted
        expect(licenses.locator("li.support-row-active")).to_contain_text(installation_numbers["ucetnictvi"])

        expect(page.locator("section.overview-downloads")).to_contain_text("Účetnictví Verze 2026.2")
        expect(page.locator("section.overview-news")).to_contain_text("Uzávěrka roku v praxi")
        forum = page.locator("section.overview-forum")
        link = forum.get_by_role("link", name="Inventura skladu na konci roku")
        expect(link).to_have_attribute("href", f"/forum/topics/{topic['id']}")
        expect(forum).to_contain_text("Účetnictví")
        expect(page.get_by_text(NOTICE)).to_have_count(0)
        page.screenshot(path="/tmp/home-cs.png", full_page=True)

        link.click()
        page.wait_for_url(f"{gateway}/forum/topics/{topic['id']}")

        # On a phone: one column, nothing sideways.
        phone = browser.new_context(
            viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True, has_touch=True
        )
        try:
            small = phone.new_page()
            sign_in(small, gateway, ADMIN["email"], ADMIN["password"])
            expect(small.locator("section.overview-licenses li.support-row-expiring")).to_be_visible()
            assert fits_the_screen(small)
            small.screenshot(path="/tmp/home-phone.png", full_page=True)
        finally:
            phone.close()

        # In English.
        page.goto(gateway + "/?lang=en")
        assert page.locator("h1").inner_text() == f"Hello, {ADMIN['name']}"
        expect(page.locator("section.overview-licenses .support-expiring")).to_have_text("Support ends in 30 days")
        expect(page.locator("section.overview-forum").get_by_role("heading")).to_have_text("Recent forum activity")
        page.screenshot(path="/tmp/home-en.png", full_page=True)

        # The forum stops: its part says so politely, the rest is still there.
        suite.stop("forum")
        response = page.goto(gateway + "/?lang=cs")
        assert response.status == 200
        expect(page.locator("section.overview-forum")).to_contain_text(NOTICE)
        expect(page.get_by_text(NOTICE)).to_have_count(1)
        expect(page.locator("section.overview-company")).to_contain_text(COMPANY)
        expect(page.locator("section.overview-licenses li.support-row-expiring")).to_contain_text("Sklady")
        expect(page.locator("section.overview-downloads")).to_contain_text("2026.2")
        page.screenshot(path="/tmp/home-degraded.png", full_page=True)
    finally:
        context.close()
