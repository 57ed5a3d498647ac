"""Topics, posts, authors, editing and solutions through the forum's own API (PostgreSQL)."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser

import pytest

XSS_ATTEMPTS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[klikni](javascript:alert(1))",
    "[klikni](JaVaScRiPt:alert(1))",
    "[klikni](  javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "![obr](javascript:alert(1))",
    '<svg onload="alert(1)">',
    "<iframe src=https://evil.example></iframe>",
    '[x](https://ok.example "title" onmouseover="alert(1)")',
    "<div style=\"background:url('javascript:alert(1)')\">x</div>",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
]


class _Markup(HTMLParser):
    """The real elements and attributes of a piece of HTML (escaped text is not markup)."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]


@pytest.mark.parametrize("attempt", XSS_ATTEMPTS)
def test_scripts_handlers_and_javascript_links_do_not_survive(forum, attempt):
    category = forum.category()
    jana = forum.person()
    topic = jana.topic(category, "Pokus", attempt)
    reply = jana.reply(topic["id"], f"Odpověď {attempt}")
    for html in (topic["posts"][0]["body_html"], reply["body_html"]):
        markup = _Markup(html)
        assert not {"script", "svg", "iframe", "style", "div", "object", "embed"} & set(markup.tags), html
        for name, value in markup.attributes:
            assert not name.startswith("on") and name != "style", html
            if name in ("href", "src"):
                assert value.strip().lower().startswith(("http://", "https://", "mailto:")), html
    # The author's text itself is kept: they can still edit what they wrote.
    assert topic["posts"][0]["body"] == attempt


def test_code_blocks_links_and_quotes_work(forum):
    jana = forum.person()
    body = "Zkuste:\n\n```python\nprint('<b>')\n```\n\n> Původní dotaz\n\nViz [nápověda](https://napoveda.example/dph)."
    html = jana.topic(forum.category(), "Kód", body)["posts"][0]["body_html"]
    assert '<pre><code class="language-python">print(&#x27;&lt;b&gt;&#x27;)' in html or "print('&lt;b&gt;')" in html
    assert "<blockquote>" in html
    assert '<a href="https://napoveda.example/dph" rel="nofollow ugc noopener noreferrer">nápověda</a>' in html


def test_a_topic_lists_its_posts_with_authors_and_counts(forum):
    category = forum.category()
    jana = forum.person("Jana Nováková", company="Účetnictví Novák s.r.o.")
    petr = forum.person("Petr Svoboda", company="Stavby Svoboda a.s.")
    support = forum.person("Podpora", company=None, staff=True)
    topic = jana.topic(category, "Uzávěrka roku", "Jak na uzávěrku?")
    petr.reply(topic["id"], "Nejdřív inventura.")
    support.reply(topic["id"], "Návod je v nápovědě.")

    shown = petr.call("GET", f"/api/v1/forum/topics/{topic['id']}").get_json()
    assert shown["replies"] == 2 and shown["category_name"] == "POHODA"
    authors = [(p["author"]["name"], p["author"]["company_name"], p["author"]["staff"]) for p in shown["posts"]]
    assert authors == [
        ("Jana Nováková", "Účetnictví Novák s.r.o.", False),
        ("Petr Svoboda", "Stavby Svoboda a.s.", False),
        ("Podpora", None, True),
    ]
    assert [p["can_edit"] for p in shown["posts"]] == [False, True, False]
    listed = jana.call("GET", f"/api/v1/forum/categories/{category}/topics").get_json()["items"]
    assert [(t["title"], t["replies"]) for t in listed] == [("Uzávěrka roku", 2)]
    assert listed[0]["last_activity_at"] == shown["posts"][-1]["created_at"]
    categories = jana.call("GET", "/api/v1/forum/categories").get_json()["items"]
    assert categories[0]["topics"] == 1


