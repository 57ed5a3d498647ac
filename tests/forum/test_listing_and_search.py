"""Stable pages while people keep posting, and search that suits Czech, on both engines."""

from __future__ import annotations

from forum import search
from sqlalchemy import text


def _walk(person, path, limit, between_pages=lambda page: None):
    seen, cursor, page = [], None, 0
    while True:
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        answer = person.call("GET", path, query=query).get_json()
        key = "items" if "items" in answer else "posts"
        seen += [item["id"] for item in answer[key]]
        cursor = answer["next"]
        if not cursor:
            return seen
        page += 1
        between_pages(page)


def test_topic_pages_neither_repeat_nor_skip_while_replies_bump_topics(any_forum):
    forum = any_forum
    category = forum.category()
    jana, petr = forum.person("Jana"), forum.person("Petr")
    topics = [jana.topic(category, f"Téma číslo {n}")["id"] for n in range(12)]  # newest last
    expected = list(reversed(topics))

    def busy(page):
        # Between pages, replies move old topics to the top and a new topic starts.
        petr.reply(topics[page])
        petr.reply(topics[-page])
        jana.topic(category, f"Nové téma {page}")

    seen = _walk(petr, f"/api/v1/forum/categories/{category}/topics", 4, busy)
    assert seen == expected
    # A fresh walk shows the new order: bumped and new topics first.
    fresh = _walk(petr, f"/api/v1/forum/categories/{category}/topics", 50)
    assert len(fresh) == 12 + 2 and fresh[0] not in topics


def test_post_pages_are_stable_while_replies_arrive(any_forum):
    forum = any_forum
    jana, petr = forum.person("Jana"), forum.person("Petr")
    topic = jana.topic(forum.category(), "Dlouhá diskuse")["id"]
    for n in range(9):
        petr.reply(topic, f"Odpověď {n}")
    before = _walk(jana, f"/api/v1/forum/topics/{topic}", 100)

    arrived = []

    def reply_between_pages(page):
        arrived.append(petr.reply(topic, f"Během čtení {page}")["id"])

    seen = _walk(jana, f"/api/v1/forum/topics/{topic}", 3, reply_between_pages)
    assert seen == before + arrived and len(set(seen)) == len(seen)


def _search(person, q):
    return person.call("GET", "/api/v1/forum/search", query={"q": q}).get_json()["items"]


def test_search_finds_czech_words_with_and_without_diacritics(any_forum):
    forum = any_forum
    category = forum.category()
    jana = forum.person("Jana")
    closing = jana.topic(category, "Roční účetní závěrka", "Jak uzavřít účetnictví za rok 2026?")
    payroll = jana.topic(category, "Mzdy a zdravotní pojištění", "Přehled pro zdravotní pojišťovnu nejde vytisknout.")
    jana.reply(payroll["id"], "Pomohla mi **aktualizace** na novou verzi, také pro účetní závěrku.")

    for query in ("účetní závěrka", "ucetni zaverka", "UCETNI ZÁVĚRKA"):
        assert [h["topic_id"] for h in _search(jana, query)] == [closing["id"]], query
    # "závěrk" is how "závěrka" and "závěrku" begin: both match, the title's match first.
    assert [h["topic_id"] for h in _search(jana, "zaverk")] == [closing["id"], payroll["id"]]
    assert [h["topic_id"] for h in _search(jana, "pojistovnu")] == [payroll["id"]]
    assert [h["topic_id"] for h in _search(jana, "pojišť")] == [payroll["id"]]  # a prefix of an inflected word
    reply_hit = _search(jana, "aktualizace")[0]
    assert reply_hit["post_id"] != payroll["posts"][0]["id"]
    assert "<mark>aktualizace</mark>" in reply_hit["excerpt_html"] and "**" not in reply_hit["excerpt"]
    assert _search(jana, "nenalezitelné") == []


def test_search_input_cannot_break_the_query(any_forum):
    forum = any_forum
    jana = forum.person("Jana")
    jana.topic(forum.category(), "Export do XML", "Soubor s <b>tagy</b> & znaky")
    for query in ["'", '"', "a & | ! ( ) :* <->", "export' OR 1=1 --", "NEAR(", "*", "x" * 200, "  ", "___ _"]:
        answer = jana.call("GET", "/api/v1/forum/search", query={"q": query})
        assert answer.status_code == 200, (query, answer.get_json())
    assert _search(jana, "export' OR 1=1 --") == []  # every word must match
    escaped = _search(jana, "tagy")[0]["excerpt_html"]
    assert "<b>" not in escaped and "&lt;b&gt;tagy" in escaped  # what they typed, as text
    assert jana.call("GET", "/api/v1/forum/search", query={"q": ""}).status_code == 422


