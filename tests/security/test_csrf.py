"""CSRF on every state-changing request a browser can make (quality.md: "CSRF token on every
state-changing browser request").

The routes come from the gateway's own `app.url_map`, so a page added tomorrow is covered
without touching this file: every rule that takes POST, PUT, PATCH or DELETE (portal forms,
the gateway's session API) and, for the forwarding rule (`/api/v1/<path>`), every non-GET
operation in every service's OpenAPI document. Each is sent as a signed-in browser would send
a forged cross-site request: the session cookie, and no CSRF token (or another session's).

Refused means: 403 (problem+json on the API, the portal's "access denied" page on pages),
no state-changing call reached any service, and the session still works. Forms used before
there is a session (signing in, registering, confirming, resetting a password, accepting an
invitation, unsubscribing by mail link) are protected by their own form token and cookie
(`portal/forms.py`): those answer 400 ("the form has expired") and call nothing either.
As a control, the same request with the session's token gets past the check.
"""

from __future__ import annotations

import re

import pytest
from gateway.sessions import COOKIE, CSRF_HEADER

from shared.config import Settings
from tests.conftest import TEST_SECRET
from tests.security.conftest import SERVICES, World, openapi_document

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Endpoints without a session to bind a token to: form token + cookie instead (400 when absent).
PRE_SESSION_FORMS = {
    "portal.sign_in",
    "portal.register",
    "portal.confirm",
    "portal.password_reset",
    "portal.invitation",
    "portal.forum_unsubscribe",
}
FORWARDING = "forwarding.forward"
SIGN_IN_API = "sessions.Sessions"


class RecordingUpstream:
    """The gateway's real upstream, noting every call it passes on."""

    def __init__(self, real):
        self.real = real
        self.calls: list[tuple[str, str, str]] = []

    def request(self, service, method, path, **kwargs):
        self.calls.append((service, method, path))
        return self.real.request(service, method, path, **kwargs)

    def call(self, service, method, path, *args, **kwargs):
        self.calls.append((service, method, path))
        return self.real.call(service, method, path, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)

    def changes(self) -> list[tuple[str, str, str]]:
        return [call for call in self.calls if call[1] not in ("GET", "HEAD")]


@pytest.fixture
def upstream(world: World, monkeypatch) -> RecordingUpstream:
    recording = RecordingUpstream(world.gateway.extensions["upstream"])
    monkeypatch.setitem(world.gateway.extensions, "upstream", recording)
    return recording


NOBODY = "00000000-0000-4000-8000-000000000000"


def _value(world: World, name: str) -> str:
    """A value for a path parameter. The control test's requests really run (as staff): ids
    whose change would hurt other tests (a partner's keys, a member) name nothing (a 404 there
    still shows the request got past the CSRF check)."""
    values = {
        "customer_number": world.customer,
        "user_id": NOBODY,
        "category_id": world.category_id,
        "topic_id": world.topic_id,
        "post_id": world.post_id,
        "flag_id": 1,
        "release_id": world.release_id,  # published already: the control's publish changes nothing
        "document_id": world.document_id,
        "file_id": world.file_id,
        "name": "csrf.exe",
        "partner_id": NOBODY,
        "installation_number": "AAAAAA-AAAAAA-AAAAAA",
        "shipment_id": 1,
        "event_id": NOBODY,  # no such dead letter: a 404 once past the check
    }
    values["filename"] = "portal.css"
    if name not in values:
        raise AssertionError(f"no value for the path parameter {name!r}: add one to _value() in {__file__}")
    return str(values[name])


def _gateway_rules():
    """The gateway's url_map, from an app on a throwaway database (read at collection)."""
    from gateway.app import create_app

    settings = Settings(service="gateway", database_url="sqlite://", internal_auth_secret=TEST_SECRET)
    app = create_app(settings)
    rules = list(app.url_map.iter_rules())
    app.extensions["database"].dispose()
    return rules


def _state_changing_requests() -> list[tuple[str, str, str]]:
    """(endpoint, method, path template) of every state-changing request a browser can make."""
    found = []
    for rule in _gateway_rules():
        methods = sorted(rule.methods & STATE_CHANGING)
        if not methods:
            continue
        if rule.endpoint != FORWARDING:
            found += [(rule.endpoint, method, rule.rule) for method in methods]
            continue
        for service in SERVICES:  # what the forwarding rule reaches: every service's writes
            for template, item in openapi_document(service)["paths"].items():
                if not template.startswith("/internal/"):
                    found += [(FORWARDING, m.upper(), template) for m in item if m.upper() in STATE_CHANGING]
    return found


def _safe_requests() -> list[tuple[str, str]]:
    return [
        (rule.endpoint, rule.rule)
        for rule in _gateway_rules()
        if "GET" in rule.methods and rule.endpoint != FORWARDING and not rule.endpoint.endswith("static")
    ]


