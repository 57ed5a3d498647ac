"""The portal's account and profile pages through Flask's test client, with a scripted fake
identity: what each page shows, what it sends identity, and how every kind of answer
(field errors, 409, 410, 404, 429, 503) reaches the person as a message."""

from __future__ import annotations

import re

import pytest

from tests.gateway.conftest import (
    ALL_RIGHTS,
    ME,
    USER,
    field_error,
    nav,
    post_form,
    post_signed_in,
    problem,
    text,
)

# --- registering ------------------------------------------------------------------------------
REGISTRATION = {
    "customer_number": "1001",
    "company_id": "255 966 41",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "password": "correct horse battery staple",
}


def test_the_register_page_asks_for_both_numbers_with_labels(client):
    page = text(client.get("/register"))
    for field, label in [
        ("customer-number", "ID zákazníka"),
        ("company-id", "IČ"),
        ("name", "Vaše jméno"),
        ("email", "E-mailová adresa"),
        ("password", "Heslo"),
    ]:
        assert f'<label for="f-{field}">{label}</label>' in page
    assert 'autocomplete="new-password"' in page
    assert 'href="/register"' in page  # the navigation offers registering to anonymous visitors


def test_registering_sends_the_fields_and_says_check_your_email(client, identity):
    response = post_form(client, "/register", REGISTRATION)
    assert response.status_code == 303
    assert response.headers["Location"] == "/register/sent"
    assert identity.sent("POST", "/api/v1/registrations") == [REGISTRATION | {"company_id": "25596641"}]
    principal = identity.calls[-1][3]
    assert principal.kind == "anonymous" and principal.client == "127.0.0.1"  # throttled per client
    sent = text(client.get("/register/sent"))
    assert "Zkontrolujte svůj e-mail" in sent and "do 2 dnů" in sent


def test_registration_field_errors_appear_next_to_their_fields_in_czech(client, identity):
    identity.answer(
        "POST",
        "/api/v1/registrations",
        *problem(
            422,
            "validation-failed",
            {
                "company_id": "Not a valid company ID (8 digits with a correct check digit).",
                "password": "This password is too common; choose another.",
            },
        ),
    )
    response = post_form(client, "/register", REGISTRATION)
    assert response.status_code == 422
    assert field_error(response, "company_id") == "Toto není platné IČ: 8 číslic se správnou kontrolní číslicí."
    assert field_error(response, "password") == "Toto heslo je příliš běžné. Zvolte jiné."
    assert 'aria-describedby="f-company-id-hint f-company-id-error"' in text(response)
    assert 'value="Ada Lovelace"' in text(response)  # what was typed stays
    assert REGISTRATION["password"] not in text(response)  # but never the password

    client.get("/?lang=en")
    response = post_form(client, "/register", REGISTRATION)
    assert field_error(response, "password") == "This password is too common. Choose another one."


@pytest.mark.parametrize(
    ("status", "slug", "expected"),
    [
        (422, "registration-mismatch", "ID zákazníka a IČ neodpovídají žádnému našemu zákazníkovi"),
        (409, "profile-has-administrator", "už má administrátora. Požádejte ho"),
        (409, "profile-claimed", "zatím nepotvrdil"),
    ],
)
def test_registration_problems_are_page_messages(client, identity, status, slug, expected):
    identity.answer("POST", "/api/v1/registrations", *problem(status, slug))
    response = post_form(client, "/register", REGISTRATION)
    assert response.status_code == status
    assert re.search(r'<p class="alert" role="alert" id="page-message">[^<]*' + expected, text(response))


def test_throttled_registration_says_how_long_to_wait(client, identity):
    identity.answer("POST", "/api/v1/registrations", *problem(429, "too-many-requests", headers={"Retry-After": "600"}))
    response = post_form(client, "/register", REGISTRATION)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "600"
    assert "Zkuste to znovu za 10 min." in text(response)


