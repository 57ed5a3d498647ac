"""download: an entitled customer's 1 GiB download, against a plain sendfile server.

Target (docs/quality.md): distribution ÷ a plain sendfile server on the same file >= 0.9, with
`Range` (a resumed download) >= 0.8; the serving process's RSS grows < 20 MB.

Set-up, all through the real code paths: distribution and the gateway from the Procfile
(`BenchSuite`, SQLite by default); a 1 GiB file (a random MiB repeated, written once into the
benchmark's temp dir) uploaded by staff with `PUT /api/v1/admin/releases/{id}/files/{name}` to
distribution's own port (its storage hashes and fsyncs it, as for an operator's upload), the
release published; the customer, its registered license and a member with the `downloads`
right are the events licensing and identity send (`licensing.customer.created`,
`licensing.license.issued`, `identity.membership.changed`), applied by distribution's own
`EventConsumer` to its database (as tests/distribution/conftest.py does, without the broker);
the signed link is the one `GET /api/v1/customers/{n}/downloads` hands that member.

Paths, each downloaded whole and resumed (`Range: bytes=<half>-`):
- **sendfile** (the baseline): a minimal HTTP/1.1 server in its own process that answers
  every request with `socket.sendfile()` of the same file (Range too). Why this and not nginx:
  for one large response both are the same kernel loop (`sendfile(2)` from the page cache into
  the socket); per-request costs that would set nginx apart are nothing next to 1 GiB, and this
  one needs nothing installed. Python's `http.server` would not do: it copies through
  user space.
- **distribution direct**: distribution's own gunicorn port; gunicorn hands werkzeug's
  `send_file` (its `wsgi.file_wrapper`) to `socket.sendfile()`. This is the measure with the
  target: it is what serves the bytes wherever no edge server takes them over.
- **through the gateway** (information): the gateway streams the answer through Python in
  64 KiB chunks (urllib3 → gunicorn). Compose does not serve downloads that way: its edge
  server (nginx, deploy/nginx/) takes distribution's `X-Accel-Redirect` and sends the file
  itself, i.e. the baseline's speed. The figure shows what a deployment without the edge pays.

Client: curl (`-o /dev/null`, Debian's) when installed, else a Python socket reader (4 MiB
`recv_into`, bytes discarded). Pinned like the other benchmarks: the client on CPU 0, every
server (the baseline too) on the other(s), so each path gets the same server CPU and the client
is never the server's competitor. Before timing, every path's whole and resumed answers are
read once with a SHA-256 (right bytes, and the file in the page cache). Then `runs` rounds,
each one download per path and kind, the order alternating; medians of MB/s. RSS: distribution's
(and the gateway's) gunicorn workers, sampled every 20 ms through all measured downloads
(`/proc/<pid>/status` VmRSS): the largest rise of one worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import (
    BenchSuite,
    Metric,
    Options,
    Result,
    RssSampler,
    affinity,
    cpu_split,
    group_worker_pids,
    info,
    median,
    member_in_identity,
    request_json,
)

NAME = "download"
SIZE = 1024**3
FILE_NAME = "ucetnictvi-2026.1-setup.exe"
CUSTOMER = "100001"
INSTALLATION = "AAAAAA-BBBBBB-CCCCCC"
MEMBER = "bench-member-1"
FULL_TARGET = 0.9
RESUMED_TARGET = 0.8
RSS_TARGET_MB = 20.0
READ_BUFFER = 4 * 1024 * 1024


# --- the file -------------------------------------------------------------------------------
def make_file(path: Path, size: int) -> str:
    """`size` bytes (a random MiB repeated) at `path`; returns their SHA-256."""
    pattern = os.urandom(min(size, 1024 * 1024)) or b"x"
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = pattern[: min(left, len(pattern))]
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def sha256_of(path: Path, start: int = 0) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        source.seek(start)
        while chunk := source.read(READ_BUFFER):
            digest.update(chunk)
    return digest.hexdigest()


# --- the baseline: socket.sendfile ----------------------------------------------------------
def _sendfile_serve(path: str, port: int) -> None:
    """In its own process: serve `path` for every GET, with single Range, by socket.sendfile."""
    import socketserver

    size = os.path.getsize(path)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            sock = self.request
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = sock.makefile("rb")
            with open(path, "rb") as source:
                while True:
                    line = reader.readline(65537)
                    if not line:
                        return
                    headers = {}
                    while (header := reader.readline(65537)) not in (b"\r\n", b"\n", b""):
                        name, _, value = header.decode("latin-1").partition(":")
                        headers[name.strip().lower()] = value.strip()
                    start, end, status, extra = 0, size, "200 OK", ""
                    wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", headers.get("range", ""))
                    if wanted and wanted.group(1) + wanted.group(2):
                        first, last = wanted.groups()
                        if first == "":
                            start = max(0, size - int(last))
                        else:
                            start, end = int(first), min(size, int(last) + 1) if last else size
                        if start >= size:
                            sock.sendall(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n")
                            continue
                        status = "206 Partial Content"
                        extra = f"Content-Range: bytes {start}-{end - 1}/{size}\r\n"
                    sock.sendall(
                        f"HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n"
                        f"Content-Length: {end - start}\r\nAccept-Ranges: bytes\r\n{extra}\r\n".encode()
                    )
                    if line.startswith(b"GET") and end > start:
                        sock.sendfile(source, start, end - start)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    with Server(("127.0.0.1", port), Handler) as server:
        server.serve_forever()


@contextlib.contextmanager
def sendfile_server(path: Path, cpus: set[int] | None):
    """The baseline server on a free port, in a process started on `cpus`: yields its URL."""
    import multiprocessing

    from ops.suite import free_port

    port = free_port()
    with affinity(cpus):
        process = multiprocessing.get_context("spawn").Process(
            target=_sendfile_serve, args=(str(path), port), daemon=True
        )
        process.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if not process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sendfile baseline server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/{FILE_NAME}"
    finally:
        process.terminate()
        process.join(5)
        if process.is_alive():
            process.kill()


# --- the client -------------------------------------------------------------------------------
@dataclass
class Fetched:
    status: int
    length: int  # body bytes received
    seconds: float  # connect to last byte
    sha256: str | None = None
    headers: dict | None = None

    @property
    def mb_per_s(self) -> float:
        return self.length / self.seconds / 1e6 if self.seconds > 0 else float("nan")


def stream_get(url: str, headers: dict[str, str] | None = None, digest: bool = False, timeout: float = 120) -> Fetched:
    """GET `url` over a fresh connection and read the body with one large `recv_into` buffer,
    discarding it (or hashing it when `digest`). Exact: the body must be Content-Length bytes."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    buffer = bytearray(READ_BUFFER)
    view = memoryview(buffer)
    hasher = hashlib.sha256() if digest else None
    began = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            got = sock.recv(65536)
            if not got:
                raise ConnectionError(f"no answer header from {url}")
            head += got
        head, _, rest = head.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        answer_headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        expected = int(answer_headers["content-length"]) if "content-length" in answer_headers else None
        received = len(rest)
        if hasher:
            hasher.update(rest)
        while expected is None or received < expected:
            count = sock.recv_into(view)
            if not count:
                break
            received += count
            if hasher:
                hasher.update(view[:count])
    seconds = time.perf_counter() - began
    if expected is not None and received != expected:
        raise RuntimeError(f"{url}: {received} bytes of {expected}")
    return Fetched(status, received, seconds, hasher.hexdigest() if hasher else None, answer_headers)


