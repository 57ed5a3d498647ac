"""The forum's pages in Chromium against the real suite (every Procfile process, PostgreSQL,
RabbitMQ, mails through a real SMTP server), one suite for the whole module: staff open a
category; Jana asks (with an attempt at script injection that must stay plain text), Petr
replies quoting her, she marks his reply as the solution and finds the topic by a word typed
without accents; Petr reports a post, staff dismiss the report and close the topic, and the
reply box goes; watching, the unsubscribe link from the e-mails, the display name, English,
and a phone. Screenshots of every page go to /tmp/forum-*.png."""

from __future__ import annotations

import secrets
from types import SimpleNamespace

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import STAFF
from tests.browser.test_identity_flow import sign_in
from tests.support import api_session, ok, valid_company_id, wait_until

pytestmark = pytest.mark.browser

JANA = {"email": "jana@mlyn.example", "password": "Mouka a voda 2026", "name": "Jana Mlynářová"}
PETR = {"email": "petr@mlyn.example", "password": "Petr počítá daně 2026", "name": "Petr Počtář"}
QUESTION = (
    "Přijatou zálohovou fakturu od dodavatele nevím, kam zaúčtovat.\n\n"
    'Zkusil jsem <script>window.pwned = 1</script> a <img src=x onerror="window.pwned = 2"> '
    "a také [x](javascript:alert(1))."
)


def shot(page, name: str) -> None:
    page.screenshot(path=f"/tmp/forum-{name}.png", full_page=True)


@pytest.fixture(scope="module")
def forum_suite(amqp_url, new_database, tmp_path_factory):
    """The suite with a forum category, and two people of one customer: Jana, who registered
    it, and Petr, whom she invited."""
    from ops.suite import free_port
    from tests.support import SmtpInbox, running_suite

    inbox = SmtpInbox().start()
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    try:
        with running_suite(
            amqp_url,
            new_database,
            tmp_path_factory,
            "browser-forum",
            STAFF,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(inbox.port),
            GATEWAY_PORT=str(port),
            PUBLIC_URL=public_url,
        ) as suite:
            gateway = suite.web_url("gateway")
            staff = api_session(gateway, STAFF)
            category = ok(
                staff.post(
                    f"{gateway}/api/v1/admin/forum/categories",
                    json={"name": "Účetnictví", "description": "Zaúčtování, uzávěrky, DPH.", "position": 1},
                )
            )
            ok(staff.post(f"{gateway}/api/v1/admin/forum/categories", json={"name": "Mzdy", "position": 2}))

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
            wait_until(
                lambda: staff.get(f"{gateway}/api/v1/admin/customer-profiles/{number}", timeout=10).ok,
                timeout=30,
                message="the new customer reaching identity",
            )
            ok(
                requests.post(
                    f"{gateway}/api/v1/registrations", json=JANA | {"customer_number": number, "company_id": ico}
                )
            )
            token = inbox.link_token(inbox.wait_for(JANA["email"], timeout=60), "confirm")
            ok(requests.post(f"{gateway}/api/v1/registrations/confirm", json={"token": token}))
            jana = api_session(gateway, JANA)
            invited = {"email": PETR["email"], "name": PETR["name"], "rights": ["news"]}
            ok(jana.post(f"{gateway}/api/v1/customers/{number}/users", json=invited))
            token = inbox.link_token(inbox.wait_for(PETR["email"], timeout=60), "invitation")
            ok(
                requests.post(
                    f"{gateway}/api/v1/invitations/accept", json={"token": token, "password": PETR["password"]}
                )
            )
            yield SimpleNamespace(
                gateway=gateway, staff=staff, jana=jana, petr=api_session(gateway, PETR), category=category["id"]
            )
    finally:
        inbox.stop()


@pytest.fixture
def person(browser, forum_suite):
    """Factory: a browser page of its own, signed in as `who` (or nobody)."""
    contexts = []

    def open_page(who: dict | None = None, width: int = 1280):
        context = browser.new_context(viewport={"width": width, "height": 900})
        contexts.append(context)
        page = context.new_page()
        if who is not None:
            sign_in(page, forum_suite.gateway, who["email"], who["password"])
        return page

    yield open_page
    for context in contexts:
        context.close()


