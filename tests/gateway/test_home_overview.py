"""The home page of a signed-in person through Flask's test client: the profile view of the
current profile (`gateway.overview.gather`, in-process, with the scripted services of
conftest.py): company, licenses with support ending soon highlighted, newest releases, news
and training courses, recent forum topics; a part whose service is down shows a notice in
its place, a part without the right is left out."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from tests.gateway.conftest import USER, post_signed_in, problem, text

API = "/api/v1/customers/1001"
TODAY = date.today()
LICENSES = {
    "items": [
        {
            "installation_number": "AAAAAA-BBBBBB-CCCCC2",
            "product": "ucetnictvi",
            "product_name": "Účetnictví",
            "edition": "Premium",
            "support_until": (TODAY + timedelta(days=400)).isoformat(),
        },
        {
            "installation_number": "DDDDDD-EEEEEE-FFFFF3",
            "product": "sklady",
            "product_name": "Sklady",
            "edition": "Standard",
            "support_until": (TODAY + timedelta(days=30)).isoformat(),
        },
        {
            "installation_number": "GGGGGG-HHHHHH-JJJJJ4",
            "product": "mzdy",
            "product_name": None,  # a product code only: shown as it is
            "edition": "Lite",
            "support_until": "2020-01-15",
        },
    ],
    "next": None,
}
RELEASES = [
    {"release_id": 1, "product": "ucetnictvi", "version": "2026.1", "kind": "full", "released_on": "2026-01-05"},
    {"release_id": 2, "product": "ucetnictvi", "version": "2026.2", "kind": "update", "released_on": "2026-03-01"},
]
NEWS = [
    {"id": 1, "kind": "news", "title": "Nová verze Účetnictví", "published_at": "2026-10-01T08:00:00+00:00"},
    {
        "id": 2,
        "kind": "training",
        "title": "Školení uzávěrky",
        "starts_at": "2099-01-10T09:00:00+00:00",
        "city": "Praha",
    },
]
TOPICS = {
    "items": [
        {
            "id": 7,
            "title": "Uzávěrka <b>roku</b>",
            "category_name": "Účetnictví",
            "replies": 3,
            "last_activity_at": "2026-03-02T10:00:00+00:00",
        }
    ],
    "next": None,
}
NOTICE = "Tuto část teď nelze zobrazit, zkuste to prosím za chvíli."


def card(page: str, part: str) -> str | None:
    """One part's card on the home page, or None when the page has none."""
    match = re.search(rf'<section class="card overview-card overview-{part}".*?</section>', page, re.S)
    return match.group(0) if match else None


@pytest.fixture
def every_part(services, distribution):
    """Every service answers the profile view of 1001."""
    services.answer("GET", f"{API}/licenses", 200, LICENSES)
    services.answer("GET", "/api/v1/forum/topics", 200, TOPICS)
    distribution.releases = RELEASES
    distribution.news = NEWS
    return services


def test_the_home_page_shows_every_part_of_the_current_profile(signed_in, every_part):
    page = text(signed_in.get("/"))
    assert "Dobrý den, Ada Lovelace" in page
    assert NOTICE not in page

    company = card(page, "company")
    assert "Acme s.r.o." in company and "ID zákazníka 1001" in company and "IČ 25596641" in company
    assert "Main 1<br>11000 Praha" in company
    assert "stejná jako fakturační" in company and "Stahování" in company  # no delivery address: the billing one
    assert 'href="/customers/1001/contacts"' in company

    licenses = card(page, "licenses")
    rows = re.findall(r'<li class="overview-license support-row-(\w+)">(.*?)</li>', licenses, re.S)
    # Support ending soon first (the profile view's order), highlighted, in days.
    assert [state for state, _ in rows] == ["expiring", "expired", "active"]
    assert "Sklady" in rows[0][1] and "DDDDDD-EEEEEE-FFFFF3" in rows[0][1]
    assert "SERVIS končí za 30 dní" in rows[0][1]
    assert "mzdy" in rows[1][1] and "SERVIS skončil 15. 1. 2020" in rows[1][1]
    assert "Účetnictví" in rows[2][1] and "Premium" in rows[2][1] and "SERVIS platí do" in rows[2][1]
    assert 'href="/customers/1001/licenses"' in licenses

    downloads = card(page, "downloads")
    assert downloads.index("Verze 2026.2") < downloads.index("Verze 2026.1")  # newest first
    assert "Účetnictví" in downloads and "ucetnictvi" not in downloads  # the product's name, from the licenses
    assert "1. 3. 2026" in downloads and 'href="/customers/1001/downloads"' in downloads

    news = card(page, "news")
    assert "Školení uzávěrky" in news and "10. 1. 2099 10:00" in news and "Praha" in news
    assert "Nová verze Účetnictví" in news and "1. 10. 2026" in news
    assert 'href="/customers/1001/news"' in news

    forum = card(page, "forum")
    assert '<a href="/forum/topics/7">Uzávěrka &lt;b&gt;roku&lt;/b&gt;</a>' in forum  # escaped, never markup
    assert "Účetnictví" in forum and "3 odpovědi" in forum and "2. 3. 2026 11:00" in forum

    # Each service was asked as the signed-in person, about the current profile.
    asked = {r.path: r for r in every_part.requests if r.method == "GET" and "/me" not in r.path}
    assert {f"{API}/profile", f"{API}/licenses", f"{API}/downloads", f"{API}/news", "/api/v1/forum/topics"} <= set(
        asked
    )
    assert all(r.principal.subject == USER["id"] for r in asked.values())
    # The switcher stays, below.
    assert "Vaše zákaznické profily" in page and "Přepnout na tento profil" in page