def test_identity_down_is_a_message_on_the_form(client, identity):
    identity.down = True
    response = post_form(client, "/register", REGISTRATION)
    assert response.status_code == 503
    assert "teď není k dispozici" in text(response)


def test_the_register_form_needs_its_form_token(client, identity):
    client.get("/register")
    response = client.post("/register", data=REGISTRATION)
    assert response.status_code == 400
    assert identity.sent("POST", "/api/v1/registrations") == []


# --- confirming ------------------------------------------------------------------------------
def test_the_confirmation_link_shows_a_button_and_only_the_post_confirms(client, identity):
    page = client.get("/confirm?token=abc")
    assert page.status_code == 200
    assert 'name="token" value="abc"' in text(page)
    assert identity.sent("POST", "/api/v1/registrations/confirm") == []  # a mail scanner's GET does nothing

    response = post_form(client, "/confirm", {"token": "abc"}, "/confirm?token=abc")
    assert response.status_code == 200
    assert identity.sent("POST", "/api/v1/registrations/confirm") == [{"token": "abc"}]
    assert "Registrace potvrzena" in text(response)
    assert 'href="/sign-in"' in text(response)


def test_a_lapsed_registration_offers_to_register_again(client, identity):
    identity.answer("POST", "/api/v1/registrations/confirm", *problem(410, "expired"))
    response = post_form(client, "/confirm", {"token": "old"}, "/confirm?token=old")
    assert response.status_code == 410
    assert "Platnost registrace vypršela" in text(response)
    assert re.search(r'<a class="button" href="/register">Zaregistrovat se znovu</a>', text(response))


def test_an_unknown_or_used_confirmation_link_says_so(client, identity):
    identity.answer("POST", "/api/v1/registrations/confirm", *problem(404, "unknown-token"))
    response = post_form(client, "/confirm", {"token": "used"}, "/confirm?token=used")
    assert response.status_code == 404
    assert "neznáme nebo už byl použit" in text(response)
    assert client.get("/confirm").status_code == 404  # no token at all


# --- forgotten password ------------------------------------------------------------------------
def test_asking_for_a_reset_link_answers_the_same_for_any_address(client, identity):
    page = client.get("/password-reset")
    assert '<label for="f-email">E-mailová adresa</label>' in text(page)
    response = post_form(client, "/password-reset", {"email": "who@example.com"})
    assert response.status_code == 200
    assert identity.sent("POST", "/api/v1/password-resets") == [{"email": "who@example.com"}]
    assert "Pokud účet s adresou who@example.com existuje" in text(response)


def test_the_reset_link_sets_a_new_password(client, identity):
    page = client.get("/password-reset?token=t1")
    assert 'name="token" value="t1"' in text(page) and 'autocomplete="new-password"' in text(page)
    response = post_form(client, "/password-reset", {"token": "t1", "password": "a new long password"})
    assert identity.sent("POST", "/api/v1/password-resets/confirm") == [
        {"token": "t1", "password": "a new long password"}
    ]
    assert "Nové heslo je nastaveno" in text(response)


def test_reset_errors(client, identity):
    path = "/api/v1/password-resets/confirm"
    identity.answer("POST", path, *problem(422, "validation-failed", {"password": "Use at least 8 characters."}))
    response = post_form(client, "/password-reset", {"token": "t1", "password": "short"})
    assert response.status_code == 422
    assert field_error(response, "password") == "Použijte alespoň 8 znaků (lépe 12 a více)."
    assert 'name="token" value="t1"' in text(response)  # the form stays usable

    identity.answer("POST", path, *problem(410, "expired"))
    response = post_form(client, "/password-reset", {"token": "t1", "password": "long enough!"})
    assert response.status_code == 410
    assert "Požádat o nový odkaz" in text(response)

    identity.answer("POST", path, *problem(404, "unknown-token"))
    response = post_form(client, "/password-reset", {"token": "t1", "password": "long enough!"})
    assert response.status_code == 404
    assert "neznáme nebo už byl použit" in text(response)


