"""The portal's forum pages through Flask's test client, with a scripted fake forum service
beside the fake identity: what each page shows (the solution right under the question,
authors with their company and the support team's badge, hidden posts, markers), which
buttons whom, what the forms send and how the forum's problems reach the person."""

from __future__ import annotations

import re
from urllib.parse import parse_qs

import pytest

from tests.gateway.conftest import CREDENTIALS_PATH, USER, csrf, field_error, form_token, nav, post_form, problem, text

API = "/api/v1/forum"
ADMIN = "/api/v1/admin/forum"
ADA = {"id": USER["id"], "name": USER["name"], "company_name": "Acme s.r.o.", "staff": False, "active": True}
BOB = {"id": "u-bob", "name": "Bob Builder", "company_name": "Beta a.s.", "staff": False, "active": True}
PODPORA = {"id": "u-staff", "name": "Petra z podpory", "company_name": None, "staff": True, "active": True}
CATEGORY = {
    "id": 7,
    "name": "Účetnictví",
    "description": "Dotazy k účetnictví",
    "position": 1,
    "product": "ucto",
    "topics": 3,
    "last_activity_at": "2026-02-01T09:30:00Z",
    "watching": False,
}


def post(post_id: int, author: dict, body: str, **fields) -> dict:
    return {
        "id": post_id,
        "topic_id": 5,
        "author": author,
        "body": body,
        "body_html": f"<p>{body}</p>",
        "created_at": "2026-02-01T09:30:00Z",
        "edited_at": None,
        "hidden": False,
        "solution": False,
        "can_edit": author["id"] == USER["id"],
    } | fields


QUESTION = post(50, ADA, "Jak zaúčtovat zálohovou fakturu?")
ANSWER = post(51, PODPORA, "Na účet 314.", solution=True)
OTHER = post(52, BOB, "Taky mě to zajímá.\n\nDruhý odstavec", edited_at="2026-02-02T10:00:00Z")
HIDDEN = post(53, BOB, "", body_html="", hidden=True)


def topic(**fields) -> dict:
    return {
        "id": 5,
        "title": "Zálohová faktura",
        "category_id": 7,
        "category_name": "Účetnictví",
        "author": ADA,
        "replies": 3,
        "created_at": "2026-02-01T09:30:00Z",
        "last_activity_at": "2026-02-02T10:00:00Z",
        "pinned": False,
        "locked": False,
        "hidden": False,
        "solved": True,
        "solution_post_id": 51,
        "solution": ANSWER,
        "watching": True,
        "posts": [QUESTION, ANSWER, OTHER, HIDDEN],
        "next": None,
    } | fields


class FakeForum:
    """The forum's answers unless one is scripted (`services.answer`)."""

    def __init__(self, services):
        self.services = services
        self.topic = topic()

    def __call__(self, method: str, path: str):
        if method == "GET" and path == f"{API}/categories":
            return 200, {"items": [CATEGORY], "next": None}, {}
        if method == "GET" and path == f"{API}/categories/7":
            return 200, CATEGORY, {}
        if method == "GET" and path == f"{API}/categories/7/topics":
            summary = {k: v for k, v in self.topic.items() if k not in ("posts", "solution", "next")}
            return 200, {"items": [summary | {"pinned": True}], "next": "CUR2"}, {}
        if method == "GET" and path == f"{API}/topics/5":
            return 200, self.topic, {}
        if method == "GET" and path.startswith(f"{API}/posts/"):
            post_id = int(path.rsplit("/", 1)[1])
            return 200, next(p for p in self.topic["posts"] if p["id"] == post_id), {}
        if method in ("PUT", "DELETE"):
            return 204, {}, {}
        if method == "POST" and path == f"{API}/topics/5/posts":
            return 201, post(60, ADA, "nová"), {}
        return 200, {}, {}


@pytest.fixture
def forum(services) -> FakeForum:
    fake = FakeForum(services)
    services.defaults["forum"] = fake
    return fake


@pytest.fixture
def staff_signed_in(client, services):
    services.answer("POST", CREDENTIALS_PATH, 200, USER | {"staff": True})
    post_form(client, "/sign-in", {"email": USER["email"], "password": "correct horse battery staple"})
    return client


