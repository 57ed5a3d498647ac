"""Errors a client can cause before any application sees its request, answered by gunicorn
itself (an overlong request line, too many or too large headers, a request that is not HTTP),
are problem+json with the right status and a stable type, never gunicorn's HTML page.

Real gunicorn processes as the Procfile starts them (gunicorn.conf.py), the gateway and a
service, spoken to over raw sockets; and the compose edge (nginx with deploy/nginx/edge.conf)
in front of the gateway, whose own errors are problem+json too."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from ops.suite import ROOT, Suite
from tests.conftest import TEST_SECRET

COMPONENTS = ("gateway", "forum")
# A path each component reads a JSON body on (`POST` is put in front).
POSTS = {"gateway": b"/api/v1/sessions", "forum": b"/api/v1/forum/topics"}
HOST = b"Host: 127.0.0.1\r\n"
CASES = {
    "request line too long": (b"GET /api/v1/news?q=" + b"a" * 5000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    "header too large": (b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    "too many headers": (
        b"GET /healthz HTTP/1.1\r\n" + HOST + b"".join(b"X-H%d: 1\r\n" % n for n in range(120)) + b"\r\n",
        431,
    ),
    "not HTTP at all": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400),
    "invalid method": (b"G(T /healthz HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    "invalid HTTP version": (b"GET /healthz HTTP/x.y\r\n" + HOST + b"\r\n", 400),
    "header without a colon": (b"GET /healthz HTTP/1.1\r\n" + HOST + b"Broken header\r\n\r\n", 400),
    "invalid header name": (b"GET /healthz HTTP/1.1\r\n" + HOST + b"X(y): 1\r\n\r\n", 400),
    "unsupported transfer coding": (
        b"POST {post} HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: x-unknown\r\n\r\n",
        501,
    ),
    # read by the application, as it reads the body
    "bad chunk size": (
        b"POST {post} HTTP/1.1\r\n"
        + HOST
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        400,
    ),
    # the gateway: while it forwards the body
    "bad chunk size in a forwarded body": (
        b"POST /api/v1/forum/topics HTTP/1.1\r\n"
        + HOST
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nzz\r\n0\r\n\r\n",
        400,
    ),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The gateway and forum from the Procfile, on SQLite files of their own."""
    env = Suite.local_env(
        {
            "INTERNAL_AUTH_SECRET": TEST_SECRET,
            "VAR_DIR": str(tmp_path_factory.mktemp("var")),
            "WEB_CONCURRENCY": "1",
            "GATEWAY_WEB_THREADS": "4",
        }
    )
    suite = Suite(env, log_dir=tmp_path_factory.mktemp("logs"))
    for component in COMPONENTS:
        subprocess.run([sys.executable, "-m", component, "migrate"], env=suite.env, cwd=ROOT, check=True)
    suite.start(list(COMPONENTS))
    try:
        for component in COMPONENTS:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(suite.web_url(component) + "/healthz", timeout=2).ok:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, f"{component} did not start"
                time.sleep(0.2)
        yield {component: int(suite.web_url(component).rsplit(":", 1)[1]) for component in COMPONENTS}
    finally:
        suite.stop_all()


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(raw)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(65536)
            assert chunk, f"closed without an answer: {answer!r}"
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = (line.partition(":") for line in lines[1:])
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        while len(body) < int(headers.get("content-length", 0)):
            chunk = connection.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split(" ")[1]), headers, body


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("case", CASES)
def test_what_gunicorn_refuses_is_problem_json(servers, component, case):
    raw, status = CASES[case]
    answered, headers, body = exchange(servers[component], raw.replace(b"{post}", POSTS[component]))
    assert b"<html" not in body.lower(), body[:200]
    assert answered == status, (answered, body[:300])
    assert headers["content-type"] == "application/problem+json", (headers, body[:300])
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["type"].startswith("urn:customer-center:problem:") and problem["title"] and problem["detail"]


def test_each_status_has_its_own_stable_type(servers):
    types = {}
    for raw, status in CASES.values():
        answer = exchange(servers["gateway"], raw.replace(b"{post}", POSTS["gateway"]))
        types.setdefault(status, set()).add(json.loads(answer[2])["type"])
    assert {status: len(found) for status, found in types.items()} == dict.fromkeys(types, 1)
    assert types[414] == {"urn:customer-center:problem:uri-too-long"}
    assert types[431] == {"urn:customer-center:problem:request-header-fields-too-large"}
    assert types[400] == {"urn:customer-center:problem:bad-request"}


def test_a_well_formed_request_is_still_served(servers):
    status, headers, body = exchange(servers["gateway"], b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
    assert status == 200 and json.loads(body)["status"] == "ok"


# --- the compose edge (nginx, deploy/nginx/edge.conf) in front of the gateway -----------------
@contextmanager
def edge(folder: Path, gateway: str):
    """nginx with edge.conf (its `# local:` lines pointed here) in front of `gateway` (host:port)."""
    from tests.deploy.test_edge import NGINX, free_port, local_config

    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = local_config(folder, port, gateway, folder / "files")
    nginx = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert nginx.poll() is None and time.monotonic() < deadline, (folder / "error.log").read_text()
                time.sleep(0.05)
        yield port
    finally:
        nginx.terminate()
        nginx.wait(10)


EDGE_CASES = {
    "request line too long": (b"GET /api/v1/news?q=" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    "header too large": (b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    "not HTTP at all": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400),
    "no Host": (b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    "unsupported transfer coding": (
        b"POST /api/v1/sessions HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: x-unknown\r\n\r\n",
        501,
    ),
    "protected files asked for directly": (b"GET /protected-files/ab/abc HTTP/1.1\r\n" + HOST + b"\r\n", 404),
    "an error page asked for directly": (b"GET /.problems/500 HTTP/1.1\r\n" + HOST + b"\r\n", 404),
}


def assert_problem(answer: tuple[int, dict[str, str], bytes], status: int) -> dict:
    answered, headers, body = answer
    assert b"<html" not in body.lower(), body[:300]
    assert answered == status, (answered, body[:300])
    assert headers["content-type"] == "application/problem+json", headers
    assert headers["x-content-type-options"] == "nosniff"
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert problem["type"].startswith("urn:customer-center:problem:")
    return problem


def test_what_the_edge_refuses_is_problem_json(servers, tmp_path):
    with edge(tmp_path / "edge", f"127.0.0.1:{servers['gateway']}") as port:
        types = {}
        for case, (raw, status) in EDGE_CASES.items():
            problem = assert_problem(exchange(port, raw), status)
            types.setdefault(status, set()).add(problem["type"])
            print(case, status, problem["type"])
        assert types[414] == {"urn:customer-center:problem:uri-too-long"}
        assert types[431] == {"urn:customer-center:problem:request-header-fields-too-large"}
        # the gateway's own answers pass as they are
        answered, _, body = exchange(port, b"GET /api/v1/no-such-thing HTTP/1.1\r\n" + HOST + b"\r\n")
        assert answered == 404 and json.loads(body)["detail"] == "No such resource."
        assert exchange(port, b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")[0] == 200


def test_the_edge_answers_a_gateway_that_is_down_with_a_problem(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        down = f"127.0.0.1:{closed.getsockname()[1]}"
    with edge(tmp_path / "edge", down) as port:
        answer = exchange(port, b"GET /api/v1/news HTTP/1.1\r\n" + HOST + b"\r\n")
        assert assert_problem(answer, 502)["type"] == "urn:customer-center:problem:bad-gateway"
        assert int(answer[1]["retry-after"]) > 0
