"""The portal's license pages through Flask's test client, with a scripted fake licensing
service beside the fake identity: what the list shows (support in words and colour, the
licenses ending soon), what it asks licensing (sort, cursor), the product registration form
and how each of licensing's answers reaches the person."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import parse_qs

import pytest

from tests.gateway.conftest import (
    ME,
    field_error,
    nav,
    post_signed_in,
    problem,
    text,
)

LIST = "/customers/1001/licenses"
FORM = "/customers/1001/product-registration"
API_LIST = "/api/v1/customers/1001/licenses"
API_REGISTER = "/api/v1/customers/1001/product-registrations"
TODAY = date.today()


def license_(number: str, **fields) -> dict:
    return {
        "installation_number": number,
        "customer_number": "1001",
        "product": "POHODA",
        "product_name": "POHODA",
        "edition": "Premium",
        "add_ons": [],
        "seats": 1,
        "channel": "direct",
        "partner": None,
        "status": "registered",
        "support_until": None,
        "support_status": "none",
    } | fields


DIRECT = license_(
    "AAAAAA-BBBBBB-CCCCCC",
    edition="Komplet",
    add_ons=["Mzdy", "Sklad"],
    seats=3,
    support_until=(TODAY + timedelta(days=400)).isoformat(),
    support_status="active",
)
SOON = license_(
    "DDDDDD-EEEEEE-FFFFFF",
    product="ZAKAZKY",
    product_name="Zakázky",
    channel="partner",
    partner="Alfa Software s.r.o.",
    support_until=(TODAY + timedelta(days=23)).isoformat(),
    support_status="expiring",
)
EXPIRED = license_(
    "GGGGGG-HHHHHH-JJJJJJ",
    product_name="Mzdy",
    support_until=(TODAY - timedelta(days=5)).isoformat(),
    support_status="expired",
)
NONE = license_("KKKKKK-MMMMMM-NNNNNN", product_name="Sklad")


class FakeLicensing:
    """Licensing's answers unless one is scripted: the list above, a registration that works."""

    def __init__(self):
        self.items = [DIRECT, SOON, EXPIRED, NONE]
        self.next = None

    def __call__(self, method: str, path: str):
        if method == "GET" and path.endswith("/licenses"):
            return 200, {"items": self.items, "next": self.next}, {}
        if method == "POST" and path.endswith("/product-registrations"):
            return 201, SOON, {}
        raise AssertionError(f"licensing was not asked for {method} {path}")


@pytest.fixture
def licensing(services) -> FakeLicensing:
    fake = FakeLicensing()
    services.defaults["licensing"] = fake
    return fake


def row(page: str, number: str) -> str:
    """The table row of one license."""
    match = re.search(r"<tr class=\"license[^\"]*\">(?:(?!</tr>).)*?" + re.escape(number) + r".*?</tr>", page, re.S)
    assert match, f"no row for {number}"
    return match.group(0)


def query(request) -> dict:
    return {name: values[0] for name, values in parse_qs(request.query).items()}


# --- the list ----------------------------------------------------------------------------------
def test_the_list_shows_each_license_with_its_number_and_support_in_words(signed_in, services, licensing):
    response = signed_in.get(LIST)
    assert response.status_code == 200
    page = text(response)
    assert '<h1 id="page-heading">Licence</h1>' in page
    direct = row(page, DIRECT["installation_number"])
    assert "POHODA" in direct and "Komplet" in direct
    assert '<span class="tag">Mzdy</span>' in direct and '<span class="tag">Sklad</span>' in direct
    assert 'data-label="Počet licencí">3<' in direct
    assert "přímo od nás" in direct
    # The number is selectable text in a monospace box; the copy button needs JavaScript.
    assert '<code class="installation-number" id="installation-number-1">AAAAAA-BBBBBB-CCCCCC</code>' in direct
    button = r'<button type="button" class="copy-button" data-copy="installation-number-1"[^>]* hidden>'
    assert re.search(button, direct)
    until = TODAY + timedelta(days=400)
    assert f'<span class="support support-active">platí do {until.day}. {until.month}. {until.year}</span>' in direct

    soon = row(page, SOON["installation_number"])
    assert "od partnera Alfa Software s.r.o." in soon
    assert '<span class="support support-expiring">vyprší za 23 dní</span>' in soon
    assert 'class="license ends-soon"' in soon  # highlighted
    assert "ends-soon" not in direct
    assert "SERVIS 1 licence na této stránce končí do 60 dnů." in page

    assert '<span class="support support-expired">vypršel ' in row(page, EXPIRED["installation_number"])
    assert '<span class="support support-none">bez podpory</span>' in row(page, NONE["installation_number"])
    assert '<script src="/assets/copy.js" defer></script>' in page
    asked = services.asked("GET", API_LIST)[-1]
    assert asked.service == "licensing" and query(asked) == {"sort": "product", "limit": "50"}
    assert asked.principal.subject == "u-ada"