def curl_get(url: str, headers: dict[str, str], cpus: set[int] | None) -> Fetched:
    command = ["curl", "-s", "-S", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    if cpus:
        command = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] + command
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=600).stdout.split()
    return Fetched(int(out[0]), int(out[1]), float(out[2]))


def fetch(tool: str, url: str, headers: dict[str, str], cpus: set[int] | None) -> Fetched:
    if tool == "curl":
        return curl_get(url, headers, cpus)
    with affinity(cpus):
        return stream_get(url, headers)


# --- the set-up through distribution's API and events -----------------------------------------
def staff_headers(secret: str) -> dict[str, str]:
    from shared import auth
    from shared.auth import Principal

    principal = Principal("bench-staff", kind="user", staff=True, client="127.0.0.1")
    return {auth.HEADER: auth.issue(secret, "distribution", principal)}


def member_headers(secret: str, user: str = MEMBER) -> dict[str, str]:
    from shared import auth
    from shared.auth import Principal

    return {auth.HEADER: auth.issue(secret, "distribution", Principal(user, kind="user", client="127.0.0.1"))}


def entitle(database_url: str, secret: str, customer: str = CUSTOMER, user: str = MEMBER) -> None:
    """The events licensing and identity send, applied by distribution's own consumer code."""
    import json

    from distribution.handlers import HANDLERS

    from shared.config import Settings
    from shared.consumer import EventConsumer
    from shared.events import new_envelope

    settings = Settings.from_env("distribution", database_url=database_url, internal_auth_secret=secret)
    consumer = EventConsumer(settings, HANDLERS)
    events = [
        (
            "licensing.customer.created",
            {"customer_number": customer, "company_id": "25083325", "company_name": "Účetnictví Novák s.r.o."},
            "licensing",
        ),
        (
            "licensing.license.issued",
            {
                "installation_number": INSTALLATION,
                "customer_number": customer,
                "product": "ucetnictvi",
                "edition": "Jazz",
                "add_ons": [],
                "seats": 1,
                "channel": "direct",
                "status": "registered",
                "support_until": "2099-12-31",
                "version": 1,
            },
            "licensing",
        ),
        (
            "identity.membership.changed",
            {
                "user_id": user,
                "customer_number": customer,
                "administrator": False,
                "rights": ["downloads"],
                "active": True,
                "version": 1,
            },
            "identity",
        ),
    ]
    try:
        for type_, data, producer in events:
            consumer.apply(json.dumps(new_envelope(type_, data, producer, None), default=str).encode())
    finally:
        consumer.database.engine.dispose()


