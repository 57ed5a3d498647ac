"""Every portal form that creates something carries a fresh random key per rendering (a hidden
`idempotency_key`), and its POST sends it to the service as `Idempotency-Key` (api.md,
"Retries"): a double click or a resent form then sends the same key, and the service answers
it with its first answer, so the person lands where the first sending led. A key reused for
other details (`422 idempotency-key-reused`) is a clear message on the form, never an error
page. A form whose outcome is unknown (503, 504) is shown again with its key, so sending it
again is safe. Through Flask's test client with the scripted services of conftest.py; the same against
the real services is tests/e2e/test_portal_idempotency_end_to_end.py."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass, field

import pytest

from tests.gateway.conftest import CREDENTIALS_PATH, USER, post_form, problem, text
from tests.gateway.test_forum_pages_client import FakeForum, post, topic

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
REUSED_CS = "Tento formulář už jednou odešel, a to s jinými údaji."
REUSED_EN = "This form was already sent once, with other details."


@dataclass(frozen=True)
class Form:
    """One creating form: the page that shows it, where it posts, what it sends, the service
    call it makes with the answer the fake gives, and where a success leads."""

    name: str
    page: str
    action: str
    data: dict
    api: str
    answer: tuple[int, dict]
    lands: str | None  # the redirect's Location; None: the page itself (200)
    who: str = "member"  # "anonymous", "member" or "staff"
    extra: dict = field(default_factory=dict)


FORMS = [
    Form(
        "registration",
        "/register",
        "/register",
        {"customer_number": "1001", "company_id": "25596641", "name": "Ada", "email": "a@example.com"}
        | {"password": "correct horse battery staple"},
        "/api/v1/registrations",
        (202, {"status": "pending"}),
        "/register/sent",
        who="anonymous",
    ),
    Form(
        "password reset request",
        "/password-reset",
        "/password-reset",
        {"email": "ada@example.com"},
        "/api/v1/password-resets",
        (202, {}),
        None,
        who="anonymous",
    ),
    Form(
        "accepting an invitation",
        "/invitation?token=tok-1",
        "/invitation",
        {"token": "tok-1", "password": "correct horse battery staple"},
        "/api/v1/invitations/accept",
        (200, {"status": "active"}),
        None,
        who="anonymous",
    ),
    Form(
        "inviting a user",
        "/customers/1001/users",
        "/customers/1001/users",
        {"name": "Cyril", "email": "cyril@example.com", "rights": ["news"]},
        "/api/v1/customers/1001/users",
        (201, {"id": "u-cyril"}),
        "/customers/1001/users?done=invited",
    ),
    Form(
        "product registration",
        "/customers/1001/product-registration",
        "/customers/1001/product-registration",
        {"installation_number": "ABCDEF-GHJKMN-PQRST7"},
        "/api/v1/customers/1001/product-registrations",
        (201, {"installation_number": "ABCDEF-GHJKMN-PQRST7"}),
        "/customers/1001/licenses?registered=ABCDEF-GHJKMN-PQRST7",
    ),
    Form(
        "a forum topic",
        "/forum/categories/7/new",
        "/forum/categories/7/new",
        {"title": "Otázka", "body": "Text"},
        "/api/v1/forum/topics",
        (201, topic(id=9)),
        "/forum/topics/9?done=created",
    ),
    Form(
        "a forum reply",
        "/forum/topics/5",
        "/forum/topics/5/posts",
        {"body": "Odpověď"},
        "/api/v1/forum/topics/5/posts",
        (201, post(60, {"id": USER["id"]}, "Odpověď")),
        "/forum/topics/5?post=60&done=replied#post-60",
    ),
    Form(
        "flagging a forum post",
        "/forum/topics/5",
        "/forum/topics/5/posts/52/flag",
        {"reason": "spam"},
        "/api/v1/forum/posts/52/flags",
        (201, {"id": 3}),
        "/forum/topics/5?post=52&done=flagged#post-52",
    ),
    Form(
        "a forum category",
        "/forum",
        "/forum/categories",
        {"name": "Mzdy", "description": "Dotazy k mzdám", "product": ""},
        "/api/v1/admin/forum/categories",
        (201, {"id": 8}),
        "/forum?done=category",
        who="staff",
    ),
]


@pytest.fixture
def browser(client, services):
    """The client as each form's visitor: signed in as a member or staff, or not at all."""
    FakeForum(services)
    services.defaults["forum"] = FakeForum(services)
    services.defaults["licensing"] = lambda method, path: (200, {"items": [], "next": None}, {})

    def visit(form: Form):
        if form.who != "anonymous":
            if form.who == "staff":
                services.answer("POST", CREDENTIALS_PATH, 200, USER | {"staff": True})
            post_form(client, "/sign-in", {"email": USER["email"], "password": "correct horse battery staple"})
        return client

    return visit


