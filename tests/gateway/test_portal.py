"""The portal's pages through Flask's test client: language selection, security headers,
HTML errors beside problem+json, and signing in and out with a fake identity service."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from gateway.app import create_app
from gateway.portal import i18n

from shared.config import Settings
from shared.migrations import upgrade
from shared.problems import Problem

USER = {"id": "0b6f3c1e-8d1a-4e5b-9c2d-7a8b9c0d1e2f", "email": "ada@example.com", "name": "Ada <b>Lovelace</b>"}
PORTAL = Path(i18n.__file__).parent


class FakeUpstream:
    """Stands in for `gateway.upstream.Upstream`: answers the credentials check as identity would."""

    def __init__(self):
        self.status, self.body, self.headers = 200, USER, {}
        self.calls: list[tuple[str, str, dict]] = []
        self.down = False

    def call(self, service, method, path, json_body=None, **_):
        self.calls.append((service, path, json_body))
        if self.down:
            raise Problem(503, "service-unavailable", headers={"Retry-After": "5"})
        return SimpleNamespace(status=self.status, json=lambda: self.body, headers=self.headers)


@pytest.fixture
def identity() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def app(tmp_path, identity):
    database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade("gateway", database_url)
    app = create_app(Settings(service="gateway", database_url=database_url, internal_auth_secret="t" * 64))
    app.extensions["upstream"] = identity
    yield app
    app.extensions["database"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def html_lang(response) -> str:
    return re.search(r'<html lang="([a-z]+)">', response.get_data(as_text=True)).group(1)


def form_token(response) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def sign_in(client, email=USER["email"], password="correct horse battery staple"):
    token = form_token(client.get("/sign-in"))
    return client.post("/sign-in", data={"email": email, "password": password, "form_token": token})


# Languages


def test_pages_are_czech_by_default_even_when_the_browser_asks_for_english(client):
    response = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert response.status_code == 200
    assert html_lang(response) == "cs"
    assert '<h1 id="page-heading">Zákaznické centrum</h1>' in response.get_data(as_text=True)
    assert "lang=" not in response.headers.get("Set-Cookie", "")


def test_lang_parameter_sets_a_lax_cookie_and_the_choice_sticks(client):
    response = client.get("/?lang=en")
    assert html_lang(response) == "en"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("lang=en;")
    assert "SameSite=Lax" in cookie and "Path=/" in cookie

    assert html_lang(client.get("/")) == "en"
    assert html_lang(client.get("/sign-in")) == "en"
    assert html_lang(client.get("/sign-in?lang=cs")) == "cs"
    assert html_lang(client.get("/")) == "cs"


def test_unknown_languages_are_ignored(client):
    response = client.get("/?lang=de")
    assert html_lang(response) == "cs"
    assert "Set-Cookie" not in response.headers
    client.set_cookie("lang", "xx")
    assert html_lang(client.get("/")) == "cs"


def test_language_links_stay_on_the_current_page(client):
    page = client.get("/sign-in").get_data(as_text=True)
    assert 'href="/sign-in?lang=en"' in page
    missing = client.get("/no-such-page").get_data(as_text=True)
    assert 'href="/?lang=en"' in missing  # never built from the raw path


def test_every_string_in_the_portal_has_a_czech_translation():
    with (PORTAL / "translations/cs/LC_MESSAGES/messages.po").open("rb") as po_file:
        catalog = read_po(po_file)
    method_map = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
    used = {message for _file, _line, message, _comments, _context in extract_from_dir(str(PORTAL), method_map)}
    untranslated = sorted(m for m in used if not (catalog.get(m) and catalog.get(m).string))
    assert untranslated == []


def test_catalogs_are_compiled_when_missing_or_stale(tmp_path):
    source = tmp_path / "translations"
    shutil.copytree(PORTAL / "translations", source, ignore=shutil.ignore_patterns("*.mo"))
    assert i18n.compile_catalogs(source) == source
    mo = source / "cs/LC_MESSAGES/messages.mo"
    assert mo.stat().st_size > 0
    po = source / "cs/LC_MESSAGES/messages.po"
    po.write_text(po.read_text(encoding="utf-8").replace('Zákaznické centrum"', 'ZC"', 1), encoding="utf-8")
    i18n.compile_catalogs(source)
    assert b"ZC" in mo.read_bytes()


# Headers and errors


@pytest.mark.parametrize("path", ["/", "/sign-in", "/?lang=en", "/no-such-page"])
def test_pages_carry_security_headers_and_no_inline_code(client, path):
    response = client.get(path)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert "<script" not in page and "style=" not in page and "https://" not in page


def test_browser_paths_get_html_error_pages_and_api_paths_keep_problem_json(client):
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    assert "Stránka nenalezena" in page.get_data(as_text=True)
    assert "Page not found" in client.get("/no-such-page?lang=en").get_data(as_text=True)

    not_allowed = client.put("/")
    assert not_allowed.status_code == 405 and not_allowed.mimetype == "text/html"
    assert "GET" in not_allowed.headers["Allow"]

    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.mimetype == "application/problem+json"
    assert api.get_json()["type"] == "urn:customer-center:problem:not-found"
    assert client.get("/api/v1/sessions").mimetype == "application/problem+json"
    assert "Content-Security-Policy" not in api.headers


def test_stylesheet_is_served_from_our_own_origin(client):
    response = client.get("/assets/portal.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"


# Signing in and out


def test_signing_in_opens_a_session_and_the_home_page_greets_by_name(client, identity):
    response = sign_in(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    session_cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("cc_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    assert identity.calls == [
        (
            "identity",
            "/internal/v1/credentials/verify",
            {"email": USER["email"], "password": "correct horse battery staple"},
        )
    ]

    home = client.get("/").get_data(as_text=True)
    assert "Dobrý den, Ada &lt;b&gt;Lovelace&lt;/b&gt;" in home  # escaped, never markup
    assert "Odhlásit se" in home
    assert client.get("/sign-in").status_code == 303  # signed in already


def test_the_sign_in_form_needs_its_form_token(client, identity):
    client.get("/sign-in")  # has the cookie but sends no field
    response = client.post("/sign-in", data={"email": USER["email"], "password": "whatever"})
    assert response.status_code == 400
    assert identity.calls == []
    assert client.get_cookie("cc_session") is None

    other = client.application.test_client()  # a field from someone else's form
    response = other.post(
        "/sign-in", data={"email": "a@b.cz", "password": "x", "form_token": form_token(client.get("/sign-in"))}
    )
    assert response.status_code == 400
    assert identity.calls == []


def test_a_wrong_password_gets_one_generic_answer(client, identity):
    identity.status, identity.body = 401, {"status": 401}
    response = sign_in(client, password="wrong")
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert "E-mailová adresa nebo heslo nejsou správné." in page
    assert 'value="ada@example.com"' in page  # the e-mail stays filled in
    assert client.get_cookie("cc_session") is None


def test_throttled_and_unavailable_sign_in_say_so(client, identity):
    identity.status, identity.body, identity.headers = 429, {}, {"Retry-After": "120"}
    response = sign_in(client)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "120"
    assert "Příliš mnoho pokusů" in response.get_data(as_text=True)

    identity.down = True
    response = sign_in(client)
    assert response.status_code == 503
    assert "Přihlášení teď není k dispozici" in response.get_data(as_text=True)


def test_empty_fields_are_refused_without_asking_identity(client, identity):
    response = sign_in(client, email="", password="")
    assert response.status_code == 422
    assert identity.calls == []


def test_signing_out_needs_the_session_csrf_token(client):
    sign_in(client)
    home = client.get("/").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home).group(1)

    forged = client.post("/sign-out", data={})
    assert forged.status_code == 403
    assert "Dobrý den" in client.get("/").get_data(as_text=True)

    response = client.post("/sign-out", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert client.get_cookie("cc_session") is None
    assert "Dobrý den" not in client.get("/").get_data(as_text=True)


def test_the_sessions_api_still_signs_in_and_out(client):
    response = client.post("/api/v1/sessions", json={"email": USER["email"], "password": "pw"})
    assert response.status_code == 201
    token = response.get_json()["token"]
    client.delete_cookie("cc_session")
    ended = client.delete("/api/v1/sessions/current", headers={"Authorization": f"Bearer {token}"})
    assert ended.status_code == 204
    again = client.delete("/api/v1/sessions/current", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401
