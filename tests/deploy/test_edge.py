"""The edge server's configuration (deploy/nginx/edge.conf) with a local nginx (Debian's
`nginx-light`, which `make test` installs; a failure when it is missing): it loads (`nginx -t`), and in front of a real
gateway and distribution (DOWNLOAD_ACCEL_REDIRECT set) it serves an entitled download itself,
byte-exact, with Range, while `/protected-files/` cannot be asked for directly.

Only the three lines marked `# local:` are rewritten: the gateway's address, the published port
and the storage directory (compose's names do not exist on this machine).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EDGE_CONF = ROOT / "deploy/nginx/edge.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


@pytest.fixture(scope="session")
def nginx_installed():
    """A failure, not a skip: `make test` installs it first (ops/machine.sh)."""
    if NGINX is None:
        pytest.fail("nginx is not installed: run `make test`, which installs Debian's nginx-light")


needs_nginx = pytest.mark.usefixtures("nginx_installed")


def local_config(tmp_path: Path, port: int, gateway: str, files: Path) -> Path:
    """edge.conf with its `# local:` lines pointed at this machine, inside a minimal nginx.conf."""
    text = EDGE_CONF.read_text()
    replacements = [
        (r"server gateway:8000;", f"server {gateway};"),
        (r"listen 8080;", f"listen 127.0.0.1:{port};"),
        (r"alias /srv/customer-center/files/;", f"alias {files}/;"),
        (r"listen 127\.0\.0\.1:8081;", f"listen 127.0.0.1:{free_port()};"),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, f"edge.conf should contain {pattern!r} once"
    (tmp_path / "edge.conf").write_text(text)
    for folder in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / folder).mkdir(exist_ok=True)
    # As root nginx would run its workers as nobody, who cannot enter pytest's private tmp dirs.
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"""{user}
daemon off;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/client_body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/edge.conf;
}}
"""
    )
    return main


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@needs_nginx
def test_the_edge_configuration_loads(tmp_path):
    config = local_config(tmp_path, free_port(), "127.0.0.1:9", tmp_path / "files")
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(config)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_the_protected_location_is_internal_and_matches_the_accel_prefix():
    text = EDGE_CONF.read_text()
    block = re.search(r"location /protected-files/ \{(.*?)\n    \}", text, re.S).group(1)
    assert re.search(r"^\s*internal;", block, re.M)
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "DOWNLOAD_ACCEL_REDIRECT: /protected-files\n" in compose


@pytest.fixture
def edge_suite(tmp_path):
    """identity, distribution (answering X-Accel-Redirect) and the gateway from the Procfile, an entitled
    member's signed link to a 3 MiB file, and nginx with edge.conf in front: the edge's URL."""
    from bench import download
    from bench.common import BenchSuite, Options

    files = tmp_path / "files"
    options = Options(pin=False)
    extra = {"DOWNLOAD_ACCEL_REDIRECT": "/protected-files", "DISTRIBUTION_STORAGE_DIR": str(files)}
    with BenchSuite(["identity", "distribution", "gateway"], options, extra) as bench:
        source = tmp_path / "source.bin"
        expected = download.make_file(source, 3 * 1024 * 1024 + 17)
        distribution = bench.web_url("distribution")
        release_id = download.create_release(distribution, bench.secret)
        download.upload(distribution, bench.secret, release_id, source)
        download.publish(distribution, bench.secret, release_id)
        download.member(bench)
        link = download.signed_link(distribution, bench.secret)
        port = free_port()
        gateway = bench.web_url("gateway").removeprefix("http://")
        config = local_config(tmp_path, port, gateway, files)
        nginx = subprocess.Popen(
            [NGINX, "-p", str(tmp_path), "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert nginx.poll() is None, (tmp_path / "error.log").read_text()
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.05)
            yield {
                "edge": f"http://127.0.0.1:{port}",
                "link": link,
                "source": source,
                "sha256": expected,
                "distribution": distribution,
            }
        finally:
            nginx.terminate()
            nginx.wait(10)


@needs_nginx
def test_the_edge_serves_an_entitled_download_itself_with_range(edge_suite):
    from bench.download import stream_get

    edge, link, data = edge_suite["edge"], edge_suite["link"], edge_suite["source"].read_bytes()
    # distribution alone answers with the redirect and no body...
    bare = stream_get(edge_suite["distribution"] + link)
    assert bare.status == 200 and bare.length == 0
    assert bare.headers["x-accel-redirect"].startswith("/protected-files/")
    # ...which the edge turns into the file.
    whole = stream_get(edge + link, digest=True)
    assert whole.status == 200 and whole.length == len(data) and whole.sha256 == edge_suite["sha256"]
    assert "x-accel-redirect" not in whole.headers
    assert whole.headers["content-disposition"].startswith("attachment;")
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert "no-store" in whole.headers["cache-control"]
    start = len(data) // 2 + 3
    resumed = stream_get(edge + link, {"Range": f"bytes={start}-"}, digest=True)
    assert resumed.status == 206
    assert resumed.headers["content-range"] == f"bytes {start}-{len(data) - 1}/{len(data)}"
    assert resumed.sha256 == hashlib.sha256(data[start:]).hexdigest()
    middle = stream_get(edge + link, {"Range": "bytes=1000-1999"}, digest=True)
    assert middle.status == 206 and middle.sha256 == hashlib.sha256(data[1000:2000]).hexdigest()


@needs_nginx
def test_the_protected_files_cannot_be_fetched_directly_or_with_a_bad_link(edge_suite):
    from bench.download import stream_get

    edge, link = edge_suite["edge"], edge_suite["link"]
    redirect = stream_get(edge_suite["distribution"] + link).headers["x-accel-redirect"]
    assert stream_get(edge + redirect).status == 404
    tampered = re.sub(r"signature=[0-9a-f]{4}", "signature=0000", link)
    assert stream_get(edge + tampered).status == 403
    # Everything else still reaches the gateway.
    assert stream_get(edge + "/healthz").status == 200


@needs_nginx
def test_the_edge_sends_the_file_with_a_binary_content_type(edge_suite):
    from bench.download import stream_get

    whole = stream_get(edge_suite["edge"] + edge_suite["link"])
    assert not whole.headers["content-type"].startswith("text/html")