def test_a_question_a_quoted_reply_and_the_solution_first(forum_suite, person):
    gateway = forum_suite.gateway
    jana = person(JANA)
    dialogs = []
    jana.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # From the menu to the category and a new topic.
    jana.get_by_role("navigation", name="Hlavní navigace").get_by_role("link", name="Fórum").click()
    jana.wait_for_url(gateway + "/forum")
    assert jana.locator("h1").inner_text() == "Fórum"
    shot(jana, "index")
    jana.get_by_role("link", name="Účetnictví").click()
    jana.wait_for_url(f"{gateway}/forum/categories/{forum_suite.category}")
    expect(jana.get_by_role("heading", name="Zatím žádná témata")).to_be_visible()
    jana.get_by_role("link", name="Nové téma").first.click()
    jana.get_by_label("Název").fill("Jak zaúčtovat zálohovou fakturu?")
    jana.get_by_label("Váš dotaz").fill(QUESTION)
    shot(jana, "new-topic")
    jana.get_by_role("button", name="Zveřejnit téma").click()
    jana.wait_for_url(lambda url: url.startswith(f"{gateway}/forum/topics/"))
    topic_url = jana.url.split("?")[0]
    assert jana.locator("h1").inner_text() == "Jak zaúčtovat zálohovou fakturu?"
    expect(jana.get_by_role("status")).to_contain_text("Vaše téma je zveřejněné.")

    # The injection attempts are plain text: no script ran, no image, no javascript: link.
    question = jana.locator("article.post-question")
    body = question.locator(".post-body")
    expect(body).to_contain_text("<script>window.pwned = 1</script>")
    expect(body).to_contain_text('<img src=x onerror="window.pwned = 2">')
    assert body.locator("script, img").count() == 0
    assert body.locator("a[href^='javascript']").count() == 0
    for link in body.locator("a").all():
        link.click()
    assert jana.evaluate("window.pwned === undefined")
    expect(question.locator(".post-author")).to_have_text(JANA["name"])

    # Petr quotes her (the quote goes into the reply box) and replies.
    petr = person(PETR)
    petr.goto(topic_url)
    petr.locator("article.post-question").get_by_role("link", name="Citovat").click()
    reply_box = petr.get_by_label("Odpověď", exact=True)
    quoted = reply_box.input_value()
    assert quoted.startswith(f"> **{JANA['name']}:**\n>\n> Přijatou zálohovou fakturu")
    assert "> Zkusil jsem <script>" in quoted
    assert petr.url.startswith(topic_url) and "quote=" not in petr.url  # no reload
    reply_box.press("Control+End")
    reply_box.type("Zaúčtujte ji na účet 314 – Poskytnuté zálohy.")
    petr.get_by_role("button", name="Odeslat odpověď").click()
    petr.wait_for_url(lambda url: url.startswith(f"{topic_url}?post="))
    reply = petr.locator("#replies article.post").last
    expect(reply.locator("blockquote")).to_contain_text(JANA["name"])
    expect(reply.locator(".post-body > p").last).to_have_text("Zaúčtujte ji na účet 314 – Poskytnuté zálohy.")
    assert petr.evaluate("window.pwned === undefined")

    # Without JavaScript the same link asks the server for the quote.
    question_id = jana.locator("article.post-question").get_attribute("id").removeprefix("post-")
    petr.goto(f"{topic_url}?quote={question_id}")
    assert petr.get_by_label("Odpověď", exact=True).input_value().startswith(f"> **{JANA['name']}:**")

    # Jana marks his reply as the solution: it is shown right under the question.
    jana.goto(topic_url)
    jana.locator("#replies article.post").last.get_by_role("button", name="Označit jako řešení").click()
    jana.wait_for_url(f"{topic_url}?done=solved")
    solution = jana.locator("section.solution-box")
    expect(solution.get_by_role("heading")).to_have_text("Řešení")
    expect(solution).to_contain_text("účet 314")
    expect(solution).to_contain_text(PETR["name"])
    tops = jana.evaluate(
        "['article.post-question', 'section.solution-box', '#replies']"
        ".map(s => document.querySelector(s).getBoundingClientRect().top)"
    )
    assert tops == sorted(tops)
    expect(jana.locator(".topic-markers")).to_contain_text("Vyřešené")
    shot(jana, "topic")

    # She edits her question; the post says so and the edit page keeps the history.
    jana.locator("article.post-question").get_by_role("link", name="Upravit").click()
    jana.wait_for_url(f"{gateway}/forum/posts/{question_id}/edit")
    jana.get_by_label("Příspěvek", exact=True).fill("Kam zaúčtovat přijatou zálohovou fakturu?")
    jana.get_by_role("button", name="Uložit změnu").click()
    jana.wait_for_url(lambda url: url.startswith(f"{topic_url}?post={question_id}&done=edited"))
    expect(jana.locator("article.post-question .post-edited")).to_have_text("upraveno")
    jana.goto(f"{gateway}/forum/posts/{question_id}/edit")
    expect(jana.locator(".revision summary")).to_contain_text("Verze 1")
    shot(jana, "edit-post")

    # Search finds it by a word typed without accents, and leads to the post.
    jana.goto(gateway + "/forum")
    jana.get_by_role("searchbox", name="Hledat ve fóru").fill("zalohovou")
    jana.get_by_role("button", name="Hledat", exact=True).click()
    jana.wait_for_url(f"{gateway}/forum/search?q=zalohovou")
    hit = jana.locator(".search-result").first
    expect(hit.locator("mark").first).to_have_text("zálohovou")
    shot(jana, "search")
    hit.get_by_role("link", name="Jak zaúčtovat zálohovou fakturu?").click()
    jana.wait_for_url(lambda url: url.startswith(f"{topic_url}?post="))

    # In English.
    jana.goto(f"{topic_url}?lang=en")
    expect(jana.locator("section.solution-box h2")).to_have_text("Solution")
    expect(jana.get_by_role("button", name="Send the reply")).to_be_visible()
    expect(jana.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Forum")).to_be_visible()
    expect(jana.locator("#replies-heading")).to_have_text("1 reply")
    shot(jana, "topic-en")
    assert dialogs == []


def test_a_report_reaches_staff_who_close_the_topic(forum_suite, person):
    gateway = forum_suite.gateway
    topic = ok(
        forum_suite.jana.post(
            f"{gateway}/api/v1/forum/topics",
            json={"category_id": forum_suite.category, "title": "Uzávěrka roku", "body": "Kupte si levné hodinky!"},
        )
    )
    topic_url = f"{gateway}/forum/topics/{topic['id']}"

    petr = person(PETR)
    petr.goto(f"{gateway}/forum/categories/{forum_suite.category}")
    listed = petr.locator("li.forum-topic", has_text="Uzávěrka roku")
    expect(listed.locator(".forum-topic-stats")).to_contain_text("0")
    shot(petr, "category")
    listed.get_by_role("link", name="Uzávěrka roku").click()
    petr.wait_for_url(topic_url)
    question = petr.locator("article.post-question")
    question.get_by_text("Nahlásit", exact=True).click()
    question.get_by_label("Co je na příspěvku špatně? (nepovinné)").fill("reklama")
    question.get_by_role("button", name="Nahlásit moderátorům").click()
    expect(petr.get_by_role("status")).to_contain_text("Moderátoři se na příspěvek podívají.")
    expect(petr.get_by_role("button", name="Odeslat odpověď")).to_be_visible()

    staff = person(STAFF)
    staff.goto(gateway + "/forum")
    staff.get_by_role("link", name="Nahlášené příspěvky").click()
    staff.wait_for_url(gateway + "/forum/flags")
    report = staff.locator("li.flag", has_text="Uzávěrka roku")
    expect(report.locator(".flag-reason")).to_contain_text("reklama")
    expect(report.locator(".flag-reason")).to_contain_text(PETR["name"])
    shot(staff, "flags")
    report.get_by_role("button", name="Zamítnout nahlášení").click()
    expect(staff.get_by_role("status")).to_contain_text("Nahlášení bylo zamítnuto.")
    expect(staff.locator("li.flag", has_text="Uzávěrka roku")).to_have_count(0)

    staff.goto(topic_url)
    staff.get_by_role("button", name="Uzavřít téma").click()
    staff.wait_for_url(f"{topic_url}?done=moderated")
    expect(staff.locator(".topic-markers")).to_contain_text("Uzavřené")
    expect(staff.get_by_role("button", name="Znovu otevřít téma")).to_be_visible()
    shot(staff, "topic-staff")

    petr.goto(topic_url)
    expect(petr.locator("#locked-notice")).to_have_text("Téma je uzavřené: další odpovědi už nejsou možné.")
    expect(petr.locator("form.reply-form")).to_have_count(0)
    expect(petr.get_by_role("link", name="Citovat")).to_have_count(0)


def test_watching_the_unsubscribe_link_the_display_name_and_a_phone(forum_suite, person):
    from forum.subscriptions import unsubscribe_token

    from tests.conftest import TEST_SECRET

    gateway = forum_suite.gateway
    petr = person(PETR)

    # Watch a category from the forum's front page; it is listed under what I watch.
    petr.goto(gateway + "/forum")
    petr.locator("li.forum-category", has_text="Mzdy").get_by_role("button", name="Sledovat").click()
    petr.wait_for_url(gateway + "/forum?done=watching")
    expect(petr.locator("li.forum-category", has_text="Mzdy").locator(".watching-tag")).to_have_text("Sledujete")
    petr.get_by_role("link", name="Moje odběry").click()
    petr.wait_for_url(gateway + "/forum/subscriptions")
    watched = petr.locator("section", has=petr.get_by_role("heading", name="Kategorie")).locator("li")
    expect(watched).to_have_count(1)
    expect(watched).to_contain_text("Mzdy")
    shot(petr, "subscriptions")
    watched.get_by_role("button", name="Přestat sledovat").click()
    petr.wait_for_url(gateway + "/forum/subscriptions?done=unwatched")
    expect(petr.get_by_text("Nesledujete žádnou kategorii.")).to_be_visible()

    # The link from a notification e-mail works without signing in, but only its button ends the watch.
    def watched_categories() -> list[str]:
        items = ok(forum_suite.petr.get(f"{gateway}/api/v1/forum/subscriptions"))["items"]
        return [item["title"] for item in items if item["kind"] == "category"]

    category = next(
        item
        for item in ok(forum_suite.petr.get(f"{gateway}/api/v1/forum/categories"))["items"]
        if item["name"] == "Mzdy"
    )
    ok(forum_suite.petr.put(f"{gateway}/api/v1/forum/categories/{category['id']}/watch"))
    me = ok(forum_suite.petr.get(f"{gateway}/api/v1/me"))
    token = unsubscribe_token(TEST_SECRET, SimpleNamespace(user_id=me["id"], topic_id=None, category_id=category["id"]))
    visitor = person()
    visitor.goto(f"{gateway}/forum/unsubscribe?token={token}")
    expect(visitor.locator("h1")).to_have_text("Odhlášení e-mailů z fóra")
    shot(visitor, "unsubscribe")
    assert watched_categories() == ["Mzdy"]  # opening the link changed nothing
    visitor.get_by_role("button", name="Ukončit odběr").click()
    expect(visitor.locator("h1")).to_have_text("Odběr ukončen")
    expect(visitor.get_by_role("status")).to_contain_text("„Mzdy“")
    assert watched_categories() == []

    # The display name, on my account page.
    petr.goto(gateway + "/account")
    petr.get_by_label("Zobrazované jméno").fill("Petr Počtář (účetní)")
    petr.get_by_role("button", name="Uložit jméno").click()
    petr.wait_for_url(gateway + "/account?done=name")
    expect(petr.get_by_role("status")).to_have_text("Vaše zobrazované jméno bylo změněno.")
    expect(petr.get_by_label("Zobrazované jméno")).to_have_value("Petr Počtář (účetní)")
    expect(petr.locator(".signed-in-as")).to_contain_text("Petr Počtář (účetní)")  # not the sign-in's name
    shot(petr, "account")

    # On a phone: nothing scrolls sideways.
    phone = person(PETR, width=375)
    for path in ("/forum", f"/forum/categories/{forum_suite.category}"):
        phone.goto(gateway + path)
        widths = phone.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], (path, widths)
        shot(phone, "phone-" + path.strip("/").replace("/", "-"))
    topics = ok(forum_suite.petr.get(f"{gateway}/api/v1/forum/categories/{forum_suite.category}/topics"))["items"]
    phone.goto(f"{gateway}/forum/topics/{topics[-1]['id']}")
    widths = phone.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    shot(phone, "topic-phone")