def send(client, path: str, data: dict, page: str = "/forum"):
    """A signed-in form, with the CSRF token from a page that has one."""
    return client.post(path, data=data | {"csrf_token": csrf(client.get(page))})


def forum_calls(services, method: str | None = None) -> list:
    return [r for r in services.requests if r.service == "forum" and (method is None or r.method == method)]


# --- categories and topics ------------------------------------------------------------------
def test_the_forum_lists_its_categories_for_every_signed_in_person(signed_in, services, forum):
    response = signed_in.get("/forum")
    assert response.status_code == 200
    page = text(response)
    assert '<h1 id="page-heading">Fórum</h1>' in page
    assert 'href="/forum" aria-current="page">Fórum</a>' in nav(page)
    assert '<a href="/forum/categories/7">Účetnictví</a>' in page
    assert "Dotazy k účetnictví" in page and "3 témata" in page and "poslední příspěvek 1. 2. 2026 10:30" in page
    assert 'action="/forum/search"' in page and 'name="q"' in page
    assert 'action="/forum/categories/7/watch"' in page and 'name="back" value="index"' in page
    assert "Nahlášené příspěvky" not in page and "Nová kategorie" not in page  # staff only
    asked = forum_calls(services)[-1]
    assert asked.path == f"{API}/categories" and asked.principal.subject == USER["id"]


