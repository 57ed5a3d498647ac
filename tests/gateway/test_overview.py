"""The profile view over real HTTP: parts fetched in parallel, slow or dead services named in
`unavailable`, parts without the right named in `restricted`.

The services are stand-ins served by real HTTP servers (so timeouts, refused connections and
parallelism are the real thing); what each returns is scripted per path.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from gateway.app import create_app
from gateway.overview import support_status
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from ops.suite import free_port
from shared.config import Settings
from shared.migrations import upgrade
from tests.gateway.conftest import PROFILE, USER

NUMBER = "1001"
TODAY = datetime.now(UTC).date()
LICENSES = {
    "items": [
        {"installation_number": "A", "product": "ucetnictvi", "support_until": (TODAY + timedelta(400)).isoformat()},
        {"installation_number": "B", "product": "sklady", "support_until": (TODAY + timedelta(30)).isoformat()},
    ]
}
DOWNLOADS = {
    "items": [
        {"release_id": n, "product": "ucetnictvi", "version": f"2026.{n}", "released_on": f"2026-0{n}-01", "files": []}
        for n in range(1, 8)
    ]
}
NEWS = {
    "items": [
        {"id": 1, "kind": "news", "title": "Nová verze", "published_at": "2026-10-01T08:00:00+00:00"},
        {"id": 2, "kind": "training", "title": "Školení Praha", "starts_at": "2099-01-10T09:00:00+00:00"},
        {"id": 3, "kind": "training", "title": "Proběhlé", "starts_at": "2020-01-10T09:00:00+00:00"},
    ]
}
TOPICS = {"items": [{"id": 7, "title": "Uzávěrka", "category_name": "POHODA"}], "next": None}


class StubService:
    """One service: answers scripted (status, body, delay) per path over real HTTP."""

    def __init__(self, answers: dict[str, tuple[int, dict]]):
        self.answers = dict(answers)
        self.delays: dict[str, float] = {}
        self.gates: dict[str, threading.Barrier] = {}
        self.seen: list[tuple[str, float]] = []
        self.port = free_port()
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @Request.application
    def _app(self, request: Request) -> Response:
        self.seen.append((request.path, time.monotonic()))
        if request.path in self.gates:
            self.gates[request.path].wait()
        time.sleep(self.delays.get(request.path, 0))
        status, body = self.answers.get(request.path, (404, {"type": "urn:customer-center:problem:not-found"}))
        return Response(json.dumps(body), status=status, content_type="application/json")

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture
def backends():
    services = {
        "identity": StubService(
            {"/internal/v1/credentials/verify": (200, USER), f"/api/v1/customers/{NUMBER}/profile": (200, PROFILE)}
        ),
        "licensing": StubService({f"/api/v1/customers/{NUMBER}/licenses": (200, LICENSES)}),
        "distribution": StubService(
            {f"/api/v1/customers/{NUMBER}/downloads": (200, DOWNLOADS), f"/api/v1/customers/{NUMBER}/news": (200, NEWS)}
        ),
        "forum": StubService({"/api/v1/forum/topics": (200, TOPICS)}),
    }
    yield services
    for service in services.values():
        service.stop()


@pytest.fixture
def gateway(tmp_path, backends, monkeypatch):
    monkeypatch.setenv("OVERVIEW_TIMEOUT", "0.5")
    database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade("gateway", database_url)
    urls = {name: f"http://127.0.0.1:{service.port}" for name, service in backends.items()}
    app = create_app(
        Settings(service="gateway", database_url=database_url, internal_auth_secret="t" * 64, service_urls=urls)
    )
    client = app.test_client()
    token = client.post("/api/v1/sessions", json={"email": USER["email"], "password": "x" * 12}).get_json()["token"]
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    yield client
    app.extensions["database"].dispose()


def test_every_part_with_support_status_newest_first(gateway):
    view = gateway.get(f"/api/v1/customers/{NUMBER}/overview").get_json()
    assert view["unavailable"] == [] and view["restricted"] == []
    assert view["profile"]["company_name"] == "Acme s.r.o."
    assert [(lic["installation_number"], lic["support_status"]) for lic in view["licenses"]] == [
        ("B", "expiring"),  # support ending within 60 days comes first, highlighted
        ("A", "active"),
    ]
    assert [r["version"] for r in view["downloads"]] == ["2026.7", "2026.6", "2026.5", "2026.4", "2026.3"]
    assert [n["title"] for n in view["news"]["news"]] == ["Nová verze"]
    assert [t["title"] for t in view["news"]["trainings"]] == ["Školení Praha"]  # upcoming only
    assert view["forum"] == TOPICS["items"]


def test_the_services_are_asked_in_parallel(gateway, backends):
    # Each of the five calls answers only once all five have arrived: asked one after another,
    # the first would wait past OVERVIEW_TIMEOUT and its part would be unavailable.
    gate = threading.Barrier(5, timeout=5)
    for service, path in [
        ("identity", f"/api/v1/customers/{NUMBER}/profile"),
        ("licensing", f"/api/v1/customers/{NUMBER}/licenses"),
        ("distribution", f"/api/v1/customers/{NUMBER}/downloads"),
        ("distribution", f"/api/v1/customers/{NUMBER}/news"),
        ("forum", "/api/v1/forum/topics"),
    ]:
        backends[service].gates[path] = gate
    view = gateway.get(f"/api/v1/customers/{NUMBER}/overview").get_json()
    assert view["unavailable"] == [] and not gate.broken


def test_a_slow_or_dead_service_is_named_and_the_rest_still_shown(gateway, backends):
    backends["licensing"].delays[f"/api/v1/customers/{NUMBER}/licenses"] = 3  # past OVERVIEW_TIMEOUT
    backends["forum"].stop()  # refuses connections
    answer = gateway.get(f"/api/v1/customers/{NUMBER}/overview")
    assert answer.status_code == 200
    view = answer.get_json()
    assert sorted(view["unavailable"]) == ["forum", "licenses"]
    assert view["licenses"] is None and view["forum"] is None
    assert view["profile"]["company_name"] == "Acme s.r.o." and len(view["downloads"]) == 5


def test_a_failing_service_is_unavailable_too(gateway, backends):
    backends["distribution"].answers[f"/api/v1/customers/{NUMBER}/news"] = (500, {"title": "boom"})
    view = gateway.get(f"/api/v1/customers/{NUMBER}/overview").get_json()
    assert view["unavailable"] == ["news"] and view["downloads"]


def test_parts_without_the_right_are_left_out(gateway, backends):
    forbidden = (403, {"type": "urn:customer-center:problem:forbidden"})
    backends["licensing"].answers[f"/api/v1/customers/{NUMBER}/licenses"] = forbidden
    backends["distribution"].answers[f"/api/v1/customers/{NUMBER}/news"] = forbidden
    view = gateway.get(f"/api/v1/customers/{NUMBER}/overview").get_json()
    assert view["restricted"] == ["licenses", "news"] and view["unavailable"] == []
    assert view["licenses"] is None and view["news"] is None and view["downloads"]


def test_another_customers_profile_is_404_and_anonymous_is_401(gateway, backends):
    assert gateway.get("/api/v1/customers/9999/overview").status_code == 404
    anonymous = gateway.application.test_client().get(f"/api/v1/customers/{NUMBER}/overview")
    assert anonymous.status_code == 401 and anonymous.content_type == "application/problem+json"


@pytest.mark.parametrize(
    ("support_until", "expected"),
    [
        (None, "none"),
        ((TODAY - timedelta(1)).isoformat(), "expired"),
        (TODAY.isoformat(), "expiring"),
        ((TODAY + timedelta(60)).isoformat(), "expiring"),
        ((TODAY + timedelta(61)).isoformat(), "active"),
    ],
)
def test_support_status(support_until, expected):
    assert support_status(support_until, TODAY) == expected
