"""What the portal's test-client tests share: a scripted stand-in for the services behind
the gateway (identity, licensing), the app with it, a signed-in browser, and helpers that
read pages and send forms the way a browser would.

Fixtures are found by pytest; the helpers are imported, `from tests.gateway.conftest import ...`.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from gateway.app import create_app

from shared.config import Settings
from shared.migrations import upgrade
from shared.problems import Problem

ALL_RIGHTS = ["licenses", "downloads", "documents", "news", "contacts", "users"]
USER = {"id": "u-ada", "email": "ada@example.com", "name": "Ada Lovelace"}
ME = USER | {
    "staff": False,
    "memberships": [
        {"customer_number": "1001", "company_name": "Acme s.r.o.", "administrator": True, "rights": ALL_RIGHTS},
        {"customer_number": "1002", "company_name": "Beta a.s.", "administrator": False, "rights": ["downloads"]},
    ],
}
MEMBERS = [
    USER | {"administrator": True, "rights": ALL_RIGHTS, "status": "active"},
    {"id": "u-bob", "email": "bob@example.com", "name": "Bob", "administrator": False, "rights": ["news"]}
    | {"status": "invited"},
]
PROFILE = {
    "customer_number": "1001",
    "company_id": "25596641",
    "company_name": "Acme s.r.o.",
    "billing_address": {"street": "Main 1", "city": "Praha", "postal_code": "11000", "country": "CZ"},
    "delivery_address": None,
    "delivery_method": "download",
}
CREDENTIALS_PATH = "/internal/v1/credentials/verify"


def problem(status: int, slug: str, errors=None, headers=None):
    """A problem+json answer as the services give it: (status, body, headers)."""
    body = {"type": f"urn:customer-center:problem:{slug}", "status": status, "title": slug, "detail": slug}
    if errors is not None:
        body["errors"] = [{"field": f, "message": m} for f, m in errors.items()]
    return status, body, headers or {}


class FakeServices:
    """Stands in for `Upstream`: answers by (method, path) whichever service is asked;
    `answer()` scripts one answer, `down` makes every service but the credentials check 503.

    `calls` keeps (method, path, body, principal) of each call; `requests` the whole call:
    service, method, path, body, query, headers (those the portal adds, e.g. Idempotency-Key)."""

    def __init__(self):
        self.calls: list[tuple[str, str, dict | None, object]] = []
        self.requests: list[SimpleNamespace] = []
        self.scripted: dict[tuple[str, str], tuple[int, dict, dict]] = {}
        self.defaults: dict[str, object] = {}
        self.down = False

    def answer(self, method: str, path: str, status: int, body=None, headers=None):
        self.scripted[(method, path)] = (status, body or {}, headers or {})

    def sent(self, method: str, path: str) -> list:
        return [body for m, p, body, _ in self.calls if (m, p) == (method, path)]

    def asked(self, method: str, path: str) -> list[SimpleNamespace]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    def call(self, service, method, path, json_body=None, principal=None, query="", headers=None, **_):
        self.calls.append((method, path, json_body, principal))
        self.requests.append(
            SimpleNamespace(
                service=service,
                method=method,
                path=path,
                body=json_body,
                query=query,
                principal=principal,
                headers=dict(headers or {}),
            )
        )
        if self.down and path != CREDENTIALS_PATH:
            raise Problem(503, "service-unavailable", headers={"Retry-After": "5"})
        status, body, headers = self.scripted.get((method, path)) or self._default(service, method, path)
        data = json.dumps(body).encode() if body else b""
        return SimpleNamespace(status=status, data=data, json=lambda: json.loads(data), headers=headers)

    def request(self, service, method, path, *, query="", body=None, principal=None, **_):
        """`Upstream.request`, as the profile view (`gateway.overview.gather`) asks: the path may
        carry its query. A service with nothing scripted for it is not running: the 503 problem
        `Upstream` raises when it cannot connect."""
        path, _mark, in_path = path.partition("?")
        if (method, path) not in self.scripted and service not in self.defaults and service != "identity":
            self.requests.append(
                SimpleNamespace(service=service, method=method, path=path, body=None, query=in_path, headers={})
            )
            raise Problem(503, "service-unavailable", headers={"Retry-After": "5"})
        return self.call(service, method, path, json.loads(body) if body else None, principal, query or in_path)

    def _default(self, service, method, path):
        if service in self.defaults:
            return self.defaults[service](method, path)
        assert service == "identity", f"nothing scripted for {service} {method} {path}"
        if path == CREDENTIALS_PATH:
            return 200, USER, {}
        if path == "/api/v1/me":
            return 200, ME, {}
        if method == "GET" and path.endswith("/users"):
            return 200, {"items": MEMBERS, "next": None}, {}
        if method == "GET" and path.endswith("/profile"):
            return 200, PROFILE, {}
        if method == "DELETE":
            return 204, {}, {}
        return 200, {"status": "ok"}, {}


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


@pytest.fixture
def identity(services) -> FakeServices:
    """The fake services, by the name the identity pages' tests use."""
    return services