# --- invitation ------------------------------------------------------------------------------
def test_accepting_an_invitation_sets_the_password(client, identity):
    page = client.get("/invitation?token=inv")
    assert '<label for="f-password">Zvolte heslo</label>' in text(page)
    response = post_form(
        client, "/invitation", {"token": "inv", "password": "a long new password"}, "/invitation?token=inv"
    )
    assert identity.sent("POST", "/api/v1/invitations/accept") == [{"token": "inv", "password": "a long new password"}]
    assert "Váš účet je připraven" in text(response)


@pytest.mark.parametrize(
    ("answer", "status", "expected"),
    [
        (problem(410, "expired"), 410, "Požádejte administrátora svého zákaznického profilu"),
        (problem(404, "unknown-token"), 404, "neznáme nebo už byl použit"),
        (problem(422, "validation-failed", {"password": "This password is too common."}), 422, "příliš běžné"),
    ],
)
def test_invitation_errors(client, identity, answer, status, expected):
    identity.answer("POST", "/api/v1/invitations/accept", *answer)
    response = post_form(client, "/invitation", {"token": "inv", "password": "password"}, "/invitation?token=inv")
    assert response.status_code == status
    assert expected in text(response)


# --- navigation and home ---------------------------------------------------------------------
def test_the_home_page_greets_and_lists_the_profiles_with_what_each_allows(signed_in, identity):
    page = text(signed_in.get("/"))
    assert "Dobrý den, Ada Lovelace" in page
    assert "Acme s.r.o." in page and "Beta a.s." in page
    assert 'href="/customers/1001/users"' in page and 'href="/customers/1001/contacts"' in page
    assert 'href="/customers/1002/users"' not in page and 'href="/customers/1002/contacts"' not in page
    principal = next(p for m, path, _, p in identity.calls if path == "/api/v1/me")
    assert principal.subject == USER["id"] and principal.client == "127.0.0.1"