def member(bench, customer: str = CUSTOMER, user: str = MEMBER) -> None:
    """An entitled member: the events in distribution's copy (`entitle`) and the person in
    identity, which distribution asks each time the person's signed link is used."""
    entitle(bench.database_url("distribution"), bench.secret, customer, user)
    member_in_identity(bench.database_url("identity"), user, customer, ["downloads"])


def create_release(distribution_url: str, secret: str, publish: bool = True) -> int:
    status, body = request_json(
        f"{distribution_url}/api/v1/admin/releases",
        "POST",
        {"product": "ucetnictvi", "version": "2026.1", "kind": "full", "released_on": "2026-06-01"},
        staff_headers(secret),
    )
    if status != 201:
        raise RuntimeError(f"creating the release failed: {status} {body}")
    return body["id"]


def upload(distribution_url: str, secret: str, release_id: int, path: Path, name: str = FILE_NAME) -> dict:
    """Staff's upload, streamed from `path` to distribution's own port."""
    import json

    parts = urlsplit(distribution_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600, blocksize=1024 * 1024)
    with open(path, "rb") as body:
        conn.request(
            "PUT",
            f"/api/v1/admin/releases/{release_id}/files/{name}",
            body=body,
            headers={
                **staff_headers(secret),
                "Content-Type": "application/octet-stream",
                "Content-Length": str(path.stat().st_size),
            },
        )
        answer = conn.getresponse()
        raw = answer.read()
    conn.close()
    if answer.status != 201:
        raise RuntimeError(f"the upload failed: {answer.status} {raw[:500]!r}")
    return json.loads(raw)


def publish(distribution_url: str, secret: str, release_id: int) -> None:
    status, body = request_json(
        f"{distribution_url}/api/v1/admin/releases/{release_id}/publish", "POST", None, staff_headers(secret)
    )
    if status != 200:
        raise RuntimeError(f"publishing failed: {status} {body}")


def signed_link(distribution_url: str, secret: str, customer: str = CUSTOMER, user: str = MEMBER) -> str:
    """The path and query of the link the downloads page gives the member (its host is PUBLIC_URL)."""
    status, body = request_json(
        f"{distribution_url}/api/v1/customers/{customer}/downloads", headers=member_headers(secret, user)
    )
    if status != 200 or not body.get("items"):
        raise RuntimeError(f"the member sees no downloads: {status} {body}")
    parts = urlsplit(body["items"][0]["files"][0]["url"])
    return f"{parts.path}?{parts.query}"


