"""A 2 GiB download through the real `python -m gunicorn` distribution process: the bytes go
out by sendfile, never through the worker's memory (quality.md, Performance `download`: the
server's RSS grows < 20 MB; here the bound is a looser 50 MB, and nothing is timed).

The file is sparse (`truncate`, plus 64 KiB of random bytes at its end so the tail is
recognisable), placed in distribution's storage directory under a storage key and recorded as
a `ReleaseFile` of a release created through the API; uploading 2 GiB would only test the
upload. Its SHA-256 is computed once (≈ 1-2 s: the holes read as zeros without disk I/O).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import urllib3
from distribution.models import ReleaseFile

from bench.common import RssSampler, group_worker_pids
from bench.download import sha256_of, stream_get
from ops.suite import ROOT, free_port
from tests.conftest import TEST_SECRET

SIZE = 2 * 1024**3
TAIL = os.urandom(64 * 1024)
RSS_LIMIT_MB = 50


@pytest.fixture
def large_file(distribution, tmp_path):
    """An entitled member's signed link to a published 2 GiB release file."""
    distribution.customer("100001")
    distribution.license("100001", "AAAAAA-BBBBBB-CCCCCC")
    distribution.member("u-1", "100001")
    release_id = distribution.release(files={"readme.txt": b"Read me first.\n"}, publish=False)
    key = secrets.token_hex(16)
    path = tmp_path / "files" / key[:2] / key
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        out.truncate(SIZE)
        out.seek(SIZE - len(TAIL))
        out.write(TAIL)
    sha256 = sha256_of(path)
    with distribution.database.unit_of_work() as session:
        session.add(ReleaseFile(release_id=release_id, name="setup.exe", size=SIZE, sha256=sha256, storage_key=key))
    assert distribution.staff("POST", f"/api/v1/admin/releases/{release_id}/publish").status_code == 200
    answer = distribution.call("GET", "/api/v1/customers/100001/downloads", user="u-1")
    [file] = [f for f in answer.get_json()["items"][0]["files"] if f["name"] == "setup.exe"]
    assert file["size"] == SIZE
    url = urlsplit(file["url"])
    return {"path": f"{url.path}?{url.query}", "sha256": sha256, "storage": tmp_path / "files"}


@pytest.fixture
def gunicorn_distribution(distribution, large_file, amqp_url, namespace, tmp_path):
    """distribution as the Procfile runs it (one worker), on the test's database and storage."""
    port = free_port()
    env = {
        **os.environ,
        "DISTRIBUTION_DATABASE_URL": distribution.database.url,
        "DISTRIBUTION_STORAGE_DIR": str(large_file["storage"]),
        "INTERNAL_AUTH_SECRET": TEST_SECRET,
        "AMQP_URL": amqp_url,
        "EVENTS_NAMESPACE": namespace,
        "PUBLIC_URL": "https://portal.example",
        "WEB_CONCURRENCY": "1",
        "VAR_DIR": str(tmp_path / "var"),
        "IDENTITY_URL": distribution.identity().url,  # a person's link is checked with identity
    }
    env.pop("DOWNLOAD_ACCEL_REDIRECT", None)
    log = open(tmp_path / "distribution.log", "wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "--name",
            "distribution",
            "--bind",
            f"127.0.0.1:{port}",
            "distribution.app:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        http = urllib3.PoolManager(retries=False, timeout=2)
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "distribution.log").read_text()
            try:
                if http.request("GET", base + "/readyz").status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                pass
            assert time.monotonic() < deadline, "distribution did not become ready"
            time.sleep(0.2)
        workers = []
        while not workers and time.monotonic() < deadline:
            workers = group_worker_pids(process.pid)
        assert len(workers) == 1
        yield base, workers
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_a_2_gib_download_is_byte_exact_and_leaves_the_worker_small(large_file, gunicorn_distribution):
    base, workers = gunicorn_distribution
    url = base + large_file["path"]
    # A first small request so the worker has imported and connected whatever a request needs.
    warm = stream_get(url, {"Range": "bytes=0-1023"})
    assert warm.status == 206 and warm.length == 1024

    with RssSampler(workers) as rss:
        whole = stream_get(url, digest=True)
    assert whole.status == 200
    assert whole.length == SIZE and whole.headers["content-length"] == str(SIZE)
    assert whole.sha256 == large_file["sha256"]
    assert whole.headers["etag"] == f'"{large_file["sha256"]}"'
    assert rss.growth_kib() * 1024 / 1e6 < RSS_LIMIT_MB, f"the worker grew by {rss.growth_kib()} KiB"


def test_a_range_at_the_end_of_2_gib_is_byte_exact(large_file, gunicorn_distribution):
    base, workers = gunicorn_distribution
    url = base + large_file["path"]
    start = SIZE - 100_000
    with RssSampler(workers) as rss:
        tail = stream_get(url, {"Range": f"bytes={start}-"}, digest=True)
    assert tail.status == 206
    assert tail.headers["content-range"] == f"bytes {start}-{SIZE - 1}/{SIZE}"
    assert tail.length == 100_000
    assert tail.sha256 == hashlib.sha256(bytes(100_000 - len(TAIL)) + TAIL).hexdigest()
    last = stream_get(url, {"Range": "bytes=-10"}, digest=True)
    assert last.status == 206 and last.sha256 == hashlib.sha256(TAIL[-10:]).hexdigest()
    assert rss.growth_kib() * 1024 / 1e6 < RSS_LIMIT_MB, f"the worker grew by {rss.growth_kib()} KiB"
