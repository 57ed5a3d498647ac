"""A double click on a form that creates something sends it once (forms.js), in Chromium against
the gateway served in-process with a slow stand-in identity that counts what it is sent; the
form's idempotency key goes with it. Without JavaScript the key alone would make the second
sending create nothing (tests/e2e/test_portal_idempotency_end_to_end.py)."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from playwright.sync_api import expect
from werkzeug.wrappers import Request, Response

from shared.config import DEFAULT_SERVICE_PORTS, Settings
from shared.migrations import upgrade
from tests.support import serving

pytestmark = pytest.mark.browser

ANSWER_AFTER = 0.8  # seconds: long enough for a second click to arrive while the first waits


class SlowIdentity:
    """Answers registrations after a while, keeping the Idempotency-Key of each."""

    def __init__(self):
        self.keys: list[str | None] = []
        self.lock = threading.Lock()

    @Request.application
    def __call__(self, request: Request) -> Response:
        if request.method == "POST" and request.path == "/api/v1/registrations":
            with self.lock:
                self.keys.append(request.headers.get("Idempotency-Key"))
            time.sleep(ANSWER_AFTER)
            return Response(json.dumps({"status": "pending"}), 202, content_type="application/json")
        return Response(status=404)


@pytest.fixture(scope="module")
def slow_gateway(tmp_path_factory):
    from gateway.app import create_app

    identity = SlowIdentity()
    database_url = f"sqlite:///{tmp_path_factory.mktemp('gateway-once') / 'gateway.db'}"
    upgrade("gateway", database_url)
    with serving(identity) as identity_url:
        settings = Settings(
            service="gateway",
            database_url=database_url,
            internal_auth_secret="browser-tests-" + "x" * 50,
            service_urls={name: "http://127.0.0.1:9" for name in DEFAULT_SERVICE_PORTS} | {"identity": identity_url},
            upstream_timeout=5.0,
        )
        app = create_app(settings)
        with serving(app) as url:
            yield url, identity
        app.extensions["database"].dispose()


def test_a_double_click_on_register_sends_the_form_once(page, slow_gateway):
    url, identity = slow_gateway
    page.goto(f"{url}/register")
    for field, value in {
        "customer-number": "1001",
        "company-id": "25596641",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "password": "correct horse battery staple",
    }.items():
        page.locator(f"#f-{field}").fill(value)
    key = page.locator("input[name='idempotency_key']").input_value()
    # Two clicks a moment apart, the second while the first sending still waits for its answer
    # (a person's double click; Playwright's own would wait for the first navigation).
    # The button is disabled meanwhile (the answer takes ANSWER_AFTER: the page is still there).
    disabled = page.evaluate(
        """([selector, pause]) => new Promise((resolve) => {
            const button = document.querySelector(selector);
            button.click();
            setTimeout(() => button.click(), pause);
            setTimeout(() => resolve(button.disabled), 2 * pause);
        })""",
        ["form[action='/register'] button[type='submit']", 200],
    )
    assert disabled
    page.wait_for_url(f"{url}/register/sent")
    assert identity.keys == [key]
    assert uuid.UUID(key)

    # Back on the form (the browser may show it from its cache): it can be sent again.
    page.go_back()
    page.wait_for_url(f"{url}/register")
    expect(page.get_by_role("button", name="Dokončit registraci")).to_be_enabled()