def test_support_in_english_and_czech_plurals(signed_in, licensing):
    for days, words in [(1, "vyprší za 1 den"), (3, "vyprší za 3 dny"), (0, "vyprší dnes")]:
        licensing.items = [SOON | {"support_until": (TODAY + timedelta(days=days)).isoformat()}]
        assert words in text(signed_in.get(LIST))
    licensing.items = [DIRECT, SOON, EXPIRED, NONE]
    page = text(signed_in.get(LIST + "?lang=en"))
    assert "expires in 23 days" in page and "no support" in page and "directly from us" in page
    assert "valid until " in page and "expired on " in page and "from partner Alfa Software s.r.o." in page
    assert ">Licenses</h1>" in page and ">Copy<" in page


def test_sorting_paging_and_the_csv_link_pass_through(signed_in, services, licensing):
    licensing.next = "b2Zmc2V0OjUw"
    page = text(signed_in.get(LIST + "?sort=support_until"))
    assert query(services.asked("GET", API_LIST)[-1]) == {"sort": "support_until", "limit": "50"}
    assert '<a href="/customers/1001/licenses?sort=support_until" aria-current="true">konce servisu</a>' in page
    assert '<a href="/customers/1001/licenses?sort=product">produktu</a>' in page
    next_link = re.search(r'rel="next" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert next_link == "/customers/1001/licenses?sort=support_until&cursor=b2Zmc2V0OjUw"
    assert 'href="/api/v1/customers/1001/licenses.csv?sort=support_until" download' in page

    licensing.next = None
    page = text(signed_in.get(next_link))
    assert query(services.asked("GET", API_LIST)[-1]) == {
        "sort": "support_until",
        "limit": "50",
        "cursor": "b2Zmc2V0OjUw",
    }
    assert 'rel="next"' not in page
    assert '<a href="/customers/1001/licenses?sort=support_until">První stránka</a>' in page

    signed_in.get(LIST + "?sort=price")  # not a sort licensing knows: the default
    assert query(services.asked("GET", API_LIST)[-1])["sort"] == "product"


def test_a_stale_cursor_starts_again_from_the_first_page(signed_in, services, licensing):
    services.answer("GET", API_LIST, *problem(400, "bad-cursor"))
    response = signed_in.get(LIST + "?sort=product&cursor=garbage")
    assert response.status_code == 303 and response.headers["Location"] == LIST + "?sort=product"


def test_no_licenses_yet_offers_the_registration(signed_in, licensing):
    licensing.items = []
    page = text(signed_in.get(LIST))
    assert "Zatím žádné registrované licence" in page
    assert '<a class="button" href="/customers/1001/product-registration">Zaregistrovat produkt</a>' in page


def test_the_list_refuses_without_the_right_and_hides_other_profiles(signed_in, services, licensing):
    assert signed_in.get("/customers/1002/licenses").status_code == 403
    assert signed_in.get("/customers/9999/licenses").status_code == 404
    assert signed_in.get("/customers/1002/product-registration").status_code == 403
    assert services.asked("GET", "/api/v1/customers/1002/licenses") == []  # refused before asking
    # Licensing decides too: its answer is the page's.
    services.answer("GET", API_LIST, *problem(403, "missing-right"))
    assert signed_in.get(LIST).status_code == 403
    services.answer("GET", API_LIST, *problem(404, "not-found"))
    assert signed_in.get(LIST).status_code == 404


def test_licensing_down_is_an_error_page(signed_in, services):
    services.answer("GET", API_LIST, *problem(503, "service-unavailable", headers={"Retry-After": "5"}))
    response = signed_in.get(LIST)
    assert response.status_code == 503
    assert "Dočasně nedostupné" in text(response) or "není k dispozici" in text(response)


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for path in (LIST, FORM):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["Location"] == "/sign-in"


# --- navigation --------------------------------------------------------------------------------
def test_the_navigation_offers_licenses_only_with_the_right(signed_in, services, licensing):
    menu = nav(text(signed_in.get("/")))  # 1001: an administrator
    assert 'href="/customers/1001/licenses"' in menu and ">Licence<" in menu
    assert 'href="/customers/1001/product-registration"' in menu and ">Registrace produktu<" in menu
    menu = nav(text(signed_in.get(LIST)))
    assert re.search(r'href="/customers/1001/licenses" aria-current="page"', menu)

    post_signed_in(signed_in, "/profile", {"customer_number": "1002"})
    menu = nav(text(signed_in.get("/")))  # 1002: downloads only
    assert "licenses" not in menu and "product-registration" not in menu

    # A user who is no administrator but holds the licenses right sees both.
    services.answer(
        "GET",
        "/api/v1/me",
        200,
        ME
        | {
            "memberships": [
                {"customer_number": "1003", "company_name": "Gama", "administrator": False, "rights": ["licenses"]}
            ]
        },
    )
    menu = nav(text(signed_in.get("/")))
    assert 'href="/customers/1003/licenses"' in menu and 'href="/customers/1003/product-registration"' in menu
    assert "/users" not in menu and "/contacts" not in menu


def test_the_home_page_links_each_profile_with_the_right_to_its_licenses(signed_in):
    page = text(signed_in.get("/"))
    assert 'href="/customers/1001/licenses"' in page
    assert 'href="/customers/1002/licenses"' not in page


# --- product registration ----------------------------------------------------------------------
def test_the_registration_form_explains_why_and_names_the_profile(signed_in):
    page = text(signed_in.get(FORM))
    assert '<label for="f-installation-number">Instalační číslo</label>' in page
    assert 'aria-describedby="f-installation-number-hint"' in page
    assert "nezbytnou podmínkou pro získání nároku na soubor služeb SERVIS" in page
    assert "Teprve zaregistrovaný produkt najdete v seznamu licencí" in page
    assert "Acme s.r.o., ID zákazníka 1001" in page
    assert 'name="csrf_token"' in page


def test_registering_sends_what_was_typed_and_shows_it_in_the_list(signed_in, services, licensing):
    response = post_signed_in(signed_in, FORM, {"installation_number": "  dddddd eeeeee ffffff "}, FORM)
    assert response.status_code == 303
    assert response.headers["Location"] == LIST + "?registered=DDDDDD-EEEEEE-FFFFFF"
    assert services.sent("POST", API_REGISTER) == [{"installation_number": "dddddd eeeeee ffffff"}]
    assert services.asked("POST", API_REGISTER)[0].service == "licensing"
    page = text(signed_in.get(response.headers["Location"]))
    assert "Produkt s instalačním číslem DDDDDD-EEEEEE-FFFFFF je zaregistrovaný." in page
    assert "just-registered" in row(page, "DDDDDD-EEEEEE-FFFFFF")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("This installation number has a typo (its check character does not match).", "je překlep"),
        ("An installation number has 18 characters.", "má 18 znaků ve třech skupinách po šesti"),
        ("These characters do not occur in installation numbers: 0 O.", "číslice 2–9 a písmena A–Z kromě I, L, O a U"),
        ("Shorter than minimum length 1.", "Vyplňte prosím."),
    ],
)
def test_a_malformed_number_is_an_error_by_the_field(signed_in, services, message, expected):
    services.answer("POST", API_REGISTER, *problem(422, "validation-failed", {"installation_number": message}))
    response = post_signed_in(signed_in, FORM, {"installation_number": "ABCDEF-GHJKMN-PQRST8"}, FORM)
    assert response.status_code == 422
    assert expected in field_error(response, "installation_number")
    page = text(response)
    assert 'value="ABCDEF-GHJKMN-PQRST8"' in page  # what was typed stays, to be corrected
    assert 'aria-invalid="true"' in page
    assert 'aria-describedby="f-installation-number-hint f-installation-number-error"' in page
    assert 'id="page-message"' not in page


