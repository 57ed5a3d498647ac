"""The portal's shell in a real browser: language, layout on a phone, headers, error pages,
signing in and out."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_czech_is_the_default_language(page, gateway_url):
    # Chromium asks for English (Accept-Language: en-US); the portal is Czech first anyway.
    page.goto(gateway_url + "/")
    assert page.locator("html").get_attribute("lang") == "cs"
    assert page.locator("h1").inner_text() == "Zákaznické centrum"
    assert page.get_by_role("link", name="Přihlásit se").first.is_visible()


def test_english_on_request_and_the_choice_sticks(page, gateway_url):
    page.goto(gateway_url + "/?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Customer Center"

    page.goto(gateway_url + "/")  # no ?lang: the cookie remembers
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Sign in").click()
    page.wait_for_url("**/sign-in")
    assert page.locator("h1").inner_text() == "Sign in"

    page.get_by_role("navigation", name="Language").get_by_role("link", name="Čeština").click()
    page.wait_for_url("**/sign-in?lang=cs")
    assert page.locator("h1").inner_text() == "Přihlásit se"
    page.goto(gateway_url + "/")
    assert page.locator("html").get_attribute("lang") == "cs"


@pytest.mark.parametrize("path", ["/", "/sign-in", "/?lang=en", "/no-such-page"])
def test_pages_fit_a_phone_without_horizontal_scrolling(phone, gateway_url, path):
    phone.goto(gateway_url + path)
    widths = phone.evaluate("() => ({scroll: document.documentElement.scrollWidth, viewport: window.innerWidth})")
    assert widths["viewport"] == 375
    assert widths["scroll"] <= widths["viewport"], widths


def test_pages_carry_a_content_security_policy_and_our_stylesheet_still_applies(page, gateway_url):
    violations = []
    page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))
    response = page.goto(gateway_url + "/")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"]
    font = page.evaluate("() => getComputedStyle(document.body).fontFamily")
    assert "system-ui" in font  # portal.css loaded from /assets under the policy
    assert violations == []


def test_an_unknown_page_is_an_html_404_in_the_chosen_language(page, gateway_url):
    response = page.goto(gateway_url + "/no-such-page")
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert page.locator("h1").inner_text() == "Stránka nenalezena"

    response = page.goto(gateway_url + "/no-such-page?lang=en")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    page.get_by_role("link", name="Go to the home page").click()
    page.wait_for_url(gateway_url + "/")


def test_signing_in_greets_by_name_and_signing_out_ends_it(page, gateway_url, known_user):
    page.goto(gateway_url + "/sign-in")
    page.get_by_label("E-mailová adresa").fill(known_user["email"])
    page.get_by_label("Heslo").fill("not the password")
    page.get_by_role("button", name="Přihlásit se").click()
    assert page.get_by_role("alert").inner_text() == "E-mailová adresa nebo heslo nejsou správné."
    assert page.get_by_label("E-mailová adresa").input_value() == known_user["email"]

    page.get_by_label("Heslo").fill(known_user["password"])
    page.get_by_role("button", name="Přihlásit se").click()
    page.wait_for_url(gateway_url + "/")
    assert page.locator("h1").inner_text() == "Dobrý den, Ada Lovelace"
    assert any(cookie["name"] == "cc_session" and cookie["httpOnly"] for cookie in page.context.cookies())

    page.get_by_role("button", name="Odhlásit se").click()
    page.wait_for_url(gateway_url + "/")
    assert page.locator("h1").inner_text() == "Zákaznické centrum"
    assert not any(cookie["name"] == "cc_session" for cookie in page.context.cookies())
