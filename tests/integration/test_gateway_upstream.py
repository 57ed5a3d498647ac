"""The gateway in front of a service that is down (a 503 problem at once: nothing was done) or
hangs (a 504 problem within its timeout: the outcome is unknown, retry with the same key)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from gateway.app import create_app

from ops.suite import free_port
from shared import migrations


@pytest.fixture
def hanging_service():
    """Accepts connections and never answers, like a service stuck on a lock."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


@pytest.fixture
def gateway_for(settings_for, tmp_path):
    def make(**service_urls):
        base = settings_for("gateway", f"sqlite:///{tmp_path / 'gateway.db'}", upstream_timeout=1.0)
        urls = {**base.service_urls, **service_urls}
        settings = settings_for("gateway", base.database_url, upstream_timeout=1.0, service_urls=urls)
        migrations.upgrade("gateway", settings.database_url)
        return create_app(settings).test_client()

    return make


def test_a_hanging_service_gives_504_within_the_timeout(gateway_for, hanging_service):
    client = gateway_for(forum=hanging_service)
    started = time.monotonic()
    response = client.get("/api/v1/forum/categories")
    elapsed = time.monotonic() - started
    assert response.status_code == 504 and response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    problem = response.get_json()
    assert problem["type"].endswith(":upstream-timeout") and problem["status"] == 504
    assert problem["service"] == "forum" and "unknown" in problem["detail"]
    assert 0.9 < elapsed < 2.5


def test_a_write_the_service_did_not_answer_in_time_is_504_saying_retry_with_the_same_key(gateway_for, hanging_service):
    client = gateway_for(licensing=hanging_service)
    response = client.post("/api/v1/partner/sales", json={}, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 504 and response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    problem = response.get_json()
    assert problem["type"].endswith(":upstream-timeout") and problem["service"] == "licensing"
    assert "unknown" in problem["detail"] and "same Idempotency-Key" in problem["detail"]


def test_a_refused_connection_gives_503_at_once(gateway_for):
    client = gateway_for(licensing=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    response = client.post("/api/v1/admin/customers", json={})
    assert response.status_code == 503 and response.get_json()["service"] == "licensing"
    assert time.monotonic() - started < 1.0


def test_sign_in_while_identity_is_down_is_503_not_401(gateway_for):
    client = gateway_for(identity=f"http://127.0.0.1:{free_port()}")
    response = client.post("/api/v1/sessions", json={"email": "a@example.com", "password": "whatever-password"})
    assert response.status_code == 503


def test_sign_in_while_identity_hangs_is_503_no_session_was_opened(gateway_for, hanging_service):
    client = gateway_for(identity=hanging_service)
    response = client.post("/api/v1/sessions", json={"email": "a@example.com", "password": "whatever-password"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"


def test_paths_no_service_owns_are_404(gateway_for):
    response = gateway_for().get("/api/v1/definitely-not-routed")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/forum/../admin/forum/categories",
        "/api/v1/forum/./categories",
        "/api/v1/partner/../../internal/v1/credentials/verify",
        "/api/v1/forum/%2e%2e/admin/forum/categories",
    ],
)
def test_dot_segments_are_not_forwarded(gateway_for, path):
    response = gateway_for().get(path)
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def test_behind_a_trusted_proxy_the_client_address_comes_from_x_forwarded_for(settings_for, tmp_path):
    from gateway.app import create_app as make_gateway

    from shared import migrations as m

    settings = settings_for("gateway", f"sqlite:///{tmp_path / 'gw.db'}", trusted_proxies=1)
    m.upgrade("gateway", settings.database_url)
    app = make_gateway(settings)
    seen = {}

    @app.get("/client-address")
    def client_address():
        from flask import request

        seen["address"] = request.remote_addr
        return "ok"

    app.test_client().get("/client-address", headers={"X-Forwarded-For": "203.0.113.77"})
    assert seen["address"] == "203.0.113.77"
