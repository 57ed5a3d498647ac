"""The gateway's pooled keep-alive connections to the services: a service may close one just as
the gateway reuses it (gunicorn drops connections idle for its `keepalive`). Such a request
fails before any answer; a GET is sent again on a fresh connection, a request with a body is
not (the service may have acted on it), and connections idle too long are not reused at all.

A raw socket server plays the service, so that the broken reuse happens every time."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from dataclasses import replace

import pytest

from gateway import upstream as upstream_module
from ops.suite import free_port
from shared.config import Settings
from shared.problems import Problem

BODY = b'{"ok": true}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)


def _read_request(connection: socket.socket, buffered: bytes) -> tuple[bytes, bytes] | None:
    """One request (headers and a Content-Length body) off the connection: (request, rest)."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += connection.recv(65536)
    return head + rest[:length], rest[length:]


@contextmanager
def service(close_first_connection_after: int | None):
    """A keep-alive HTTP server. If `close_first_connection_after` is n, its first connection
    answers n requests and then closes on the next one without answering (a keep-alive
    connection the server dropped just as it was reused). Yields the list of connections,
    each the list of request lines it got."""
    listener = socket.create_server(("127.0.0.1", free_port()))
    port = listener.getsockname()[1]
    connections: list[list[bytes]] = []
    stop = threading.Event()

    def serve(connection: socket.socket, seen: list[bytes], limit: int | None):
        buffered = b""
        with connection:
            while not stop.is_set():
                got = _read_request(connection, buffered)
                if got is None:
                    return
                request, buffered = got
                seen.append(request.split(b"\r\n", 1)[0])
                if limit is not None and len(seen) > limit:
                    return  # closed without an answer
                connection.sendall(ANSWER)

    def accept():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            seen: list[bytes] = []
            limit = close_first_connection_after if not connections else None
            connections.append(seen)
            threading.Thread(target=serve, args=(connection, seen, limit), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        stop.set()
        listener.close()


def gateway_upstream(url: str) -> upstream_module.Upstream:
    settings = Settings(service="gateway", database_url="sqlite://", internal_auth_secret="s" * 64)
    return upstream_module.Upstream(replace(settings, service_urls={**settings.service_urls, "forum": url}))


def test_a_get_on_a_connection_the_service_just_closed_is_sent_again_on_a_new_one():
    with service(close_first_connection_after=1) as (url, connections):
        upstream = gateway_upstream(url)
        for _ in range(2):
            answer = upstream.request("forum", "GET", "/api/v1/forum/categories")
            assert answer.status == 200 and answer.json() == {"ok": True}
    assert [len(seen) for seen in connections] == [2, 1]  # the second GET: refused, then resent


def test_a_request_with_a_body_is_not_sent_twice():
    with service(close_first_connection_after=1) as (url, connections):
        upstream = gateway_upstream(url)
        assert upstream.call("forum", "POST", "/api/v1/forum/topics", {"title": "a"}).status == 200
        with pytest.raises(Problem) as refused:
            upstream.call("forum", "POST", "/api/v1/forum/topics", {"title": "b"})
    assert refused.value.status == 503
    assert [len(seen) for seen in connections] == [2]  # never resent: the service may have acted


def test_a_connection_idle_too_long_is_not_reused(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(upstream_module.time, "monotonic", lambda: now[0])
    with service(close_first_connection_after=None) as (url, connections):
        upstream = gateway_upstream(url)
        for pause in (0.0, upstream_module.REUSE_IDLE_AT_MOST - 0.5, upstream_module.REUSE_IDLE_AT_MOST + 0.5):
            now[0] += pause
            assert upstream.call("forum", "POST", "/api/v1/forum/topics", {"title": "a"}).status == 200
    assert [len(seen) for seen in connections] == [2, 1]


def test_the_reuse_limit_is_below_the_services_keepalive():
    import importlib.util
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
    spec = importlib.util.spec_from_file_location("gunicorn_conf", config)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert upstream_module.REUSE_IDLE_AT_MOST < module.keepalive - 1
