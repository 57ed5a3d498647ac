"""What every benchmark shares: results, a load generator (wrk or a Python fallback), CPU
pinning, and a throw-away suite of processes started from the Procfile with `ops.suite`.

Absolute numbers on a shared 2-core machine are noise; a benchmark therefore measures its own
baseline in the same run and reports ratios (see `docs/quality.md`, "Performance").
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ops.suite import ROOT, Suite

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"


# --- results ------------------------------------------------------------------------------
@dataclass
class Metric:
    name: str
    value: float
    unit: str
    target: str
    ok: bool
    # A figure reported for information (no target): its verdict reads "info", never MISS.
    info: bool = False

    def shown(self) -> str:
        return f"{self.value:.3f}{self.unit}" if self.unit != "" else f"{self.value:.3f}"

    @property
    def verdict(self) -> str:
        return "info" if self.info else "PASS" if self.ok else "MISS"


def info(name: str, value: float, unit: str) -> Metric:
    return Metric(name, value, unit, "", True, info=True)


@dataclass
class Result:
    benchmark: str
    metrics: list[Metric]
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.metrics)


@dataclass
class Options:
    runs: int = 5
    duration: float = 5.0
    warmup: float = 3.0
    loadgen: str = "auto"  # "auto" (wrk when installed), "wrk" or "python"
    pin: bool = True
    database: str = "sqlite"  # "sqlite" (temp files) or "postgres" (temp databases)
    keep_logs: bool = False
    verbose: bool = False


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- CPU pinning --------------------------------------------------------------------------
def cpu_split() -> tuple[set[int], set[int]] | None:
    """(CPUs for the load generator, CPUs for the servers), or None on a single CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, set(cpus[1:])


@contextlib.contextmanager
def affinity(cpus: set[int] | None) -> Iterator[None]:
    """Run the block on `cpus` (this thread and every process it starts inherits them)."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds so far of every live process in process group `pgid` (each
    suite process is its own group: gunicorn's master and workers together). Read from /proc;
    0.0 where there is no /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp ... utime (14th field of the line) stime (15th).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


# --- load generation ----------------------------------------------------------------------
@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    tool: str


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def choose_loadgen(preference: str) -> str:
    if preference == "wrk" and not wrk_available():
        raise RuntimeError("wrk is not installed (apt-get install wrk), use --loadgen python")
    if preference == "auto":
        return "wrk" if wrk_available() else "python"
    return preference


def run_load(
    tool: str,
    url: str,
    headers: dict[str, str],
    *,
    connections: int,
    duration: float,
    cpus: set[int] | None = None,
    method: str = "GET",
    body: bytes | None = None,
) -> Load:
    """Load `url` for `duration` seconds over `connections` keep-alive connections, every
    request the same (`method`, `headers` and `body`; the caller sets Content-Type)."""
    if tool == "wrk":
        return _wrk(url, headers, connections, duration, cpus, method, body)
    with affinity(cpus):
        return _python_load(url, headers, connections, duration, method, body)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _wrk_script(method: str, body: bytes | None) -> str:
    """A wrk Lua script setting the method and body (every byte escaped as `\\ddd`, so any
    body survives Lua's string syntax)."""
    escaped = "".join(f"\\{byte}" for byte in (body or b""))
    return f'wrk.method = "{method}"\nwrk.body = "{escaped}"\n'


def _wrk(
    url: str,
    headers: dict[str, str],
    connections: int,
    duration: float,
    cpus: set[int] | None,
    method: str = "GET",
    body: bytes | None = None,
) -> Load:
    command = [
        "wrk",
        "--latency",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(duration))}s",
        "--timeout",
        "5s",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    with contextlib.ExitStack() as stack:
        if method != "GET" or body:
            script = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="cc-bench-"))
            script.write(_wrk_script(method, body))
            script.flush()
            command += ["-s", script.name]
        command.append(url)
        if cpus:
            command = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] + command
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(n) for n in match.groups())
    return Load(rps, p50, p99, requests, errors, "wrk")