def test_a_typo_in_english(signed_in, services):
    services.answer(
        "POST",
        API_REGISTER,
        *problem(422, "validation-failed", {"installation_number": "This installation number has a typo."}),
    )
    signed_in.get(FORM + "?lang=en")
    response = post_signed_in(signed_in, FORM, {"installation_number": "x"}, FORM)
    assert field_error(response, "installation_number").startswith("This installation number has a typo.")


def test_a_refused_number_is_one_page_message_that_does_not_say_why(signed_in, services):
    services.answer("POST", API_REGISTER, *problem(422, "registration-refused"))
    response = post_signed_in(signed_in, FORM, {"installation_number": "ABCDEF-GHJKMN-PQRST7"}, FORM)
    assert response.status_code == 422
    message = re.search(r'<p class="alert" role="alert" id="page-message">([^<]+)</p>', text(response)).group(1)
    assert message.startswith("Toto instalační číslo nemůžeme k vašemu zákaznickému profilu zaregistrovat.")
    assert field_error(response, "installation_number") is None


def test_an_already_registered_product_points_to_the_list(signed_in, services):
    services.answer("POST", API_REGISTER, *problem(409, "already-registered"))
    response = post_signed_in(signed_in, FORM, {"installation_number": "ABCDEF-GHJKMN-PQRST7"}, FORM)
    assert response.status_code == 409
    assert "Tento produkt už je zaregistrovaný" in text(response)
    assert '<a href="/customers/1001/licenses">Přejít na seznam licencí</a>' in text(response)