def _word_counts(forum, *words):
    with forum.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT term, posts FROM post_search_terms WHERE term = ANY(:words)"), {"words": list(words)}
        )
        return dict(rows.all())


def test_the_word_list_counts_the_posts_each_word_is_in(forum):
    """PostgreSQL's word list: kept in step with posts, edits and renamed topics."""
    category = forum.category()
    jana, support = forum.person("Jana"), forum.person("Podpora", staff=True)
    topic = jana.topic(category, "Roční závěrka", "Faktura za leden chybí.")
    reply = jana.reply(topic["id"], "Faktura i dobropis, faktura znovu.")  # a word counts once per post
    assert _word_counts(forum, "faktura", "zaverka", "dobropis", "rocni") == {
        "faktura": 2,
        "zaverka": 1,
        "dobropis": 1,
        "rocni": 1,
    }
    assert jana.call("PATCH", f"/api/v1/forum/posts/{reply['id']}", {"body": "Jen dobropis."}).status_code == 200
    renamed = support.call("PATCH", f"/api/v1/admin/forum/topics/{topic['id']}", {"title": "Měsíční závěrka"})
    assert renamed.status_code == 200
    assert _word_counts(forum, "faktura", "dobropis", "jen", "rocni", "mesicni", "zaverka") == {
        "faktura": 1,
        "dobropis": 1,
        "jen": 1,
        "rocni": 0,
        "mesicni": 1,
        "zaverka": 1,
    }
    assert [h["topic_id"] for h in _search(jana, "mesicn")] == [topic["id"]]
    assert _search(jana, "rocni") == []
    # The list only speeds search up: a word missing from it is found all the same.
    with forum.database.engine.begin() as connection:
        connection.execute(text("DELETE FROM post_search_terms WHERE term = 'dobropis'"))
    assert [h["post_id"] for h in _search(jana, "dobrop")] == [reply["id"]]


def test_search_ranks_the_newest_matches_and_still_finds_words_of_the_past(forum, monkeypatch):
    """PostgreSQL ranks the newest CANDIDATES matches (here 2), looked for first among the
    newest posts; a word used only long ago is found all the same, and every way of reading
    the matches gives the same answer."""
    monkeypatch.setattr(search, "CANDIDATES", 2)
    monkeypatch.setattr(search, "WINDOW_SPREAD", 1)
    monkeypatch.setattr(search, "WINDOW_MOST", 1.0)
    category = forum.category()
    jana = forum.person("Jana")
    old = jana.topic(category, "Inventura skladu", "Jak na inventuru?")
    older_replies = [jana.reply(old["id"], f"Inventura číslo {n}.")["id"] for n in range(3)]
    recent = jana.topic(category, "Dotazy", "Dotaz nula.")
    for n in range(40):
        jana.reply(recent["id"], f"Dotaz {n}.")
    # "inventur" is in the 4 oldest posts of 45: the newest posts are looked at first and
    # hold none of them, so all of them are; the newest 2 (the last replies) are ranked.
    for walk_share in (0.0, 1.0):  # walking the newest posts, or the GIN index's matches
        monkeypatch.setattr(search, "WALK_SHARE", walk_share)
        hits = _search(jana, "inventur")
        assert [h["post_id"] for h in hits] == [older_replies[2], older_replies[1]], walk_share
        dotaz = _search(jana, "dotaz")  # in the newest posts: found there
        assert len(dotaz) == 2 and all(h["topic_id"] == recent["id"] for h in dotaz)


def test_search_short_prefixes_of_many_words(forum, monkeypatch):
    """A prefix beginning more words than COMPLETIONS is searched as a prefix."""
    monkeypatch.setattr(search, "COMPLETIONS", 1)
    category = forum.category()
    jana = forum.person("Jana")
    invoice = jana.topic(category, "Faktura", "Vystavená faktura.")
    invoices = jana.topic(category, "Faktury", "Přijaté faktury a dobropis.")
    assert sorted(h["topic_id"] for h in _search(jana, "fakt")) == sorted([invoice["id"], invoices["id"]])
    assert [h["topic_id"] for h in _search(jana, "fakt dobro")] == [invoices["id"]]