REQUESTS = _state_changing_requests()
SAFE = _safe_requests()


def _concrete(world: World, template: str) -> str:
    """`/customers/<customer_number>/users` or `/x/{topic_id}` with the world's ids."""
    template = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: _value(world, m.group(1)), template)
    return re.sub(r"\{(\w+)\}", lambda m: _value(world, m.group(1)), template)


def _sign_in_browser(world: World, client) -> str:
    token = world.open_session("staff")
    client.set_cookie(COOKIE, token)
    return token


def _csrf_token(world: World, token: str) -> str:
    return world.gateway.extensions["sessions"].find(token).csrf_token


def _send(client, method: str, path: str, endpoint: str, extra_form: dict | None = None, headers=None):
    if endpoint == FORWARDING:  # what a page's script would send: JSON
        return client.open(path, method=method, json={}, headers=headers or {})
    # a form post, as a cross-site page can make one
    return client.open(path, method=method, data={"x": "1", **(extra_form or {})}, headers=headers or {})


def test_every_state_changing_route_is_enumerated():
    """The enumeration finds the portal's forms and the APIs (a guard against it finding nothing)."""
    endpoints = {endpoint for endpoint, _, _ in REQUESTS}
    assert {"portal.sign_out", "portal.change_name", FORWARDING, SIGN_IN_API} <= endpoints
    assert len([r for r in REQUESTS if r[0] == FORWARDING]) >= 30


REQUEST_IDS = [f"{method} {template}" for _, method, template in REQUESTS]


@pytest.mark.parametrize(("endpoint", "method", "template"), REQUESTS, ids=REQUEST_IDS)
def test_without_the_csrf_token_nothing_changes(
    world: World, upstream: RecordingUpstream, endpoint: str, method: str, template: str
):
    path = _concrete(world, template)
    client = world.gateway.test_client()
    token = _sign_in_browser(world, client)
    other_sessions_token = _csrf_token(world, world.open_session("staff"))

    for headers, form in (({}, {}), ({CSRF_HEADER: other_sessions_token}, {"csrf_token": other_sessions_token})):
        upstream.calls.clear()
        answer = _send(client, method, path, endpoint, form, headers)
        what = f"{method} {path} ({endpoint}) without its CSRF token"
        if endpoint in PRE_SESSION_FORMS:
            assert answer.status_code == 400, f"{what}: {answer.status_code}"
        elif endpoint == SIGN_IN_API:
            # Signing in needs no session; a cross-site page can only send a form, never JSON.
            assert answer.status_code == 415, f"{what}: {answer.status_code}"
        else:
            assert answer.status_code == 403, f"{what}: {answer.status_code} {answer.get_data(as_text=True)[:300]}"
            if answer.mimetype == "application/problem+json":
                assert answer.get_json()["type"].endswith(":csrf-failed")
        assert upstream.changes() == [], f"{what} reached a service: {upstream.changes()}"
        assert world.gateway.extensions["sessions"].find(token) is not None, f"{what} ended the session"


SESSION_BOUND = [r for r in REQUESTS if r[0] not in PRE_SESSION_FORMS and r[0] != SIGN_IN_API]


@pytest.mark.parametrize(
    ("endpoint", "method", "template"), SESSION_BOUND, ids=[f"{m} {t}" for _, m, t in SESSION_BOUND]
)
def test_with_the_csrf_token_the_request_gets_past_the_check(
    world: World, upstream: RecordingUpstream, endpoint: str, method: str, template: str
):
    """The control: the refusals above are the CSRF check's, not something else's."""
    path = _concrete(world, template)
    client = world.gateway.test_client()
    token = _sign_in_browser(world, client)
    csrf = _csrf_token(world, token)
    upstream.calls.clear()
    answer = _send(client, method, path, endpoint, {"csrf_token": csrf}, {CSRF_HEADER: csrf})
    refused = answer.status_code == 403 and not upstream.calls
    assert not refused, f"{method} {path} ({endpoint}) with its CSRF token: {answer.get_data(as_text=True)[:300]}"


@pytest.mark.parametrize(("endpoint", "template"), SAFE, ids=[template for _, template in SAFE])
def test_safe_requests_change_nothing(world: World, upstream: RecordingUpstream, endpoint: str, template: str):
    """No GET route of the gateway makes a state-changing call (they take no CSRF token)."""
    client = world.gateway.test_client()
    _sign_in_browser(world, client)
    path = _concrete(world, template)
    upstream.calls.clear()
    answer = client.get(path)
    assert answer.status_code < 500, f"GET {path}: {answer.status_code}"
    assert upstream.changes() == [], f"GET {path} ({endpoint}) changed something: {upstream.changes()}"