def rendered_form(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form on `page` that posts to `action`."""
    match = re.search(rf'<form method="post"[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', page, re.S)
    assert match, f"no form posting to {action}"
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', match.group(1))
    }


def sent_keys(services, api: str) -> list[str | None]:
    return [r.headers.get("Idempotency-Key") for r in services.requests if (r.method, r.path) == ("POST", api)]


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_each_rendering_of_a_creating_form_has_a_fresh_key(browser, form):
    client = browser(form)
    first = rendered_form(text(client.get(form.page)), form.action)
    second = rendered_form(text(client.get(form.page)), form.action)
    assert uuid.UUID(first["idempotency_key"]) and uuid.UUID(second["idempotency_key"])
    assert first["idempotency_key"] != second["idempotency_key"]


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_the_same_form_sent_twice_sends_its_key_twice_and_lands_alike(browser, services, form):
    client = browser(form)
    hidden = rendered_form(text(client.get(form.page)), form.action)
    status, body = form.answer
    services.answer("POST", form.api, status, body)
    first = client.post(form.action, data=form.data | hidden)
    # The service replays its first answer for the same key (the services' side of the contract).
    services.answer("POST", form.api, status, body, {"Idempotent-Replayed": "true"})
    again = client.post(form.action, data=form.data | hidden)
    assert sent_keys(services, form.api) == [hidden["idempotency_key"]] * 2
    for answer in (first, again):
        if form.lands is None:
            assert answer.status_code == 200, text(answer)
        else:
            assert answer.status_code == 303 and answer.headers["Location"] == form.lands
    if form.lands is None:  # the page that says it worked, the same both times (but its new form's key)
        assert KEY.sub("", text(first)) == KEY.sub("", text(again))


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
def test_a_key_reused_for_other_details_is_a_message_not_an_error(browser, services, form):
    client = browser(form)
    hidden = rendered_form(text(client.get(form.page)), form.action)
    status, body, headers = problem(422, "idempotency-key-reused")
    services.answer("POST", form.api, status, body, headers)
    answer = client.post(form.action, data=form.data | hidden)
    assert answer.status_code == 422
    page = text(answer)
    assert REUSED_CS in page
    again = rendered_form(page, form.action)  # the form shown again sends anew: a key of its own
    assert again["idempotency_key"] != hidden["idempotency_key"]
    # The old rendering's key once more (with the new rendering's form token), in English.
    english = client.post(
        f"{form.action}?lang=en", data=form.data | again | {"idempotency_key": hidden["idempotency_key"]}
    )
    assert english.status_code == 422 and REUSED_EN in text(english)


@pytest.mark.parametrize("form", FORMS, ids=[f.name for f in FORMS])
@pytest.mark.parametrize("status", [503, 504])
def test_a_form_whose_outcome_is_unknown_is_shown_again_with_its_key(browser, services, form, status):
    """Refused or not answered in time (the gateway's 504: it may have been made): sending the
    form shown again must not make a second, so it keeps the key."""
    client = browser(form)
    hidden = rendered_form(text(client.get(form.page)), form.action)
    slug = "upstream-timeout" if status == 504 else "service-unavailable"
    services.answer("POST", form.api, *problem(status, slug, headers={"Retry-After": "5"}))
    answer = client.post(form.action, data=form.data | hidden)
    assert answer.status_code == status
    page = text(answer)
    assert rendered_form(page, form.action)["idempotency_key"] == hidden["idempotency_key"]
    # The page's other creating forms (a topic's reports) have keys of their own.
    others = set(KEY.findall(page)) - {hidden["idempotency_key"]}
    assert len(others) == len(KEY.findall(page)) - 1
    if status == 504:
        assert "Odpověď nepřišla včas, takže nevíme, zda se to podařilo." in page


@pytest.mark.parametrize("key", [None, "", "not-a-key", "x" * 36, str(uuid.uuid4()).upper() + "\n"])
def test_a_form_without_a_key_of_ours_sends_none(browser, services, key):
    form = next(f for f in FORMS if f.name == "a forum topic")
    client = browser(form)
    hidden = rendered_form(text(client.get(form.page)), form.action)
    hidden.pop("idempotency_key")
    services.answer("POST", form.api, *form.answer)
    answer = client.post(form.action, data=form.data | hidden | ({} if key is None else {"idempotency_key": key}))
    assert answer.status_code == 303
    assert sent_keys(services, form.api) == [None]


def test_forms_that_create_nothing_carry_no_key(browser):
    client = browser(FORMS[3])
    page = text(client.get("/customers/1001/users"))
    assert "idempotency_key" not in rendered_form(page, "/customers/1001/users/u-bob/rights")
    assert "idempotency_key" not in rendered_form(text(client.get("/account")), "/account/password")


def test_creating_forms_are_sent_once_by_the_browser_too(browser):
    client = browser(FORMS[5])
    page = text(client.get("/forum/categories/7/new"))
    assert '<script src="/assets/forms.js" defer></script>' in page
    script = client.get("/assets/forms.js")
    assert script.status_code == 200 and b"idempotency_key" in script.data