def test_throttled_registration_says_how_many_minutes(signed_in, services):
    services.answer("POST", API_REGISTER, *problem(429, "too-many-requests", headers={"Retry-After": "301"}))
    response = post_signed_in(signed_in, FORM, {"installation_number": "ABCDEF-GHJKMN-PQRST7"}, FORM)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "301"
    assert "Příliš mnoho pokusů. Zkuste to znovu za 6 min." in text(response)


def test_licensing_down_is_a_message_on_the_form(signed_in, services):
    services.answer("POST", API_REGISTER, *problem(503, "service-unavailable", headers={"Retry-After": "5"}))
    response = post_signed_in(signed_in, FORM, {"installation_number": "ABCDEF-GHJKMN-PQRST7"}, FORM)
    assert response.status_code == 503
    assert "teď není k dispozici" in text(response)


def test_registering_needs_the_session_csrf_token_and_the_right(signed_in, services):
    assert signed_in.post(FORM, data={"installation_number": "ABCDEF-GHJKMN-PQRST7"}).status_code == 403
    forged = {"installation_number": "ABCDEF-GHJKMN-PQRST7", "csrf_token": "forged"}
    assert signed_in.post(FORM, data=forged).status_code == 403
    refused = post_signed_in(signed_in, "/customers/1002/product-registration", {"installation_number": "x"}, FORM)
    assert refused.status_code == 403
    assert post_signed_in(signed_in, "/customers/9999/product-registration", {}, FORM).status_code == 404
    assert [r for r in services.requests if r.service == "licensing"] == []


def test_registering_signed_out_goes_to_sign_in(client, services):
    response = client.post(FORM, data={"installation_number": "ABCDEF-GHJKMN-PQRST7"})
    assert response.status_code == 303 and response.headers["Location"] == "/sign-in"
    assert services.asked("POST", API_REGISTER) == []