def test_forum_pages_need_signing_in(client):
    for path in ("/forum", "/forum/categories/7", "/forum/topics/5", "/forum/search?q=x", "/forum/subscriptions"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["Location"] == "/sign-in"


def test_a_category_lists_its_topics_with_markers_and_a_next_page(signed_in, services, forum):
    page = text(signed_in.get("/forum/categories/7"))
    assert '<a href="/forum/topics/5">Zálohová faktura</a>' in page
    assert "Připnuté" in page and "Vyřešené" in page and "Ada Lovelace, Acme s.r.o." in page
    assert 'href="/forum/categories/7/new">Nové téma</a>' in page
    assert 'href="/forum/categories/7?cursor=CUR2">Další</a>' in page
    signed_in.get("/forum/categories/7?cursor=CUR2")
    assert parse_qs(forum_calls(services)[-1].query) == {"limit": ["25"], "cursor": ["CUR2"]}


def test_an_old_cursor_starts_the_list_again(signed_in, services, forum):
    services.answer("GET", f"{API}/categories/7/topics", *problem(422, "invalid-cursor"))
    response = signed_in.get("/forum/categories/7?cursor=broken")
    assert response.status_code == 303 and response.headers["Location"] == "/forum/categories/7"


def test_starting_a_topic_sends_it_and_opens_it(signed_in, services, forum):
    services.answer("POST", f"{API}/topics", 201, topic(id=9))
    response = send(signed_in, "/forum/categories/7/new", {"title": " Otázka ", "body": "Text"})
    assert response.status_code == 303 and response.headers["Location"] == "/forum/topics/9?done=created"
    assert services.sent("POST", f"{API}/topics") == [{"category_id": 7, "title": "Otázka", "body": "Text"}]


def test_a_short_title_is_said_by_its_field_and_the_text_is_kept(signed_in, services, forum):
    services.answer(
        "POST", f"{API}/topics", *problem(422, "validation-failed", {"title": "Shorter than minimum length 3."})
    )
    response = send(signed_in, "/forum/categories/7/new", {"title": "Ot", "body": "Můj dlouhý dotaz"})
    assert response.status_code == 422
    assert field_error(response, "title") == "Napište alespoň 3 znaky."
    assert ">Můj dlouhý dotaz</textarea>" in text(response)


# --- a topic --------------------------------------------------------------------------------
def test_a_topic_shows_the_question_then_the_solution_then_the_replies(signed_in, forum):
    page = text(signed_in.get("/forum/topics/5"))
    question = page.index('id="post-50"')
    solution = page.index('<section class="solution-box"')
    replies = page.index('id="replies"')
    assert question < solution < replies < page.index('id="post-51"')
    box = page[solution:replies]
    assert "Na účet 314." in box and "Tým podpory" in box and 'href="#post-51"' in box
    assert "3 odpovědi" in page
    assert "Bob Builder" in page and "Beta a.s." in page
    assert '<span class="post-edited" title="2. 2. 2026 11:00">upraveno</span>' in page
    assert "Příspěvek skryl moderátor." in page
    assert "<p>Taky mě to zajímá." in page  # the forum's sanitised HTML, as it is


def test_each_post_has_the_buttons_its_reader_may_use(signed_in, forum):
    page = text(signed_in.get("/forum/topics/5"))

    def actions(post_id: int) -> str:
        return re.search(rf'id="post-{post_id}".*?</footer>', page, re.S).group(0)

    own = actions(50)
    assert 'href="/forum/posts/50/edit"' in own
    assert "Označit jako řešení" not in own  # the question is not its own solution
    assert "Nahlásit" not in own  # nobody reports themselves
    assert 'href="/forum/topics/5?quote=50#reply"' in own
    assert 'data-quote-author="Ada Lovelace" data-quote-body="Jak zaúčtovat zálohovou fakturu?"' in own
    answer = actions(51)
    assert "Zrušit označení řešení" in answer and "/edit" not in answer and "Nahlásit" in answer
    bob = actions(52)
    assert 'name="post_id" value="52"' in bob and "Označit jako řešení" in bob
    assert 'action="/forum/topics/5/posts/52/flag"' in bob
    assert "Citovat" not in actions(53) and "Nahlásit" not in actions(53)  # hidden
    assert "Moderování" not in page  # staff only
    assert 'action="/forum/topics/5/posts"' in page and "Téma je uzavřené" not in page


def test_only_the_topic_author_marks_a_solution(signed_in, forum):
    forum.topic = topic(author=BOB)
    page = text(signed_in.get("/forum/topics/5"))
    assert "Označit jako řešení" not in page and "Zrušit označení řešení" not in page


def test_quoting_without_javascript_fills_the_reply_box(signed_in, forum):
    page = text(signed_in.get("/forum/topics/5?quote=52"))
    box = re.search(r'<textarea id="f-body"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert box == "&gt; **Bob Builder:**\n&gt;\n&gt; Taky mě to zajímá.\n&gt;\n&gt; Druhý odstavec\n\n"


def test_a_closed_topic_has_no_reply_box(signed_in, forum):
    forum.topic = topic(locked=True)
    page = text(signed_in.get("/forum/topics/5"))
    assert "Téma je uzavřené: další odpovědi už nejsou možné." in page
    assert 'action="/forum/topics/5/posts"' not in page and "Citovat" not in page


def test_staff_see_the_moderation_buttons_and_may_reply_to_a_closed_topic(staff_signed_in, services, forum):
    forum.topic = topic(locked=True)
    page = text(staff_signed_in.get("/forum/topics/5"))
    assert "Moderování" in page and "Znovu otevřít téma" in page and "Připnout" in page and "Skrýt téma" in page
    assert 'action="/forum/topics/5/posts/52/moderate"' in page and "Skrýt příspěvek" in page
    assert 'action="/forum/topics/5/posts"' in page and "Jako člen týmu podpory" in page
    response = send(staff_signed_in, "/forum/topics/5/moderate", {"locked": "0"}, "/forum/topics/5")
    assert response.headers["Location"] == "/forum/topics/5?done=moderated"
    assert services.sent("PATCH", f"{ADMIN}/topics/5") == [{"locked": False}]
    send(staff_signed_in, "/forum/topics/5/moderate", {"category_id": "8"}, "/forum/topics/5")
    assert services.sent("PATCH", f"{ADMIN}/topics/5")[-1] == {"category_id": 8}
    send(staff_signed_in, "/forum/topics/5/posts/52/moderate", {"hidden": "1"}, "/forum/topics/5")
    assert services.sent("PATCH", f"{ADMIN}/posts/52") == [{"hidden": True}]


def test_a_reply_lands_on_its_post(signed_in, services, forum):
    response = send(signed_in, "/forum/topics/5/posts", {"body": "Děkuji"}, "/forum/topics/5")
    assert response.status_code == 303
    assert response.headers["Location"] == "/forum/topics/5?post=60&done=replied#post-60"
    assert services.sent("POST", f"{API}/topics/5/posts") == [{"body": "Děkuji"}]


def test_a_link_to_a_post_opens_the_page_that_holds_it(signed_in, services, forum):
    pages = {"": topic(posts=[QUESTION], next="P2"), "P2": topic(posts=[OTHER], next="P3")}

    def answer(method, path):
        cursor = parse_qs(forum_calls(services)[-1].query).get("cursor", [""])[0]
        return 200, pages[cursor], {}

    services.defaults["forum"] = answer
    page = text(signed_in.get("/forum/topics/5?post=52"))
    assert 'id="post-52"' in page and 'id="post-50"' not in page
    assert "Zpět na začátek tématu" in page
    assert 'href="/forum/topics/5?cursor=P3">Další příspěvky</a>' in page


def test_a_refused_reply_keeps_the_text_and_says_why(signed_in, services, forum):
    services.answer("POST", f"{API}/topics/5/posts", *problem(429, "too-many-requests", headers={"Retry-After": "42"}))
    response = send(signed_in, "/forum/topics/5/posts", {"body": "Můj text"}, "/forum/topics/5")
    assert response.status_code == 429
    page = text(response)
    assert "Přispíváte příliš rychle. Zkuste to znovu za 42 s." in page
    assert ">Můj text</textarea>" in page
    assert 'href="/forum/topics/5?lang=en"' in page  # the page's language link, not the POST's

    forum.topic = topic(locked=True)
    services.answer("POST", f"{API}/topics/5/posts", *problem(409, "topic-locked"))
    response = send(signed_in, "/forum/topics/5/posts", {"body": "Můj text"}, "/forum/topics/5")
    assert response.status_code == 409
    page = text(response)
    assert "Téma bylo uzavřeno" in page
    assert "readonly>Můj text</textarea>" in page  # nothing typed is lost


def test_marking_the_solution_flagging_and_watching(signed_in, services, forum):
    response = send(signed_in, "/forum/topics/5/solution", {"post_id": "52"}, "/forum/topics/5")
    assert response.headers["Location"] == "/forum/topics/5?done=solved"
    assert services.sent("PUT", f"{API}/topics/5/solution") == [{"post_id": 52}]
    response = send(signed_in, "/forum/topics/5/solution", {}, "/forum/topics/5")
    assert response.headers["Location"] == "/forum/topics/5?done=unsolved"
    assert forum_calls(services, "DELETE")[-1].path == f"{API}/topics/5/solution"

    response = send(signed_in, "/forum/topics/5/posts/52/flag", {"reason": " spam "}, "/forum/topics/5")
    assert response.headers["Location"] == "/forum/topics/5?post=52&done=flagged#post-52"
    assert services.sent("POST", f"{API}/posts/52/flags") == [{"reason": "spam"}]

    response = send(signed_in, "/forum/topics/5/watch", {"watch": "0"}, "/forum/topics/5")
    assert response.headers["Location"] == "/forum/topics/5?done=unwatched"
    assert forum_calls(services, "DELETE")[-1].path == f"{API}/topics/5/watch"
    response = send(signed_in, "/forum/categories/7/watch", {"watch": "1", "back": "index"})
    assert response.headers["Location"] == "/forum?done=watching"
    assert forum_calls(services, "PUT")[-1].path == f"{API}/categories/7/watch"


def test_someone_elses_solution_is_refused_politely(signed_in, services, forum):
    services.answer("PUT", f"{API}/topics/5/solution", *problem(403, "not-your-topic"))
    response = send(signed_in, "/forum/topics/5/solution", {"post_id": "52"}, "/forum/topics/5")
    assert response.status_code == 403
    assert "Řešení může označit jen autor tématu." in text(response)


def test_forum_forms_need_the_session_csrf_token(signed_in, services, forum):
    for path in ("/forum/topics/5/posts", "/forum/topics/5/watch", "/forum/categories/7/new", "/forum/posts/50/edit"):
        assert signed_in.post(path, data={"csrf_token": "forged", "body": "x"}).status_code == 403
    assert forum_calls(services, "POST") == [] and forum_calls(services, "PATCH") == []


def test_the_forum_being_down_is_an_error_page_and_a_message_in_forms(signed_in, services, forum):
    services.answer("GET", f"{API}/categories", *problem(503, "service-unavailable"))
    response = signed_in.get("/forum")
    assert response.status_code == 503 and "Dočasně nedostupné" in text(response)
    services.answer("POST", f"{API}/topics/5/posts", *problem(503, "service-unavailable"))
    response = send(signed_in, "/forum/topics/5/posts", {"body": "x"}, "/forum/topics/5")
    assert response.status_code == 503
    assert "Tato část Zákaznického centra teď není k dispozici." in text(response)


# --- editing, search, subscriptions -------------------------------------------------------------
def test_editing_ones_post_shows_its_history(signed_in, services, forum):
    services.answer(
        "GET",
        f"{API}/posts/50/revisions",
        200,
        {
            "items": [
                {
                    "number": 1,
                    "body": "<b>první</b>",
                    "written_at": "2026-02-01T09:30:00Z",
                    "replaced_at": "2026-02-01T10:00:00Z",
                }
            ]
        },
    )
    page = text(signed_in.get("/forum/posts/50/edit"))
    assert ">Jak zaúčtovat zálohovou fakturu?</textarea>" in page
    assert "Verze 1: napsána 1. 2. 2026 10:30, nahrazena 1. 2. 2026 11:00" in page
    assert "&lt;b&gt;první&lt;/b&gt;" in page
    services.answer("PATCH", f"{API}/posts/50", 200, QUESTION | {"body": "nové"})
    response = send(signed_in, "/forum/posts/50/edit", {"body": "nové"}, "/forum/posts/50/edit")
    assert response.headers["Location"] == "/forum/topics/5?post=50&done=edited#post-50"
    assert services.sent("PATCH", f"{API}/posts/50") == [{"body": "nové"}]
    assert signed_in.get("/forum/posts/52/edit").status_code == 403  # Bob's


def test_search_shows_the_hits_with_their_marks(signed_in, services, forum):
    assert "Hledá v názvech" in text(signed_in.get("/forum/search"))
    assert forum_calls(services) == []
    services.answer(
        "GET",
        f"{API}/search",
        200,
        {
            "items": [
                {
                    "topic_id": 5,
                    "post_id": 52,
                    "title": "Záloha",
                    "excerpt": "x",
                    "excerpt_html": "a <mark>zálohová</mark> &lt;b&gt;",
                }
            ]
        },
    )
    page = text(signed_in.get("/forum/search?q=zalohova"))
    assert parse_qs(forum_calls(services)[-1].query) == {"q": ["zalohova"]}
    assert "1 výsledek pro „zalohova“" in page
    assert 'href="/forum/topics/5?post=52#post-52">Záloha</a>' in page
    assert "a <mark>zálohová</mark> &lt;b&gt;" in page
    services.answer("GET", f"{API}/search", 200, {"items": []})
    assert "Nic jsme nenašli." in text(signed_in.get("/forum/search?q=nic"))


def test_my_subscriptions_with_stop_buttons(signed_in, services, forum):
    services.answer(
        "GET",
        f"{API}/subscriptions",
        200,
        {"items": [{"kind": "topic", "id": 5, "title": "Zálohová faktura", "since": "2026-02-01T09:30:00Z"}]},
    )
    page = text(signed_in.get("/forum/subscriptions"))
    assert '<a href="/forum/topics/5">Zálohová faktura</a>' in page
    assert 'action="/forum/topics/5/watch"' in page and 'name="back" value="subscriptions"' in page
    assert "Nesledujete žádnou kategorii." in page
    response = send(signed_in, "/forum/topics/5/watch", {"watch": "0", "back": "subscriptions"})
    assert response.headers["Location"] == "/forum/subscriptions?done=unwatched"


# --- the unsubscribe link -----------------------------------------------------------------------
def test_the_unsubscribe_link_asks_first_and_works_without_signing_in(client, services, forum):
    services.answer("POST", f"{API}/unsubscribe", 200, {"kind": "topic", "id": 5, "title": "Zálohová faktura"})
    page = client.get("/forum/unsubscribe?token=abc")
    assert page.status_code == 200 and "Ukončit odběr" in text(page)
    assert forum_calls(services) == []  # opening the link changes nothing
    refused = client.post("/forum/unsubscribe", data={"token": "abc"})  # no form token
    assert refused.status_code == 400 and forum_calls(services) == []
    response = client.post("/forum/unsubscribe", data={"token": "abc", "form_token": form_token(refused)})
    assert response.status_code == 200
    assert "Odběr ukončen" in text(response) and "„Zálohová faktura“" in text(response)
    call = forum_calls(services)[-1]
    assert call.body == {"token": "abc"} and call.principal.kind == "anonymous"

    services.answer("POST", f"{API}/unsubscribe", *problem(404, "unknown-link"))
    page = client.get("/forum/unsubscribe?token=zzz")
    response = client.post("/forum/unsubscribe", data={"token": "zzz", "form_token": form_token(page)})
    assert response.status_code == 404 and "Tento odkaz nefunguje" in text(response)


# --- staff: flags and categories ------------------------------------------------------------
def test_flags_are_for_staff(signed_in, forum):
    assert signed_in.get("/forum/flags").status_code == 403


def test_staff_handle_flags_and_create_categories(staff_signed_in, services, forum):
    flag = {
        "id": 3,
        "post_id": 52,
        "topic_id": 5,
        "topic_title": "Zálohová faktura",
        "reason": "reklama",
        "status": "open",
        "created_at": "2026-02-03T08:00:00Z",
        "flagged_by": ADA,
        "post": OTHER,
    }
    services.answer("GET", f"{ADMIN}/flags", 200, {"items": [flag], "next": None})
    page = text(staff_signed_in.get("/forum/flags"))
    assert "Nahlásil(a) Ada Lovelace, 3. 2. 2026 9:00:" in page and "<q>reklama</q>" in page
    assert 'href="/forum/topics/5?post=52#post-52">Zálohová faktura</a>' in page
    response = send(staff_signed_in, "/forum/flags/3/resolve", {"action": "dismiss"}, "/forum/flags")
    assert response.headers["Location"] == "/forum/flags?done=dismissed"
    assert services.sent("POST", f"{ADMIN}/flags/3/resolve") == [{"action": "dismiss"}]

    assert "Nová kategorie" in text(staff_signed_in.get("/forum"))
    services.answer("POST", f"{ADMIN}/categories", *problem(409, "category-exists"))
    response = send(staff_signed_in, "/forum/categories", {"name": "Mzdy", "description": "", "product": ""})
    assert response.status_code == 409 and "Kategorie s tímto názvem už existuje." in text(response)
    assert services.sent("POST", f"{ADMIN}/categories") == [{"name": "Mzdy", "description": "", "product": None}]


# --- the display name on my account page --------------------------------------------------------
def test_the_display_name_is_changed_on_the_account_page(signed_in, services):
    page = text(signed_in.get("/account"))
    assert 'action="/account/name"' in page and 'value="Ada Lovelace"' in page
    response = send(signed_in, "/account/name", {"name": "  Ada King "}, "/account")
    assert response.status_code == 303 and response.headers["Location"] == "/account?done=name"
    assert services.sent("PATCH", "/api/v1/me") == [{"name": "Ada King"}]
    assert "Vaše zobrazované jméno bylo změněno." in text(signed_in.get("/account?done=name"))


def test_a_refused_display_name_is_shown_by_its_field(signed_in, services):
    services.answer(
        "PATCH", "/api/v1/me", *problem(422, "validation-failed", {"name": "Shorter than minimum length 1."})
    )
    response = send(signed_in, "/account/name", {"name": ""}, "/account")
    assert response.status_code == 422 and field_error(response, "name") == "Vyplňte prosím."
    services.answer("PATCH", "/api/v1/me", 405, {"type": "about:blank", "status": 405, "title": "Not allowed"})
    response = send(signed_in, "/account/name", {"name": "Ada"}, "/account")
    page = text(response)
    assert response.status_code == 405 and 'id="name-message"' in page and 'value="Ada"' in page


# --- English -------------------------------------------------------------------------------------
def test_the_forum_speaks_english_on_request(signed_in, forum):
    page = text(signed_in.get("/forum/topics/5?lang=en"))
    assert "Solution" in page and "3 replies" in page and "Support team" in page and "Send the reply" in page
    assert ">Quote<" in page and "Mark as the solution" in page and ">Forum</a>" in page