@pytest.fixture
def client(tmp_path, services):
    database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade("gateway", database_url)
    app = create_app(Settings(service="gateway", database_url=database_url, internal_auth_secret="t" * 64))
    app.extensions["upstream"] = services
    yield app.test_client()
    app.extensions["database"].dispose()


def text(response) -> str:
    return response.get_data(as_text=True)


def form_token(response) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', text(response)).group(1)


def csrf(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', text(response)).group(1)


def post_form(client, path: str, data: dict, page: str | None = None):
    """Open the page (for its form token and cookie), then send the form."""
    return client.post(path, data=data | {"form_token": form_token(client.get(page or path))})


@pytest.fixture
def signed_in(client):
    post_form(client, "/sign-in", {"email": USER["email"], "password": "correct horse battery staple"})
    return client


def post_signed_in(client, path: str, data: dict, page: str = "/account"):
    return client.post(path, data=data | {"csrf_token": csrf(client.get(page))})


def field_error(response, name: str) -> str | None:
    field_id = "f-" + name.replace(".", "-").replace("_", "-")
    match = re.search(rf'<p class="field-error" id="{re.escape(field_id)}-error">([^<]+)</p>', text(response))
    return match.group(1) if match else None


def nav(page: str) -> str:
    """The main navigation's items."""
    return re.search(r'<ul class="main-nav">(.*?)</ul>', page, re.S).group(1)


# --- distribution ---------------------------------------------------------------------------
def linked_file(file_id: int, name: str, size: int, customer: str = "1001") -> dict:
    """A file as distribution lists it: with a signed, absolute link."""
    return {
        "file_id": file_id,
        "name": name,
        "size": size,
        "sha256": f"{file_id:02d}" + "ab" * 31,
        "url": f"http://cc.example/api/v1/files/{file_id}/{name}?customer={customer}&expires=1&signature=s",
    }


class FakeDistribution:
    """Distribution's answers for one profile unless one is scripted (`services.answer`):
    `releases`, `history`, `documents` and `news` are what its lists hold."""

    def __init__(self):
        self.releases: list[dict] = []
        self.history: list[dict] = []
        self.documents: list[dict] = []
        self.news: list[dict] = []

    def __call__(self, method: str, path: str):
        lists = {
            "/downloads": self.releases,
            "/download-history": self.history,
            "/documents": self.documents,
            "/news": self.news,
        }
        for suffix, items in lists.items():
            if method == "GET" and path.endswith(suffix):
                return 200, {"items": items, "next": None}, {}
        raise AssertionError(f"distribution was not asked for {method} {path}")


@pytest.fixture
def distribution(services) -> FakeDistribution:
    fake = FakeDistribution()
    services.defaults["distribution"] = fake
    return fake
