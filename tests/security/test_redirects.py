"""No answer redirects to an internal address or to a host the client chose.

werkzeug answers a path with `//` (and a missing trailing slash) with a redirect to an absolute
URL built from the request's Host: a service's own address when the gateway asked it, or any
`Host` a client sends. Every component refuses such paths instead (`404` problem+json), and
the gateway passes a service's `Location` on only when it is a path of ours or `PUBLIC_URL`."""

from __future__ import annotations

import importlib
import json
from urllib.parse import parse_qs

import pytest

from shared.config import Settings
from tests.conftest import TEST_SECRET
from tests.support import serving

COMPONENTS = ("identity", "licensing", "distribution", "forum", "gateway")
PUBLIC_URL = "https://portal.example"
FOREIGN = {"Host": "evil.example"}
DOUBLE_SLASHES = (
    "//",
    "//evil.example",
    "//evil.example/api/v1/news",
    "/api/v1//news",
    "/api//v1/forum/categories",
    "/api/v1/forum//categories",
    "/healthz//",
    "/static//x.css",
    "/openapi.json//",
    "/forum//search",
    "/assets//portal.css",
)


def app_of(component: str, **overrides):
    if "service_urls" in overrides:
        overrides["service_urls"] = {**Settings.from_env(component).service_urls, **overrides["service_urls"]}
    settings = Settings.from_env(
        component, database_url="sqlite://", internal_auth_secret=TEST_SECRET, public_url=PUBLIC_URL, **overrides
    )
    return importlib.import_module(f"{component}.app").create_app(settings)


def get(app, path: str, **kwargs):
    """GET `path` exactly as gunicorn hands it on (the test client would read `//host/...` as a URL)."""
    return app.test_client().get("/", headers=FOREIGN, environ_overrides={"PATH_INFO": path}, **kwargs)


@pytest.fixture(scope="module")
def apps():
    built = {component: app_of(component) for component in COMPONENTS}
    yield built
    for app in built.values():
        app.extensions["database"].dispose()


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("path", DOUBLE_SLASHES)
def test_a_path_with_double_slashes_is_never_redirected(apps, component, path):
    answer = get(apps[component], path)
    assert not 300 <= answer.status_code < 400, f"{answer.status_code} to {answer.headers.get('Location')}"
    assert "Location" not in answer.headers
    assert answer.status_code == 404
    if path.startswith("/api/") or component != "gateway":
        assert answer.mimetype == "application/problem+json"


def test_the_gateway_refuses_double_slashes_before_asking_a_service(apps):
    """The forum answered `//` with a 308 to its own address, which the gateway passed on."""
    forum = apps["forum"]
    with serving(forum.wsgi_app) as forum_url:
        gateway = app_of("gateway", service_urls={"forum": forum_url})
        for path in ("/api/v1/forum//categories", "/api/v1/forum/categories//", "/api/v1/forum/categories/"):
            answer = get(gateway, path)
            assert answer.status_code == 404 and answer.mimetype == "application/problem+json", path
            assert "Location" not in answer.headers
        gateway.extensions["database"].dispose()


def redirecting_service(environ, start_response):
    """A service answering `302` to whatever `?to=` says (as a misbehaving one might)."""
    to = parse_qs(environ.get("QUERY_STRING", ""))["to"][0]
    body = json.dumps({"to": to}).encode()
    start_response("302 Found", [("Location", to), ("Content-Type", "application/json")])
    return [body]


@pytest.mark.parametrize(
    ("location", "passed_on"),
    [
        ("/api/v1/forum/categories", "/api/v1/forum/categories"),
        ("/api/v1/forum/topics?page=2", "/api/v1/forum/topics?page=2"),
        (f"{PUBLIC_URL}/forum", f"{PUBLIC_URL}/forum"),
        ("{service}/api/v1/forum/categories?x=1", "/api/v1/forum/categories?x=1"),  # its own address: our path
        ("http://evil.example/api/v1/forum/categories", None),
        ("https://evil.example", None),
        ("//evil.example/x", None),
        ("/\\evil.example/x", None),
        ("http://127.0.0.1:1/api/v1/forum/categories", None),  # another internal address
        ("javascript:alert(1)", None),
        ("categories", None),
    ],
)
def test_the_gateway_passes_a_location_on_only_when_it_stays_with_us(location, passed_on):
    with serving(redirecting_service) as service_url:
        gateway = app_of("gateway", service_urls={"forum": service_url})
        answer = gateway.test_client().get(
            "/api/v1/forum/categories", query_string={"to": location.format(service=service_url)}, headers=FOREIGN
        )
        gateway.extensions["database"].dispose()
    assert answer.status_code == 302
    assert answer.headers.get("Location") == passed_on