def test_the_first_licenses_and_a_link_to_all_of_them(signed_in, every_part):
    many = [{"installation_number": f"N{n}", "product": "sklady", "support_until": None} for n in range(7)]
    every_part.answer("GET", f"{API}/licenses", 200, {"items": many, "next": None})
    licenses = card(text(signed_in.get("/")), "licenses")
    assert licenses.count('<li class="overview-license') == 5 and "bez podpory" in licenses
    assert '<a href="/customers/1001/licenses">Všech 7 licencí</a>' in licenses


def test_a_dead_service_shows_a_notice_in_its_place_and_the_rest_still_renders(signed_in, every_part):
    del every_part.scripted[("GET", "/api/v1/forum/topics")]  # forum is not running
    every_part.answer("GET", f"{API}/licenses", *problem(500, "internal"))  # licensing fails
    response = signed_in.get("/")
    assert response.status_code == 200
    page = text(response)
    assert NOTICE in card(page, "forum") and "/forum/topics/7" not in page
    assert NOTICE in card(page, "licenses") and "DDDDDD-EEEEEE-FFFFF3" not in page
    assert page.count(NOTICE) == 2
    assert "Acme s.r.o." in card(page, "company")
    assert "Verze 2026.2" in card(page, "downloads") and "Školení uzávěrky" in card(page, "news")
    assert "ucetnictvi" in card(page, "downloads")  # no licenses, no product names: the code


def test_parts_without_the_right_are_left_out(signed_in, every_part):
    every_part.answer("GET", f"{API}/licenses", *problem(403, "missing-right"))
    every_part.answer("GET", f"{API}/news", *problem(403, "missing-right"))
    page = text(signed_in.get("/"))
    assert card(page, "licenses") is None and card(page, "news") is None
    assert "overview-licenses-heading" not in page and "Školení uzávěrky" not in page
    assert NOTICE not in page
    assert card(page, "company") and card(page, "downloads") and card(page, "forum")


def test_when_nothing_can_be_shown_one_notice_says_so(signed_in, services):
    services.answer("GET", f"{API}/profile", *problem(503, "service-unavailable"))  # and nothing else runs
    response = signed_in.get("/")
    assert response.status_code == 200
    page = text(response)
    assert page.count("Přehled vašeho zákaznického profilu teď nelze zobrazit, zkuste to prosím za chvíli.") == 1
    assert NOTICE not in page and card(page, "company") is None
    assert "Přepnout na tento profil" in page  # the profiles and the switcher still work


def test_the_switched_to_profile_is_the_one_shown(signed_in, services, distribution):
    # 1002: only the downloads right there; licensing and distribution's news refuse.
    for path in ("licenses", "news"):
        services.answer("GET", f"/api/v1/customers/1002/{path}", *problem(403, "missing-right"))
    services.answer("GET", "/api/v1/forum/topics", 200, TOPICS)
    distribution.releases = RELEASES
    assert post_signed_in(signed_in, "/profile", {"customer_number": "1002"}, "/").status_code == 303
    services.requests.clear()
    page = text(signed_in.get("/"))
    assert "Přehled zákaznického profilu Beta a.s., ID zákazníka 1002." in page
    assert services.asked("GET", "/api/v1/customers/1002/downloads")
    assert not services.asked("GET", f"{API}/downloads")
    assert card(page, "licenses") is None and card(page, "news") is None
    assert 'href="/customers/1002/downloads"' in card(page, "downloads")
    assert "/customers/1002/contacts" not in card(page, "company")  # no contacts right there


def test_english_on_request(signed_in, every_part):
    del every_part.scripted[("GET", "/api/v1/forum/topics")]
    page = text(signed_in.get("/?lang=en"))
    assert "Hello, Ada Lovelace" in page
    assert "An overview of the customer profile Acme s.r.o., customer number 1001." in page
    assert ">Company<" in card(page, "company") and "the same as the billing address" in page
    assert ">Licenses<" in card(page, "licenses") and "Support ends in 30 days" in page
    assert ">Newest releases<" in card(page, "downloads") and "Version 2026.2" in page
    assert "Upcoming training courses" in card(page, "news")
    assert "This part cannot be shown right now. Please try again in a moment." in card(page, "forum")
    assert "SERVIS" not in page and "Verze" not in page
