"""The downloads, download history, documents and news pages in Chromium against the real
suite (every Procfile process, PostgreSQL, RabbitMQ, mails through a real SMTP server):
staff release a product version with a file, publish a document and announce a training
course; the customer's administrator downloads the file by its signed link (the browser's
own download, with the right bytes), finds it in the history, and reads documents and news."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import STAFF
from tests.browser.test_identity_flow import mailed_link, sign_in
from tests.support import ok, valid_company_id, wait_until

pytestmark = pytest.mark.browser


def test_the_administrator_downloads_a_release_and_reads_documents_and_news(suite, smtp_inbox, browser):
    gateway = suite.web_url("gateway")
    public_url = suite.env["PUBLIC_URL"]
    staff = requests.Session()
    staff.headers["Authorization"] = "Bearer " + ok(staff.post(f"{gateway}/api/v1/sessions", json=STAFF))["token"]

    # A customer with a license for a product whose support runs for another year.
    ico = valid_company_id(secrets.randbelow(10_000_000))
    address = {"street": "Nádražní 5", "city": "Brno", "postal_code": "60200", "country": "CZ"}
    number = str(
        ok(
            staff.post(
                f"{gateway}/api/v1/admin/customers",
                json={"company_id": ico, "company_name": "Mlýn Dolní s.r.o.", "billing_address": address},
            )
        )["customer_number"]
    )
    product = f"ucto{secrets.token_hex(3)}"
    ok(
        staff.post(
            f"{gateway}/api/v1/admin/products",
            json={"code": product, "name": "Účetnictví", "editions": ["Standard"], "add_ons": []},
        )
    )
    support_until = date.today() + timedelta(days=365)
    ok(
        staff.post(
            f"{gateway}/api/v1/admin/licenses",
            json={
                "customer_number": number,
                "product": product,
                "edition": "Standard",
                "support_until": str(support_until),
            },
        )
    )

    # A full release with one small file, published; a document; a training course next month.
    content = secrets.token_bytes(6 * 1024 + 123)
    checksum = hashlib.sha256(content).hexdigest()
    release_id = ok(
        staff.post(
            f"{gateway}/api/v1/admin/releases",
            json={
                "product": product,
                "version": "2026.1",
                "kind": "full",
                "channel": "stable",
                "released_on": date.today().isoformat(),
                "notes": "Nová verze:\n- **rychlejší** tisk\n\n<script>window.pwned = true</script>",
            },
        )
    )["id"]
    file_name = "ucetnictvi-2026.1.exe"
    stored = ok(
        staff.put(
            f"{gateway}/api/v1/admin/releases/{release_id}/files/{file_name}",
            data=content,
            headers={"Content-Type": "application/octet-stream"},
        )
    )
    assert stored["sha256"] == checksum and stored["size"] == len(content)
    ok(staff.post(f"{gateway}/api/v1/admin/releases/{release_id}/publish"))
    document_id = ok(
        staff.post(f"{gateway}/api/v1/admin/documents", json={"title": "Ceník 2026", "description": "Platí od ledna."})
    )["id"]
    ok(
        staff.put(
            f"{gateway}/api/v1/admin/documents/{document_id}/files/cenik-2026.pdf",
            data=b"%PDF-1.4 price list",
            headers={"Content-Type": "application/octet-stream"},
        )
    )
    starts = (datetime.now(UTC) + timedelta(days=30)).replace(hour=8, minute=0, second=0, microsecond=0)
    ok(
        staff.post(
            f"{gateway}/api/v1/admin/news",
            json={
                "kind": "training",
                "title": "Školení účetnictví pro pokročilé",
                "body": "Celodenní školení.",
                "starts_at": starts.isoformat(),
                "city": "Brno",
                "capacity": 15,
            },
        )
    )
    wait_until(
        lambda: staff.get(f"{gateway}/api/v1/admin/customer-profiles/{number}", timeout=10).ok,
        timeout=30,
        message="the new customer reaching identity",
    )

    admin = {"email": "jana@mlyn.example", "password": "Mouka a voda 2026", "name": "Jana Mlynářová"}
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
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

        # The administrator holds every right: all three pages are in the menu.
        menu = page.get_by_role("navigation", name="Hlavní navigace")
        expect(menu.get_by_role("link", name="Dokumenty", exact=True)).to_be_visible()
        expect(menu.get_by_role("link", name="Aktuality a školení", exact=True)).to_be_visible()
        menu.get_by_role("link", name="Ke stažení", exact=True).click()
        page.wait_for_url(f"{gateway}/customers/{number}/downloads")
        # Distribution learns of the membership and the license from events: until then, less.
        downloads = f"{gateway}/customers/{number}/downloads"
        wait_until(
            lambda: page.goto(downloads).status == 200 and page.get_by_text(file_name).count() > 0,
            timeout=45,
            interval=0.5,
            message="distribution knowing the administrator and the license",
        )
        assert page.locator("h1").inner_text() == "Ke stažení"
        release = page.locator("li.release", has_text="Verze 2026.1")
        expect(release.locator(".badge-full")).to_have_text("Plná verze")
        expect(release.locator(".release-notes strong")).to_have_text("rychlejší")
        assert "<script>window.pwned = true</script>" in release.locator(".release-notes").inner_text()
        assert page.evaluate("window.pwned === undefined")
        expect(release.locator(".checksum-value")).to_have_text(checksum)
        assert "certutil -hashfile soubor SHA256" in page.locator("#checksum-heading + p + dl").inner_text()

        # The checksum's copy button puts it on the clipboard.
        release.get_by_role("button", name=f"Kopírovat kontrolní součet SHA-256 souboru {file_name}").click()
        expect(release.get_by_role("button")).to_have_text("Zkopírováno")
        assert page.evaluate("navigator.clipboard.readText()") == checksum

        # The file link is a plain link: the browser's own download, with the right bytes.
        with page.expect_download() as started:
            release.get_by_role("link", name=file_name).click()
        download = started.value
        assert download.suggested_filename == file_name
        with open(download.path(), "rb") as downloaded:
            assert downloaded.read() == content

        # The history lists it.
        page.get_by_role("link", name="Historie stahování").click()
        page.wait_for_url(f"{gateway}/customers/{number}/download-history")
        assert page.locator("h1").inner_text() == "Historie stahování"
        row = page.locator("tbody tr", has_text=file_name)
        expect(row).to_have_count(1)
        assert "2026.1" in row.inner_text() and "Zákaznické centrum" in row.inner_text()

        # Documents: the price list with its file.
        page.get_by_role("navigation", name="Hlavní navigace").get_by_role("link", name="Dokumenty").click()
        page.wait_for_url(f"{gateway}/customers/{number}/documents")
        document = page.locator("li.document", has_text="Ceník 2026")
        expect(document.get_by_role("link", name="cenik-2026.pdf")).to_be_visible()
        expect(document.locator(".file-size")).to_have_text("19\u00a0B")

        # News: the training course is upcoming, with its city and capacity.
        page.get_by_role("navigation", name="Hlavní navigace").get_by_role("link", name="Aktuality a školení").click()
        page.wait_for_url(f"{gateway}/customers/{number}/news")
        upcoming = page.locator("section.upcoming")
        expect(upcoming.get_by_role("heading", level=2)).to_have_text("Nadcházející školení a akce")
        training = upcoming.locator("li", has_text="Školení účetnictví pro pokročilé")
        expect(training).to_be_visible()
        assert "Brno" in training.inner_text() and "15 míst" in training.inner_text()

        # In English too.
        page.goto(f"{gateway}/customers/{number}/news?lang=en")
        expect(page.locator("section.upcoming")).to_contain_text("15 places")
    finally:
        context.close()
