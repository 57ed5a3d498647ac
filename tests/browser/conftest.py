"""Fixtures for browser tests: the gateway served in-process on a free port (with a fake
identity service behind it) and Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from werkzeug.wrappers import Request, Response

from shared.config import DEFAULT_SERVICE_PORTS, Settings
from shared.migrations import upgrade
from tests.support import serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The one account the fake identity service knows.
USER = {"id": "5f0c6a52-9a51-4c1e-8d37-1b2f3c4d5e6f", "email": "ada@example.com", "name": "Ada Lovelace"}
PASSWORD = "correct horse battery staple"


@Request.application
def fake_identity(request: Request) -> Response:
    if request.method == "POST" and request.path == "/internal/v1/credentials/verify":
        if request.get_json(silent=True) == {"email": USER["email"], "password": PASSWORD}:
            return Response(json.dumps(USER), 200, content_type="application/json")
        problem = {"type": "urn:customer-center:problem:invalid-credentials", "status": 401, "title": "Sign-in failed"}
        return Response(json.dumps(problem), 401, content_type="application/problem+json")
    if request.method == "GET" and request.path == "/api/v1/me":
        return Response(json.dumps(USER | {"staff": False, "memberships": []}), 200, content_type="application/json")
    return Response(status=404)


@pytest.fixture(scope="session")
def known_user() -> dict:
    """The account the fake identity service accepts: its identity fields and `password`."""
    return USER | {"password": PASSWORD}


@pytest.fixture(scope="session")
def gateway_url(tmp_path_factory) -> Iterator[str]:
    from gateway.app import create_app

    database_url = f"sqlite:///{tmp_path_factory.mktemp('gateway') / 'gateway.db'}"
    upgrade("gateway", database_url)
    with serving(fake_identity) as identity_url:
        settings = Settings(
            service="gateway",
            database_url=database_url,
            internal_auth_secret="browser-tests-" + "x" * 50,
            # Only identity answers; every other service is a closed port (503 if asked).
            service_urls={name: "http://127.0.0.1:9" for name in DEFAULT_SERVICE_PORTS} | {"identity": identity_url},
            upstream_timeout=2.0,
        )
        app = create_app(settings)
        with serving(app) as url:
            yield url
        app.extensions["database"].dispose()


@pytest.fixture(scope="session")
def browser():
    if shutil.which(CHROMIUM) is None:
        # A failure, not a skip: `make test` installs it first (ops/machine.sh).
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make test`, which installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies) with a desktop-sized page."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(browser):
    """A fresh context sized like a small phone (375 CSS pixels wide)."""
    context = browser.new_context(
        viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    yield context.new_page()
    context.close()


# The vendor staff account every real-suite browser test sets its data up with.
STAFF = {"email": "staff@example.com", "password": "staff-password-for-browser-tests"}


@pytest.fixture
def suite(amqp_url, new_database, smtp_inbox, tmp_path_factory, request):
    """The real suite for one browser test: mails to `smtp_inbox`, links that open in Chromium."""
    from ops.suite import free_port
    from tests.support import running_suite

    port = free_port()
    label = "browser-" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    with running_suite(
        amqp_url,
        new_database,
        tmp_path_factory,
        label,
        STAFF,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_inbox.port),
        GATEWAY_PORT=str(port),
        PUBLIC_URL=f"http://127.0.0.1:{port}",  # the links in the mails open in the browser
    ) as suite:
        yield suite
