"""A portal form's idempotency key goes over the wire: the real gateway (its `Upstream`, real
HTTP) in front of a stand-in service that records what it receives. The portal's side of
api.md's "Retries" without waiting for the services to honour the key."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gateway.app import create_app

from shared import migrations

PERSON = {"id": "u-ada", "email": "ada@example.com", "name": "Ada", "staff": False}
CATEGORY = {"id": 7, "name": "Účetnictví", "description": "", "product": None, "watching": False}


class StandIn(BaseHTTPRequestHandler):
    """Identity's `/api/v1/me` and the forum's category and topics, recording each request."""

    received: list[tuple[str, str, dict]] = []

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server's name
        self.received.append(("GET", self.path, dict(self.headers)))
        if self.path == "/api/v1/me":
            return self._answer(200, PERSON | {"memberships": []})
        if self.path == "/api/v1/forum/categories/7":
            return self._answer(200, CATEGORY)
        return self._answer(404, {"type": "urn:customer-center:problem:not-found", "status": 404})

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.received.append(("POST", self.path, dict(self.headers)))
        return self._answer(201, {"id": 9, "title": "Otázka"})

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in():
    StandIn.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", StandIn.received
    server.shutdown()
    server.server_close()


def test_a_forum_topic_form_sends_its_key_to_the_forum(settings_for, tmp_path, stand_in):
    url, received = stand_in
    base = settings_for("gateway", f"sqlite:///{tmp_path / 'gateway.db'}")
    settings = settings_for(
        "gateway", base.database_url, service_urls={**base.service_urls, "identity": url, "forum": url}
    )
    migrations.upgrade("gateway", settings.database_url)
    app = create_app(settings)
    token, session = app.extensions["sessions"].open(PERSON)
    client = app.test_client()
    client.set_cookie("cc_session", token)

    page = client.get("/forum/categories/7/new").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    form = {"csrf_token": session.csrf_token, "idempotency_key": key, "title": "Otázka", "body": "Text"}
    for _ in range(2):  # a double click: the same rendered form twice
        answer = client.post("/forum/categories/7/new", data=form)
        assert answer.status_code == 303 and answer.headers["Location"] == "/forum/topics/9?done=created"
    posts = [headers for method, path, headers in received if (method, path) == ("POST", "/api/v1/forum/topics")]
    assert [headers.get("Idempotency-Key") for headers in posts] == [key, key]
    assert all(headers["Content-Type"] == "application/json" for headers in posts)
    # Reading sends no key.
    assert all("Idempotency-Key" not in headers for method, _path, headers in received if method == "GET")
    app.extensions["database"].dispose()