# --- the measurement ----------------------------------------------------------------------------
def measure(options: Options, log=print, size: int = SIZE) -> dict:
    tool = "curl" if shutil.which("curl") else "python"
    split = cpu_split() if options.pin else None
    client_cpus, server_cpus = (split[0], split[1]) if split else (None, None)
    with BenchSuite(["identity", "distribution", "gateway"], options) as bench:
        workdir = bench.workdir
        source = workdir / "source.bin"
        began = time.monotonic()
        expected_sha = make_file(source, size)
        distribution, gateway = bench.web_url("distribution"), bench.web_url("gateway")
        release_id = create_release(distribution, bench.secret)
        stored = upload(distribution, bench.secret, release_id, source)
        if stored["size"] != size or stored["sha256"] != expected_sha:
            raise RuntimeError(f"distribution stored something else: {stored}")
        publish(distribution, bench.secret, release_id)
        member(bench)
        link = signed_link(distribution, bench.secret)
        setup_seconds = time.monotonic() - began
        middle = size // 2
        resumed_sha = sha256_of(source, middle)
        resume = {"Range": f"bytes={middle}-"}

        with sendfile_server(source, server_cpus) as baseline:
            urls = {"sendfile": baseline, "direct": distribution + link, "gateway": gateway + link}
            # Right bytes on every path (and the file in the page cache) before any timing.
            for path, url in urls.items():
                with affinity(client_cpus):
                    whole = stream_get(url, digest=True)
                    part = stream_get(url, resume, digest=True)
                if (whole.status, whole.length, whole.sha256) != (200, size, expected_sha):
                    raise RuntimeError(f"{path}: the whole file came back wrong: {whole}")
                if (part.status, part.length, part.sha256) != (206, size - middle, resumed_sha):
                    raise RuntimeError(f"{path}: the resumed download came back wrong: {part}")
                if options.verbose:
                    log(f"  {path:9} verified (whole {whole.mb_per_s:.0f} MB/s, resumed {part.mb_per_s:.0f} MB/s)")

            distribution_group = bench.suite.processes["distribution"].popen.pid
            gateway_group = bench.suite.processes["gateway"].popen.pid
            runs: dict[str, list[Fetched]] = {f"{p}-{k}": [] for p in urls for k in ("full", "resumed")}
            with (
                RssSampler(group_worker_pids(distribution_group)) as distribution_rss,
                RssSampler(group_worker_pids(gateway_group)) as gateway_rss,
            ):
                for round_number in range(options.runs):
                    order = list(urls) if round_number % 2 == 0 else list(reversed(urls))
                    for kind, headers, length in (("full", {}, size), ("resumed", resume, size - middle)):
                        for path in order:
                            got = fetch(tool, urls[path], headers, client_cpus)
                            if got.status != (200 if kind == "full" else 206) or got.length != length:
                                raise RuntimeError(f"{path} {kind}: status {got.status}, {got.length} bytes")
                            runs[f"{path}-{kind}"].append(got)
                            if options.verbose:
                                log(f"  {path:9} {kind:8} {got.mb_per_s:8.0f} MB/s  {got.seconds:6.3f} s")
                    bench.check_alive()

    speed = {key: median([r.mb_per_s for r in value]) for key, value in runs.items()}

    def ratio(path: str, kind: str) -> float:
        base = speed[f"sendfile-{kind}"]
        return speed[f"{path}-{kind}"] / base if base else float("nan")

    return {
        "client": tool,
        "pinned": bool(split),
        "size": size,
        "setup_seconds": setup_seconds,
        "mb_per_s": speed,
        "direct_full": ratio("direct", "full"),
        "direct_resumed": ratio("direct", "resumed"),
        "gateway_full": ratio("gateway", "full"),
        "gateway_resumed": ratio("gateway", "resumed"),
        "distribution_rss_growth_mb": distribution_rss.growth_kib() * 1024 / 1e6,
        "gateway_rss_growth_mb": gateway_rss.growth_kib() * 1024 / 1e6,
        "runs": {key: [r.seconds for r in value] for key, value in runs.items()},
    }


def run(options: Options, log=print, size: int = SIZE) -> Result:
    f = measure(options, log, size)
    speed = f["mb_per_s"]
    return Result(
        NAME,
        [
            Metric(
                "direct ÷ sendfile, whole file",
                f["direct_full"],
                "",
                f">= {FULL_TARGET}",
                f["direct_full"] >= FULL_TARGET,
            ),
            Metric(
                "direct ÷ sendfile, resumed (Range)",
                f["direct_resumed"],
                "",
                f">= {RESUMED_TARGET}",
                f["direct_resumed"] >= RESUMED_TARGET,
            ),
            Metric(
                "distribution worker RSS growth",
                f["distribution_rss_growth_mb"],
                " MB",
                f"< {RSS_TARGET_MB:g} MB",
                f["distribution_rss_growth_mb"] < RSS_TARGET_MB,
            ),
            info("via gateway ÷ sendfile, whole file", f["gateway_full"], ""),
            info("via gateway ÷ sendfile, resumed", f["gateway_resumed"], ""),
            info("gateway worker RSS growth", f["gateway_rss_growth_mb"], " MB"),
        ],
        notes=[
            f"{f['size'] / 1024**3:g} GiB file, client {f['client']}, "
            f"{'pinned (client | servers)' if f['pinned'] else 'not pinned'}, {options.runs} downloads per figure "
            f"(set-up incl. upload {f['setup_seconds']:.1f} s)",
            "MB/s whole: " + ", ".join(f"{p} {speed[p + '-full']:.0f}" for p in ("sendfile", "direct", "gateway")),
            "MB/s resumed from the middle: "
            + ", ".join(f"{p} {speed[p + '-resumed']:.0f}" for p in ("sendfile", "direct", "gateway")),
        ],
        details=f,
    )