def _python_load(
    url: str,
    headers: dict[str, str],
    connections: int,
    duration: float,
    method: str = "GET",
    body: bytes | None = None,
) -> Load:
    """Threads, each with one keep-alive http.client connection. Bound by the GIL, so it is
    the weaker generator: use it only where wrk is not installed."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    start_gate = threading.Barrier(connections + 1)
    deadline = [0.0]

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        mine = latencies[index]
        start_gate.wait()
        clock = time.perf_counter
        while True:
            began = clock()
            if began >= deadline[0]:
                break
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 400:
                    errors[index] += 1
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
                continue
            mine.append(clock() - began)
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + duration
    start_gate.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = sorted(x for per in latencies for x in per)
    if not every:
        return Load(0.0, float("nan"), float("nan"), 0, sum(errors), "python")
    return Load(
        len(every) / elapsed,
        every[len(every) // 2] * 1000,
        every[min(len(every) - 1, int(len(every) * 0.99))] * 1000,
        len(every),
        sum(errors),
        "python",
    )


def request_json(
    url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None
) -> tuple[int, dict]:
    """One request on its own connection (set-up and checks, not load): status and JSON body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
    conn.request(method, parts.path, body=data, headers=all_headers)
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, (json.loads(raw) if raw else {})


# --- a throw-away suite -------------------------------------------------------------------
class BenchSuite:
    """Some of the Procfile's processes on free ports, with their own databases (SQLite files
    in a temp VAR_DIR, or PostgreSQL databases created and dropped here), their own broker
    namespace and a random INTERNAL_AUTH_SECRET."""

    STAFF_EMAIL = "bench-staff@example.com"
    STAFF_PASSWORD = "bench-staff-password-" + "x" * 8

    def __init__(self, components: list[str], options: Options, extra_env: dict[str, str] | None = None):
        self.components = components
        self.options = options
        self.workdir = Path(tempfile.mkdtemp(prefix="cc-bench-"))
        self.secret = secrets.token_hex(32)
        self.namespace = f"bench-{secrets.token_hex(4)}."
        self.amqp_url = os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
        self.databases: list[str] = []
        env = {
            "AMQP_URL": self.amqp_url,
            "EVENTS_NAMESPACE": self.namespace,
            "INTERNAL_AUTH_SECRET": self.secret,
            "STAFF_EMAIL": self.STAFF_EMAIL,
            "STAFF_PASSWORD": self.STAFF_PASSWORD,
            "VAR_DIR": str(self.workdir / "var"),
            "UPSTREAM_TIMEOUT": "5",
            **(extra_env or {}),
        }
        if options.database == "postgres":
            for component in components:
                env[f"{component.upper()}_DATABASE_URL"] = self._new_postgres_database(component)
        self.suite = Suite(Suite.local_env(env), log_dir=self.workdir / "logs")

    def _admin_url(self) -> str:
        return os.environ.get("POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"

    def _new_postgres_database(self, label: str) -> str:
        import psycopg
        from sqlalchemy.engine import make_url

        admin = make_url(self._admin_url().replace("postgresql+psycopg://", "postgresql://"))
        name = f"cc_bench_{label}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return admin.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)

    def database_url(self, component: str) -> str:
        key = f"{component.upper()}_DATABASE_URL"
        if key in self.suite.env and self.options.database == "postgres":
            return self.suite.env[key]
        return f"sqlite:///{self.workdir / 'var' / (component + '.db')}"

    def web_url(self, component: str) -> str:
        return self.suite.web_url(component)

    def __enter__(self) -> BenchSuite:
        try:
            for component in self.components:
                subprocess.run(
                    [sys.executable, "-m", component, "migrate"],
                    env=self.suite.env,
                    cwd=ROOT,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            split = cpu_split() if self.options.pin else None
            # Servers are started on the servers' CPUs: gunicorn and its workers inherit them.
            with affinity(split[1] if split else None):
                self.suite.start(self.components)
            self.suite.wait_ready(tuple(self.components))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.suite.stop_all()
        with contextlib.suppress(Exception):
            import pika

            from shared.topology import Topology

            connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            Topology(self.namespace).delete(connection.channel())
            connection.close()
        if self.databases:
            import psycopg
            from sqlalchemy.engine import make_url

            admin = make_url(self._admin_url().replace("postgresql+psycopg://", "postgresql://"))
            with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as connection:
                for name in self.databases:
                    connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self.options.keep_logs:
            print(f"  logs kept in {self.workdir / 'logs'}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
