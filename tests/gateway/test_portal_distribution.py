"""The portal's downloads, download history, documents and news pages through Flask's test
client, with a scripted fake distribution service beside the fake identity: what each page
shows (grouping and order, sizes in the page's language, checksums, safe Markdown), the
navigation by rights, and how distribution's errors reach the person."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from gateway.portal.markdown import render
from markupsafe import Markup

from tests.gateway.conftest import ME, linked_file, nav, post_signed_in, problem, text

DOWNLOADS = "/customers/1001/downloads"
HISTORY = "/customers/1001/download-history"
DOCUMENTS = "/customers/1001/documents"
NEWS = "/customers/1001/news"
API = "/api/v1/customers/1001/"
NOW = datetime.now(UTC)


def release(release_id: int, product: str, version: str, released_on: str, **fields) -> dict:
    return {
        "release_id": release_id,
        "product": product,
        "version": version,
        "kind": "full",
        "channel": "stable",
        "released_on": released_on,
        "notes": "",
        "files": [],
    } | fields


ZAKAZKY = release(3, "zakazky", "2.0", "2026-01-10", files=[linked_file(30, "zakazky-2.0.exe", 734_003_200)])
UCTO_OLD = release(1, "ucetnictvi", "1.0", "2025-06-01", files=[linked_file(10, "ucto-1.0.exe", 4096)])
UCTO_NEW = release(
    2,
    "ucetnictvi",
    "1.1",
    "2026-02-01",
    kind="update",
    channel="beta",
    notes="# Co je nového\n- **rychlejší** tisk\n- opravy `DPH`\n\n<script>alert('x')</script>",
    files=[linked_file(20, "ucto-1.1.msp", 1_610_612_736), linked_file(21, "readme.txt", 512)],
)


def section(page: str, heading_text: str) -> str:
    """The <section> whose heading says `heading_text`."""
    match = re.search(r"<section[^>]*>\s*<h2[^>]*>" + re.escape(heading_text) + r"</h2>.*?</section>", page, re.S)
    assert match, f"no section {heading_text!r}"
    return match.group(0)


# --- downloads -----------------------------------------------------------------------------
def test_downloads_are_grouped_by_product_newest_first(signed_in, services, distribution):
    distribution.releases = [ZAKAZKY, UCTO_OLD, UCTO_NEW]
    response = signed_in.get(DOWNLOADS)
    assert response.status_code == 200
    page = text(response)
    assert '<h1 id="page-heading">Ke stažení</h1>' in page
    headings = re.findall(r'<h2 id="product-\d+" class="product-heading">([^<]+)</h2>', page)
    assert headings == ["ucetnictvi", "zakazky"]
    versions = re.findall(r'class="release-title">Verze ([^<]+)</h3>', page)
    assert versions == ["1.1", "1.0", "2.0"]  # each product's newest first

    ucto = section(page, "ucetnictvi")
    assert '<span class="badge badge-update">Aktualizace</span>' in ucto
    assert '<span class="badge badge-beta">Beta: k vyzkoušení</span>' in ucto
    assert "release-beta" in ucto
    assert '<span class="badge badge-full">Plná verze</span>' in ucto
    assert "vydáno 1. 2. 2026" in ucto
    asked = services.asked("GET", API + "downloads")[-1]
    assert asked.service == "distribution" and asked.principal.subject == "u-ada"


def test_each_file_is_a_plain_link_with_its_size_and_checksum(signed_in, distribution):
    distribution.releases = [ZAKAZKY, UCTO_NEW]
    page = text(signed_in.get(DOWNLOADS))
    # A normal link to the signed URL: the browser's download manager resumes it with Range.
    url = "http://cc.example/api/v1/files/20/ucto-1.1.msp?customer=1001&amp;expires=1&amp;signature=s"
    assert f'<a class="file-link" href="{url}">ucto-1.1.msp</a>' in page
    assert '<span class="file-size">1,5\u00a0GB</span>' in page
    assert '<span class="file-size">700\u00a0MB</span>' in page
    assert '<span class="file-size">512\u00a0B</span>' in page
    checksum = "20" + "ab" * 31
    assert re.search(r'<code class="checksum-value" id="([^"]+)">' + checksum + "</code>", page)
    box_id = re.search(r'<code class="checksum-value" id="([^"]+)">' + checksum, page).group(1)
    assert re.search(rf'<button type="button" class="copy-button" data-copy="{box_id}"[^>]* hidden>Kopírovat', page)
    assert '<script src="/assets/copy.js" defer></script>' in page
    assert '<p class="visually-hidden" role="status" id="copy-status"></p>' in page
    assert "<code>certutil -hashfile soubor SHA256</code>" in page


def test_sizes_in_english_use_a_decimal_point(signed_in, distribution):
    distribution.releases = [UCTO_NEW, UCTO_OLD]
    page = text(signed_in.get(DOWNLOADS + "?lang=en"))
    assert '<span class="file-size">1.5\u00a0GB</span>' in page
    assert '<span class="file-size">4\u00a0kB</span>' in page
    assert ">Downloads</h1>" in page and ">Version 1.1</h3>" in page and "Beta: for testing" in page
    assert "<code>certutil -hashfile file SHA256</code>" in page


def test_release_notes_are_escaped_markdown(signed_in, distribution):
    distribution.releases = [UCTO_NEW]
    page = text(signed_in.get(DOWNLOADS))
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    notes = re.search(r'<div class="release-notes">(.*?)</div>', page, re.S).group(1)
    assert "<h3>Co je nového</h3>" in notes
    assert "<li><strong>rychlejší</strong> tisk</li>" in notes and "<li>opravy <code>DPH</code></li>" in notes


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("plain\nnext line", "<p>plain<br>\nnext line</p>"),
        ('<img src=x onerror="alert(1)">', "<p>&lt;img src=x onerror=&#34;alert(1)&#34;&gt;</p>"),
        ("[docs](https://example.com/a?b=1&c=2)", '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener'),
        ("[bad](javascript:alert(1))", "<p>[bad](javascript:alert(1))</p>"),
        ('[q](https://x.example/"onmouseover=alert(1))', "<p>[q](https://x.example/&#34;onmouseover=alert(1))</p>"),
        ("1. one\n2. two", "<ol><li>one</li><li>two</li></ol>"),
        ("`<b>` and *it*", "<p><code>&lt;b&gt;</code> and <em>it</em></p>"),
        ("snake_case_name", "<p>snake_case_name</p>"),
    ],
)
def test_markdown_is_minimal_and_safe(source, html):
    rendered = render(source)
    assert isinstance(rendered, Markup)
    assert html in str(rendered)
    assert render(None) == "" and render("") == ""


def test_no_downloads_yet_says_why(signed_in, distribution):
    page = text(signed_in.get(DOWNLOADS))
    assert "Zatím není co stáhnout" in page
    assert 'href="/customers/1001/licenses"' in page
    assert "checksum-heading" not in page


# --- history -------------------------------------------------------------------------------
def test_the_history_lists_downloads_newest_first(signed_in, services, distribution):
    distribution.history = [
        {"file_id": 10, "name": "ucto-1.0.exe", "product": "ucetnictvi", "version": "1.0"}
        | {"at": "2026-03-01T08:30:00+00:00", "user_id": None, "installation_number": None},
        {"file_id": 20, "name": "ucto-1.1.msp", "product": "ucetnictvi", "version": "1.1"}
        | {"at": "2026-03-02T13:05:00+00:00", "user_id": None, "installation_number": "ABCDEF-GHJKMN-PQRST7"},
        {"file_id": 40, "name": "cenik.pdf", "product": None, "version": None}
        | {"at": "2026-02-01T10:00:00+00:00", "user_id": "u-ada", "installation_number": None},
    ]
    response = signed_in.get(HISTORY)
    assert response.status_code == 200
    page = text(response)
    assert '<h1 id="page-heading">Historie stahování</h1>' in page
    assert re.findall(r'class="history-file">([^<]+)<', page) == ["ucto-1.1.msp", "ucto-1.0.exe", "cenik.pdf"]
    assert ">2. 3. 2026 14:05</time>" in page  # Czech time
    assert "Program, instalační číslo ABCDEF-GHJKMN-PQRST7" in page
    assert "Zákaznické centrum" in page and ">dokument<" in page
    assert services.asked("GET", API + "download-history")[-1].service == "distribution"
    menu = nav(page)
    assert re.search(r'href="/customers/1001/downloads" aria-current="page"', menu)


def test_an_empty_history(signed_in, distribution):
    page = text(signed_in.get(HISTORY))
    assert "Zatím nic staženo" in page
    assert '<a class="button" href="/customers/1001/downloads">Přejít na stahování</a>' in page
    assert "<table" not in page


# --- documents -----------------------------------------------------------------------------
def test_documents_with_their_files(signed_in, distribution):
    distribution.documents = [
        {
            "id": 1,
            "title": "Ceník 2026",
            "description": "Platí od **1. ledna**. <b>x</b>",
            "product": "ucetnictvi",
            "published_at": "2026-01-02T09:00:00+00:00",
            "files": [linked_file(40, "cenik.pdf", 250_000)],
        },
        {"id": 2, "title": "Příručka", "description": "", "product": None, "published_at": None, "files": []},
    ]
    page = text(signed_in.get(DOCUMENTS))
    assert '<h1 id="page-heading">Dokumenty</h1>' in page
    assert re.findall(r'class="document-title">([^<]+)<', page) == ["Ceník 2026", "Příručka"]
    assert '<a class="file-link" href="http://cc.example/api/v1/files/40/cenik.pdf?' in page
    assert '<span class="file-size">244\u00a0kB</span>' in page
    assert "Platí od <strong>1. ledna</strong>. &lt;b&gt;x&lt;/b&gt;" in page
    assert "zveřejněno 2. 1. 2026" in page
    assert "Soubory tohoto dokumentu zatím nejsou k dispozici." in page

    distribution.documents = []
    assert "Zatím žádné dokumenty" in text(signed_in.get(DOCUMENTS))


# --- news ----------------------------------------------------------------------------------
def news_item(item_id: int, kind: str, title: str, published: datetime, starts: datetime | None = None, **fields):
    return {
        "id": item_id,
        "kind": kind,
        "title": title,
        "body": f"O {title}",
        "published_at": published.isoformat(),
        "starts_at": starts.isoformat() if starts else None,
        "city": None,
        "capacity": None,
    } | fields


def test_upcoming_training_is_highlighted_before_the_news_and_past_events(signed_in, distribution):
    soon, later = NOW + timedelta(days=3), NOW + timedelta(days=30)
    distribution.news = [
        news_item(1, "news", "Nová verze", NOW - timedelta(days=1)),
        news_item(2, "training", "Školení mezd", NOW - timedelta(days=2), later, city="Brno", capacity=12),
        news_item(3, "event", "Konference", NOW - timedelta(days=3), soon, city="Praha", capacity=1),
        news_item(4, "training", "Loňské školení", NOW - timedelta(days=90), NOW - timedelta(days=60), city="Ostrava"),
        news_item(5, "news", "Starší zpráva", NOW - timedelta(days=10), body="<script>x()</script>"),
    ]
    page = text(signed_in.get(NEWS))
    assert '<h1 id="page-heading">Aktuality a školení</h1>' in page
    upcoming = section(page, "Nadcházející školení a akce")
    assert re.findall(r"<h3 id=\"upcoming-\d+\">([^<]+)</h3>", upcoming) == ["Konference", "Školení mezd"]
    assert "is-upcoming" in upcoming
    assert '<span class="badge badge-training">Školení</span>' in upcoming
    assert "<dd>Brno</dd>" in upcoming and "<dd>12 míst</dd>" in upcoming and "<dd>1 místo</dd>" in upcoming
    assert f'<time datetime="{later.isoformat()}">' in upcoming
    news = section(page, "Aktuality")
    assert re.findall(r"<h3 id=\"news-\d+\">([^<]+)</h3>", news) == ["Nová verze", "Starší zpráva"]
    assert '<span class="badge">Aktualita</span>' in news
    assert "&lt;script&gt;x()&lt;/script&gt;" in news and "<script>x()" not in page
    past = section(page, "Proběhlá školení a akce")
    assert "Loňské školení" in past and "Loňské školení" not in upcoming
    assert page.index("Nadcházející školení a akce") < page.index(">Aktuality</h2>") < page.index("Proběhlá")


def test_no_news_and_no_training(signed_in, distribution):
    page = text(signed_in.get(NEWS + "?lang=en"))
    assert ">News and training</h1>" in page
    assert "No training courses or events are planned right now." in page and "No news yet." in page
    assert "Past training courses and events" not in page


# --- rights, navigation and errors ---------------------------------------------------------
def test_the_navigation_offers_each_page_only_with_its_right(signed_in, services, distribution):
    menu = nav(text(signed_in.get("/")))  # 1001: an administrator
    assert 'href="/customers/1001/downloads"' in menu and ">Ke stažení<" in menu
    assert 'href="/customers/1001/documents"' in menu and ">Dokumenty<" in menu
    assert 'href="/customers/1001/news"' in menu and ">Aktuality a školení<" in menu
    menu = nav(text(signed_in.get(DOCUMENTS)))
    assert re.search(r'href="/customers/1001/documents" aria-current="page"', menu)

    post_signed_in(signed_in, "/profile", {"customer_number": "1002"})
    menu = nav(text(signed_in.get("/")))  # 1002: downloads only
    assert 'href="/customers/1002/downloads"' in menu
    assert "/documents" not in menu and "/news" not in menu

    only_news = {"customer_number": "1003", "company_name": "Gama", "administrator": False, "rights": ["news"]}
    services.answer("GET", "/api/v1/me", 200, ME | {"memberships": [only_news]})
    menu = nav(text(signed_in.get("/?lang=en")))
    assert 'href="/customers/1003/news"' in menu and ">News and training<" in menu
    assert "/downloads" not in menu and "/documents" not in menu


def test_the_home_page_links_each_profile_to_its_pages(signed_in):
    page = text(signed_in.get("/"))
    assert 'href="/customers/1001/downloads"' in page and 'href="/customers/1002/downloads"' in page
    assert 'href="/customers/1001/news"' in page and 'href="/customers/1002/news"' not in page


@pytest.mark.parametrize("path", [DOCUMENTS, NEWS])
def test_pages_refuse_without_the_right_before_asking(signed_in, services, distribution, path):
    other = path.replace("1001", "1002")
    response = signed_in.get(other)
    assert response.status_code == 403
    assert "Přístup odepřen" in text(response)
    assert signed_in.get(path.replace("1001", "9999")).status_code == 404
    assert [r for r in services.requests if r.service == "distribution"] == []


@pytest.mark.parametrize("path", [DOWNLOADS, HISTORY, DOCUMENTS, NEWS])
@pytest.mark.parametrize(("status", "words"), [(403, "Přístup odepřen"), (404, "Stránka nenalezena")])
def test_distribution_refusing_is_the_page_answer(signed_in, services, path, status, words):
    services.answer("GET", "/api" + "/v1" + path, *problem(status, "missing-right" if status == 403 else "not-found"))
    response = signed_in.get(path)
    assert response.status_code == status
    assert words in text(response)


@pytest.mark.parametrize("path", [DOWNLOADS, HISTORY, DOCUMENTS, NEWS])
def test_distribution_down_is_an_error_page(signed_in, services, path):
    services.answer("GET", "/api/v1" + path, *problem(503, "service-unavailable", headers={"Retry-After": "5"}))
    response = signed_in.get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Dočasně nedostupné" in text(response)


@pytest.mark.parametrize("path", [DOWNLOADS, HISTORY, DOCUMENTS, NEWS])
def test_anonymous_visitors_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 303 and response.headers["Location"] == "/sign-in"