def test_the_navigation_follows_the_rights_in_the_current_profile(signed_in):
    menu = nav(text(signed_in.get("/")))  # the first profile: an administrator
    assert "Uživatelé a práva" in menu and "Adresy a zasílání" in menu and "Můj účet" in menu

    switched = post_signed_in(signed_in, "/profile", {"customer_number": "1002"})
    assert switched.status_code == 303
    assert "cc_profile=1002" in switched.headers["Set-Cookie"]
    menu = nav(text(signed_in.get("/")))  # only downloads there
    assert "Uživatelé a práva" not in menu and "Adresy a zasílání" not in menu and "Můj účet" in menu

    # A profile page's URL wins over the cookie, and becomes the remembered profile.
    signed_in.get("/customers/1001/users")
    assert signed_in.get_cookie("cc_profile").value == "1001"
    post_signed_in(signed_in, "/profile", {"customer_number": "9999"})  # not theirs: ignored
    assert signed_in.get_cookie("cc_profile").value == "1001"


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for path in ("/account", "/customers/1001/users", "/customers/1001/contacts"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["Location"] == "/sign-in"


# --- my account ------------------------------------------------------------------------------
def test_the_account_page_shows_details_memberships_and_changes_the_password(signed_in, identity):
    page = text(signed_in.get("/account"))
    assert "ada@example.com" in page and "Ada Lovelace" in page
    assert "Aktuální profil" in page and "Přepnout na tento profil" in page
    response = post_signed_in(
        signed_in, "/account/password", {"current_password": "old one", "new_password": "a brand new one"}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/account?done=password"
    assert identity.sent("PUT", "/api/v1/me/password") == [
        {"current_password": "old one", "new_password": "a brand new one"}
    ]
    assert "Vaše heslo bylo změněno." in text(signed_in.get("/account?done=password"))


def test_a_wrong_current_password_is_shown_by_its_field(signed_in, identity):
    identity.answer(
        "PUT",
        "/api/v1/me/password",
        *problem(422, "validation-failed", {"current_password": "The current password is not right."}),
    )
    response = post_signed_in(signed_in, "/account/password", {"current_password": "x", "new_password": "y" * 12})
    assert response.status_code == 422
    assert field_error(response, "current_password") == "Současné heslo není správné."


def test_signed_in_forms_need_the_session_csrf_token(signed_in, identity):
    for path in ("/account/password", "/profile", "/customers/1001/users", "/customers/1001/contacts/addresses"):
        assert signed_in.post(path, data={"csrf_token": "forged"}).status_code == 403
    assert [c for c in identity.calls if c[0] != "GET" and c[1] != "/internal/v1/credentials/verify"] == []


# --- users and rights --------------------------------------------------------------------------
def test_the_users_page_has_a_labelled_checkbox_per_right_per_user(signed_in):
    page = text(signed_in.get("/customers/1001/users"))
    assert "Bob" in page and "bob@example.com" in page and "Pozván, zatím bez hesla" in page
    bob_boxes = re.findall(r'<input type="checkbox" id="(rights-2-[a-z]+)"[^>]*form="rights-2"([^>]*)>', page)
    assert [box for box, _ in bob_boxes] == [f"rights-2-{r}" for r in ALL_RIGHTS]
    assert [right for (box, attributes) in bob_boxes if "checked" in attributes for right in [box[9:]]] == ["news"]
    assert '<label for="rights-2-news" class="visually-hidden">Aktuality a události: Bob</label>' in page
    assert 'action="/customers/1001/users/u-bob/remove"' in page
    assert 'action="/customers/1001/users/u-bob/administrator"' in page


def test_inviting_a_user_sends_name_email_and_rights(signed_in, identity):
    page = "/customers/1001/users"
    response = post_signed_in(
        signed_in,
        page,
        {"name": "Cyril", "email": "cyril@example.com", "rights": ["downloads", "bogus"]},
        page,
    )
    assert response.status_code == 303 and response.headers["Location"] == "/customers/1001/users?done=invited"
    assert identity.sent("POST", "/api/v1/customers/1001/users") == [
        {"name": "Cyril", "email": "cyril@example.com", "rights": ["downloads"]}
    ]


def test_invitation_errors_show_by_the_fields_and_keep_the_choices(signed_in, identity):
    page = "/customers/1001/users"
    identity.answer(
        "POST", "/api/v1/customers/1001/users", *problem(422, "validation-failed", {"email": "Not a valid email."})
    )
    response = post_signed_in(signed_in, page, {"name": "Cyril", "email": "nope", "rights": ["news"]}, page)
    assert response.status_code == 422
    assert field_error(response, "email") == "Zadejte platnou e-mailovou adresu."
    assert re.search(r'id="invite-news"[^>]*checked', text(response))

    identity.answer("POST", "/api/v1/customers/1001/users", *problem(409, "member-exists"))
    response = post_signed_in(signed_in, page, {"name": "Bob", "email": "bob@example.com", "rights": []}, page)
    assert response.status_code == 409
    assert "Tato osoba už do profilu přístup má." in text(response)


def test_changing_rights_administrator_and_removing(signed_in, identity):
    page = "/customers/1001/users"
    response = post_signed_in(signed_in, page + "/u-bob/rights", {"rights": ["news", "licenses"]}, page)
    assert response.headers["Location"] == page + "?done=rights"
    response = post_signed_in(signed_in, page + "/u-bob/administrator", {"administrator": "1"}, page)
    assert response.headers["Location"] == page + "?done=administrator"
    response = post_signed_in(signed_in, page + "/u-bob/remove", {}, page)
    assert response.headers["Location"] == page + "?done=removed"
    assert identity.sent("PATCH", "/api/v1/customers/1001/users/u-bob") == [
        {"rights": ["licenses", "news"]},
        {"administrator": True},
    ]
    assert identity.sent("DELETE", "/api/v1/customers/1001/users/u-bob") == [None]


def test_the_last_administrator_is_a_page_message(signed_in, identity):
    page = "/customers/1001/users"
    identity.answer("PATCH", "/api/v1/customers/1001/users/u-ada", *problem(409, "last-administrator"))
    response = post_signed_in(signed_in, page + "/u-ada/administrator", {"administrator": "0"}, page)
    assert response.status_code == 409
    assert "Profil musí mít alespoň jednoho administrátora." in text(response)


def test_profile_pages_refuse_without_the_right_and_hide_other_profiles(signed_in, identity):
    assert signed_in.get("/customers/1002/users").status_code == 403
    assert signed_in.get("/customers/1002/contacts").status_code == 403
    assert signed_in.get("/customers/9999/users").status_code == 404
    assert signed_in.get("/customers/9999/contacts").status_code == 404
    assert "Přístup odepřen" in text(signed_in.get("/customers/1002/users"))
    # identity decides too: its 403 is the page's 403
    identity.answer("GET", "/api/v1/customers/1001/users", *problem(403, "missing-right"))
    assert signed_in.get("/customers/1001/users").status_code == 403


# --- addresses and delivery ----------------------------------------------------------------------
def test_the_contacts_page_shows_the_profile_and_saves_addresses(signed_in, identity):
    page = "/customers/1001/contacts"
    shown = text(signed_in.get(page))
    assert "25596641" in shown and 'value="Main 1"' in shown
    assert '<label for="f-delivery-address-street">Ulice a číslo</label>' in shown
    address = {"street": "New 2", "city": "Brno", "postal_code": "60200", "country": "CZ"}
    form = {
        f"{kind}.{part}": value for kind in ("billing_address", "delivery_address") for part, value in address.items()
    }
    response = post_signed_in(signed_in, page + "/addresses", form, page)
    assert response.headers["Location"] == page + "?done=addresses"
    assert identity.sent("PUT", "/api/v1/customers/1001/addresses") == [
        {"billing_address": address, "delivery_address": address}
    ]


def test_address_errors_show_by_the_fields(signed_in, identity):
    page = "/customers/1001/contacts"
    identity.answer(
        "PUT",
        "/api/v1/customers/1001/addresses",
        *problem(422, "validation-failed", {"delivery_address.city": "Shorter than minimum length 1."}),
    )
    response = post_signed_in(signed_in, page + "/addresses", {"billing_address.city": "Praha"}, page)
    assert response.status_code == 422
    assert field_error(response, "delivery_address.city") == "Vyplňte prosím."
    assert 'value="Praha"' in text(response)


def test_choosing_dvd_delivery(signed_in, identity):
    page = "/customers/1001/contacts"
    response = post_signed_in(signed_in, page + "/delivery-method", {"delivery_method": "dvd"}, page)
    assert response.headers["Location"] == page + "?done=delivery"
    assert identity.sent("PUT", "/api/v1/customers/1001/delivery-method") == [{"delivery_method": "dvd"}]


def test_a_new_name_reaches_the_pages_and_every_session_of_the_person(signed_in, identity, client):
    """The session remembers the name from sign-in; after a rename identity's answer wins, for
    this browser and for the person's other sessions (read from the gateway's own store)."""
    store = client.application.extensions["sessions"]
    other_token, _ = store.open(USER | {"staff": False})
    response = post_signed_in(signed_in, "/account/name", {"name": "Ada King"})
    assert response.status_code == 303 and identity.sent("PATCH", "/api/v1/me") == [{"name": "Ada King"}]

    identity.answer("GET", "/api/v1/me", 200, ME | {"name": "Ada King", "email": "ada.king@example.com"})
    page = text(signed_in.get("/"))
    assert "Dobrý den, Ada King" in page and "Ada Lovelace" not in page
    signed_in.get("/account")
    latest = [p for m, path, _, p in identity.calls if path == "/api/v1/me"][-1]
    assert (latest.name, latest.email) == ("Ada King", "ada.king@example.com")  # services hear it too
    other = store.find(other_token)
    assert (other.name, other.email) == ("Ada King", "ada.king@example.com")