def test_renamed_and_removed_people_stay_attributed(forum):
    category = forum.category()
    jana = forum.person("Jana Nováková")
    topic = jana.topic(category, "Mzdy", "Dotaz na mzdy")
    petr = forum.person("Petr")

    jana.name = "Jana Dvořáková"  # she married; identity announces the new name
    forum.announce(jana, company="Účetnictví Novák s.r.o.")
    assert petr.call("GET", f"/api/v1/forum/topics/{topic['id']}").get_json()["author"]["name"] == "Jana Dvořáková"

    forum.announce(jana, company=None, active=False)  # removed from her last profile
    shown = petr.call("GET", f"/api/v1/forum/topics/{topic['id']}").get_json()
    assert shown["posts"][0]["author"] == {
        "id": jana.id,
        "name": "Jana Dvořáková",
        "company_name": None,
        "staff": False,
        "active": False,
    }
    assert shown["posts"][0]["body"] == "Dotaz na mzdy"


def test_an_older_person_event_arriving_late_changes_nothing(forum):
    jana = forum.person("Jana")
    jana.name = "Jana Nová"
    forum.announce(jana, version=5)
    jana.name = "Stará Jana"
    forum.announce(jana, version=3)
    topic = jana.topic(forum.category())
    assert topic["author"]["name"] == "Jana Nová"


def test_first_post_before_identitys_event_uses_the_sign_in_token(forum):
    newcomer = forum.person("Nový Uživatel", announce=False)
    topic = newcomer.topic(forum.category())
    assert topic["author"]["name"] == "Nový Uživatel"
    newcomer.name = "Nový Uživatel (Firma)"
    forum.announce(newcomer, company="Firma s.r.o.")
    shown = newcomer.call("GET", f"/api/v1/forum/topics/{topic['id']}").get_json()
    assert shown["author"]["company_name"] == "Firma s.r.o."


def test_authors_edit_their_own_posts_and_history_is_kept(forum):
    jana, petr = forum.person("Jana"), forum.person("Petr")
    topic = jana.topic(forum.category(), "Tisk", "První verze")
    post_id = topic["posts"][0]["id"]

    assert petr.call("PATCH", f"/api/v1/forum/posts/{post_id}", {"body": "cizí"}).status_code == 403
    assert jana.call("PATCH", f"/api/v1/forum/posts/{post_id}", {"body": "Druhá **verze**"}).status_code == 200
    edited = jana.call("PATCH", f"/api/v1/forum/posts/{post_id}", {"body": "Třetí verze"}).get_json()
    assert edited["body_html"] == "<p>Třetí verze</p>\n" and edited["edited_at"]

    history = jana.call("GET", f"/api/v1/forum/posts/{post_id}/revisions").get_json()["items"]
    assert [(r["number"], r["body"]) for r in history] == [(1, "První verze"), (2, "Druhá **verze**")]
    assert petr.call("GET", f"/api/v1/forum/posts/{post_id}/revisions").status_code == 403


def test_the_topics_author_marks_the_solution_and_it_is_shown_first(forum):
    jana, petr, eva = forum.person("Jana"), forum.person("Petr"), forum.person("Eva")
    topic = jana.topic(forum.category(), "Export do XML", "Nejde export")
    petr.reply(topic["id"], "Zkuste restart")
    answer = eva.reply(topic["id"], "Zapněte **XML** v nastavení")
    path = f"/api/v1/forum/topics/{topic['id']}/solution"

    assert eva.call("PUT", path, {"post_id": answer["id"]}).status_code == 403
    assert jana.call("PUT", path, {"post_id": topic["posts"][0]["id"]}).status_code == 422
    assert jana.call("PUT", path, {"post_id": answer["id"]}).get_json()["solved"] is True

    shown = petr.call("GET", f"/api/v1/forum/topics/{topic['id']}").get_json()
    assert shown["solution"]["id"] == answer["id"] and shown["solution"]["author"]["name"] == "Eva"
    assert [p["solution"] for p in shown["posts"]] == [False, False, True]
    assert jana.call("DELETE", path).get_json()["solved"] is False


