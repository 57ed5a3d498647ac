"""The gateway's bulkhead (gateway.upstream): a service that accepts connections and never
answers holds at most UPSTREAM_MAX_IN_FLIGHT of a worker's calls; past that its calls fail at
once with `503` and `Retry-After`, naming the service, while other services answer as before.
Every call gives its slot back, whether answered, timed out or refused, and a streamed answer
(a download) as soon as its headers arrived.

Real sockets play the services: one that never answers, one that answers at once, one that
streams its body slowly."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import replace

import pytest
from gateway.upstream import Upstream

from ops.suite import free_port
from shared.config import Settings
from shared.problems import Problem
from tests.support import serving, wait_until

LIMIT = 2
TIMEOUT = 1.5


@contextmanager
def hung_service():
    """Accepts connections and reads requests, never answers. Yields (url, requests seen)."""
    listener = socket.create_server(("127.0.0.1", free_port()))
    seen: list[bytes] = []
    held: list[socket.socket] = []
    stop = threading.Event()

    def read(connection: socket.socket) -> None:
        while not stop.is_set():
            try:
                data = connection.recv(65536)
            except OSError:
                return
            if not data:
                return
            seen.append(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)
            threading.Thread(target=read, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        stop.set()
        listener.close()
        for connection in held:
            connection.close()


def answering(environ, start_response):
    if environ["PATH_INFO"] == "/slow-download":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])

        def body():
            for _ in range(10):
                time.sleep(0.1)
                yield b"x" * 1024

        return body()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"ok": true}']


def upstream_for(**urls: str) -> Upstream:
    settings = Settings(service="gateway", database_url="sqlite://", internal_auth_secret="s" * 64)
    return Upstream(
        replace(
            settings,
            service_urls={**settings.service_urls, **urls},
            upstream_timeout=TIMEOUT,
            upstream_max_in_flight=LIMIT,
        )
    )


def test_a_hung_service_holds_only_its_share_and_further_calls_fail_at_once():
    with hung_service() as (hung, seen), serving(answering) as healthy:
        upstream = upstream_for(forum=hung, licensing=healthy)
        outcomes: list[int] = []

        def waiting_call():
            try:
                upstream.request("forum", "GET", "/api/v1/forum/categories")
            except Problem as problem:
                outcomes.append(problem.status)

        waiting = [threading.Thread(target=waiting_call) for _ in range(LIMIT)]
        for thread in waiting:
            thread.start()
        wait_until(lambda: len(seen) >= LIMIT, timeout=5, message="the hung service got its share of calls")

        started = time.monotonic()
        with pytest.raises(Problem) as refused:
            upstream.request("forum", "GET", "/api/v1/forum/categories")
        assert time.monotonic() - started < 0.5, "a call past the share waited instead of failing at once"
        problem = refused.value
        assert problem.status == 503 and problem.headers["Retry-After"] == "5"
        assert problem.to_dict()["service"] == "forum" and problem.to_dict()["type"].endswith("service-unavailable")

        started = time.monotonic()
        assert upstream.request("licensing", "GET", "/api/v1/admin/products").status == 200
        assert time.monotonic() - started < 0.5

        for thread in waiting:
            thread.join(timeout=TIMEOUT + 5)
        assert outcomes == [504] * LIMIT  # timed out: sent, and the outcome is unknown
        # their slots are free again: the next call reaches the service (and waits its timeout)
        asked = len(seen)
        with pytest.raises(Problem):
            upstream.request("forum", "GET", "/api/v1/forum/categories")
        assert len(seen) > asked


def test_calls_refused_by_a_service_that_is_down_give_their_slot_back():
    with socket.create_server(("127.0.0.1", free_port())) as closed:
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    upstream = upstream_for(forum=url)
    for _ in range(LIMIT * 3):
        with pytest.raises(Problem) as refused:
            upstream.request("forum", "GET", "/api/v1/forum/categories")
        assert "busy" not in refused.value.detail  # refused by the service, never by a slot left taken


def test_a_streamed_answer_gives_its_slot_back_once_its_headers_arrived():
    with serving(answering) as distribution:
        upstream = upstream_for(distribution=distribution)
        downloads = [upstream.request("distribution", "GET", "/slow-download", stream=True) for _ in range(LIMIT * 2)]
        try:
            assert [download.status for download in downloads] == [200] * (LIMIT * 2)
            for download in downloads:
                assert len(download.read()) == 10 * 1024
        finally:
            for download in downloads:
                download.release_conn()