def test_bad_input_gets_clear_problems(forum):
    jana = forum.person()
    category = forum.category()
    cases = [
        ({"category_id": category, "title": "ab", "body": "x"}, "title"),
        ({"category_id": category, "title": "Dost dlouhý", "body": ""}, "body"),
        ({"category_id": category, "title": "Dost dlouhý", "body": "x" * 20_001}, "body"),
        ({"category_id": category, "title": "Dost dlouhý", "body": "x", "pinned": True}, "pinned"),
        ({"category_id": "jedna", "title": "Dost dlouhý", "body": "x"}, "category_id"),
    ]
    for body, field in cases:
        answer = jana.call("POST", "/api/v1/forum/topics", body)
        assert answer.status_code == 422, (body, answer.get_json())
        assert answer.content_type == "application/problem+json"
        assert field in str(answer.get_json()), answer.get_json()
    missing = jana.call("POST", "/api/v1/forum/topics", {"category_id": 999, "title": "Nikde", "body": "x"})
    assert missing.status_code == 404
    assert jana.call("GET", "/api/v1/forum/topics/999").status_code == 404
    assert jana.call("GET", f"/api/v1/forum/categories/{category}/topics", query={"cursor": "!!"}).status_code == 422
    assert jana.call("GET", f"/api/v1/forum/categories/{category}/topics", query={"limit": 1000}).status_code == 422
    # Numbers no column can hold are the caller's mistake, not a database error.
    assert jana.call("GET", f"/api/v1/forum/topics/{10**20}").status_code == 404
    huge = {"category_id": 10**12, "title": "Dost dlouhý", "body": "x"}
    assert jana.call("POST", "/api/v1/forum/topics", huge).status_code == 422
    topic = jana.topic(category)
    far = base64.urlsafe_b64encode(json.dumps({"after": 10**30}).encode()).decode()
    assert jana.call("GET", f"/api/v1/forum/topics/{topic['id']}", query={"cursor": far}).status_code == 422
    wrong = base64.urlsafe_b64encode(json.dumps({"as_of": 5, "id": "x"}).encode()).decode()
    assert jana.call("GET", f"/api/v1/forum/categories/{category}/topics", query={"cursor": wrong}).status_code == 422


def test_anonymous_callers_get_401_everywhere(forum):
    category = forum.category()
    topic = forum.person().topic(category)
    for method, path in [
        ("GET", "/api/v1/forum/categories"),
        ("GET", f"/api/v1/forum/categories/{category}/topics"),
        ("GET", f"/api/v1/forum/topics/{topic['id']}"),
        ("POST", f"/api/v1/forum/topics/{topic['id']}/posts"),
        ("GET", "/api/v1/forum/search?q=dotaz"),
        ("GET", "/api/v1/forum/subscriptions"),
    ]:
        answer = forum.call(method, path, {"body": "x"})
        assert answer.status_code == 401, (method, path)


def test_posting_is_throttled_per_person(forum, monkeypatch):
    monkeypatch.setenv("FORUM_POST_LIMIT", "3/60")
    jana, petr = forum.person("Jana"), forum.person("Petr")
    topic = jana.topic(forum.category())
    jana.reply(topic["id"])
    jana.reply(topic["id"])
    refused = jana.call("POST", f"/api/v1/forum/topics/{topic['id']}/posts", {"body": "ještě"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.content_type == "application/problem+json"
    petr.reply(topic["id"], "Petr smí")  # the limit is per person


def test_recent_topics_of_the_whole_forum_newest_activity_first(forum):
    pohoda, general = forum.category("POHODA"), forum.category("Obecné", None)
    jana, petr, support = forum.person("Jana"), forum.person("Petr"), forum.person("Podpora", staff=True)
    old = jana.topic(pohoda, "Starší dotaz")
    hidden = petr.topic(general, "Skrytý")
    new = petr.topic(general, "Novější dotaz")
    jana.reply(old["id"], "Oživení")  # activity moves the old one up
    support.call("PATCH", f"/api/v1/admin/forum/topics/{hidden['id']}", {"hidden": True})
    recent = jana.call("GET", "/api/v1/forum/topics", query={"limit": 5}).get_json()["items"]
    assert [(t["id"], t["category_name"]) for t in recent] == [(old["id"], "POHODA"), (new["id"], "Obecné")]
    assert jana.call("GET", "/api/v1/forum/topics", query={"limit": 21}).status_code == 422


def test_simultaneous_replies_are_all_counted(forum):
    jana = forum.person("Jana")
    topic = jana.topic(forum.category())
    people = [forum.person(f"Člověk {n}") for n in range(16)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(lambda person: person.reply(topic["id"], f"Od {person.name}"), people))
    shown = jana.call("GET", f"/api/v1/forum/topics/{topic['id']}", query={"limit": 100}).get_json()
    assert shown["replies"] == 16 and len(shown["posts"]) == 17
    assert shown["last_activity_at"] == max(reply["created_at"] for reply in replies)
