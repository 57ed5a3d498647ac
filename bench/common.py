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
    # "sqlite" (temp files) or "postgres" (temp databases); None: each benchmark's own default
    # (sqlite for the HTTP ones, postgres for the event path, see BenchSuite.database).
    database: str | None = None
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


def named_cpu_seconds(names: tuple[str, ...]) -> float:
    """User + system CPU seconds so far of every live process whose command name is one of
    `names` (e.g. "postgres", "beam.smp": servers we do not start, so no process group of
    ours). Whole-machine figures: anything else they serve at the time counts too."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                line = stat.read()
        except OSError:
            continue
        command = line[line.index("(") + 1 : line.rindex(")")]
        if command in names:
            fields = line.rsplit(")", 1)[1].split()
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
    return _wrk_figures(out)


def _wrk_figures(out: str) -> Load:
    """Throughput, p50/p99 and errors from wrk's `--latency` report."""
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

    def __init__(
        self,
        components: list[str],
        options: Options,
        extra_env: dict[str, str] | None = None,
        *,
        processes: list[str] | None = None,
        default_database: str = "sqlite",
    ):
        """`components` are migrated and waited for (`/readyz`); `processes` are the Procfile
        entries started (default: the components' web processes; relays and consumers are
        named here, e.g. "licensing-relay"). `default_database` applies when the options do
        not choose one."""
        self.components = components
        self.processes = processes or list(components)
        self.options = options
        self.database = options.database or default_database
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
        if self.database == "postgres":
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
        if key in self.suite.env and self.database == "postgres":
            return self.suite.env[key]
        return f"sqlite:///{self.workdir / 'var' / (component + '.db')}"

    def web_url(self, component: str) -> str:
        return self.suite.web_url(component)

    def check_alive(self) -> None:
        """Raise if a process of ours has exited (a benchmark must not measure a suite that
        lost its consumer or its relay)."""
        for name, process in self.suite.processes.items():
            if process.popen.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {process.popen.returncode} during the benchmark"
                    + ("" if self.options.keep_logs else " (--keep-logs keeps its log)")
                )

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
                self.suite.start(self.processes)
            self.suite.wait_ready(tuple(c for c in self.components if c in self.processes))
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


def member_in_identity(
    database_url: str,
    user_id: str,
    customer_number: str,
    rights: list[str],
    *,
    company_id: str = "25083325",
    company_name: str = "Účetnictví Novák s.r.o.",
    email: str | None = None,
) -> None:
    """A person and their membership written straight into identity's database: what
    licensing and distribution ask identity about (a signed link in use, a stale copy).
    `users` among the rights makes the person the profile's administrator."""
    from datetime import UTC, datetime

    from identity.models import RIGHTS, CustomerProfile, Membership, User

    from shared.db import Database

    identity = Database(database_url)
    try:
        with identity.unit_of_work() as session:
            if session.get(CustomerProfile, customer_number) is None:
                session.add(
                    CustomerProfile(
                        customer_number=customer_number,
                        company_id=company_id,
                        company_name=company_name,
                        source_updated_at=datetime.now(UTC),
                    )
                )
            session.add(User(id=user_id, email=email or f"{user_id}@example.com", name=user_id, access_version=1))
            session.flush()
            session.add(
                Membership(
                    user_id=user_id,
                    customer_number=customer_number,
                    administrator="users" in rights,
                    rights=[r for r in RIGHTS if r in rights],
                )
            )
    finally:
        identity.dispose()


# --- the event path: partner sales, raw pika baselines, an observer of applied events ------
# Used by sale-propagation and event-throughput (bench/sale_propagation.py,
# bench/event_throughput.py). Every time on this path is wall-clock (`time.time()`), so it can
# be compared with the timestamps the services write (outbox `created_at`/`published_at`,
# inbox `processed_at`): one machine, one clock.

SALE_EVENT = "licensing.license.issued"


def valid_company_id(seed: int) -> str:
    """A valid company ID (IČO) made from a number: seven digits and the mod-11 check digit
    (the same rule as tests/support.py and shared.company_id)."""
    digits = f"{seed % 10_000_000:07d}"
    total = sum(int(d) * w for d, w in zip(digits, range(8, 1, -1), strict=True))
    return digits + str((11 - total % 11) % 10)


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank); NaN when empty."""
    if not values:
        return float("nan")
    import math

    ordered = sorted(values)
    rank = math.ceil(fraction * len(ordered) - 1e-9)  # 0.99 * 100 is 99.00000000000001 in floats
    return ordered[min(len(ordered), max(1, rank)) - 1]


def event_consumers(event_type: str = SALE_EVENT) -> list[str]:
    """Which services consume `event_type`, from the catalogue (shared/events.yaml)."""
    from shared.events import catalogue

    spec = catalogue().get(event_type)
    return list(spec.consumers) if spec else []


class PartnerChannel:
    """Set-up and requests of licensing's partner channel, through the gateway (the public edge
    a partner's system talks to): a staff session, one product, one partner with its API key,
    and a pool of customers created by staff (so every sale is one `licensing.license.issued`
    event and nothing else)."""

    PRODUCT = {
        "code": "bench-ucetnictvi",
        "name": "Bench Účetnictví",
        "editions": ["Standard", "Profi"],
        "add_ons": ["Mzdy"],
    }

    def __init__(self, bench: BenchSuite, customers: int = 20):
        self.bench = bench
        self.gateway = bench.web_url("gateway")
        status, body = request_json(
            f"{self.gateway}/api/v1/sessions", "POST", {"email": bench.STAFF_EMAIL, "password": bench.STAFF_PASSWORD}
        )
        if status != 201:
            raise RuntimeError(f"staff sign-in failed: {status} {body}")
        self.staff = {"Authorization": f"Bearer {body['token']}"}
        self._admin("/api/v1/admin/products", self.PRODUCT)
        partner = self._admin("/api/v1/admin/partners", {"name": "Bench Partner s.r.o."})
        self.partner_id = partner["partner_id"]
        self.api_key = partner["api_key"]
        self.customers: list[dict] = []
        for seed in range(customers):
            company = {
                "company_id": valid_company_id(4_200_000 + seed),
                "company_name": f"Bench Zákazník {seed} s.r.o.",
                "billing_address": {"street": f"Dlouhá {seed + 1}", "city": "Praha", "postal_code": "110 00"},
            }
            created = self._admin("/api/v1/admin/customers", company)
            self.customers.append({**company, "customer_number": created["customer_number"]})
        self.sales_url = f"{self.gateway}/api/v1/partner/sales"

    def _admin(self, path: str, body: dict) -> dict:
        status, answer = request_json(self.gateway + path, "POST", body, self.staff)
        if status != 201:
            raise RuntimeError(f"POST {path} failed: {status} {answer}")
        return answer

    def sale(self, sale_id: str, index: int) -> dict:
        return {
            "partner_sale_id": sale_id,
            "customer": self.customers[index % len(self.customers)],
            "product": self.PRODUCT["code"],
            "edition": "Standard",
            "add_ons": ["Mzdy"],
            "seats": 1 + index % 5,
            "sold_on": time.strftime("%Y-%m-%d", time.gmtime()),
        }

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Idempotency-Key": key, "Content-Type": "application/json"}

    def request(self, sale_id: str, index: int) -> tuple[bytes, dict[str, str]]:
        return json.dumps(self.sale(sale_id, index)).encode(), self.headers(sale_id)

    def wrk_script(self, prefix: str) -> str:
        """A wrk Lua script POSTing a new sale on every request (its own partner_sale_id and
        Idempotency-Key `<prefix><counter>`, the customers in turn)."""
        marker = "@@SALE@@"
        bodies = []
        for index in range(len(self.customers)):
            bodies.append(json.dumps(self.sale(marker, index)).split(json.dumps(marker)))
        escape = lambda text: "".join(f"\\{byte}" for byte in text.encode())  # noqa: E731
        heads = ", ".join(f'"{escape(head)}"' for head, _ in bodies)
        tails = ", ".join(f'"{escape(tail)}"' for _, tail in bodies)
        return (
            'wrk.method = "POST"\n'
            f'wrk.headers["Authorization"] = "Bearer {self.api_key}"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"local heads = {{{heads}}}\nlocal tails = {{{tails}}}\n"
            f'local prefix = "{prefix}"\nlocal counter = 0\n'
            "request = function()\n"
            "  counter = counter + 1\n"
            "  local id = prefix .. counter\n"
            "  local i = (counter % #heads) + 1\n"
            '  wrk.headers["Idempotency-Key"] = id\n'
            '  return wrk.format(nil, nil, nil, heads[i] .. "\\"" .. id .. "\\"" .. tails[i])\n'
            "end\n"
        )


@dataclass
class Sent:
    """One request of an open-loop schedule: when it was due, sent and answered (wall clock)."""

    index: int
    due: float
    sent: float
    answered: float
    status: int
    answer: dict


def open_loop(
    url: str,
    make_request,
    *,
    rate: float,
    duration: float,
    workers: int = 8,
    cpus: set[int] | None = None,
) -> list[Sent]:
    """POST `make_request(i) -> (body, headers)` at a steady `rate` per second for `duration`
    seconds: request i is due at start + i / rate whatever happened to the earlier ones (an
    open loop: a slow answer does not delay the next sale, it queues for a free worker, and
    `sent - due` shows it). `workers` threads with a keep-alive connection each, pinned to
    `cpus`."""
    import queue as queue_module

    parts = urlsplit(url)
    total = max(1, int(rate * duration))
    work: queue_module.Queue = queue_module.Queue()
    results: list[Sent | None] = [None] * total

    def worker() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while (item := work.get()) is not None:
            index, due = item
            body, headers = make_request(index)
            sent = time.time()
            try:
                conn.request("POST", parts.path, body=body, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                status, answer = response.status, (json.loads(raw) if raw else {})
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                status, answer = 0, {"error": str(error)}
            results[index] = Sent(index, due, sent, time.time(), status, answer)
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    with affinity(cpus):  # this (dispatching) thread only
        start = time.time() + 0.05
        for index in range(total):
            due = start + index / rate
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            work.put((index, due))
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join()
    return [r for r in results if r is not None]


def closed_loop_posts(url: str, make_request, *, connections: int, duration: float, cpus=None) -> Load:
    """The Python generator for POSTs that must differ (`make_request(i) -> (body, headers)`):
    `connections` threads, each sending its next request as soon as the last one answered."""
    import itertools

    parts = urlsplit(url)
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + duration

    def worker() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while (began := time.perf_counter()) < deadline:
            with lock:
                index = next(counter)
            body, headers = make_request(index)
            try:
                conn.request("POST", parts.path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status < 400
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                ok = False
            with lock:
                latencies.append(time.perf_counter() - began)
                errors[0] += not ok
        conn.close()

    began = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return Load(
        len(latencies) / elapsed,
        percentile(latencies, 0.5) * 1000,
        percentile(latencies, 0.99) * 1000,
        len(latencies),
        errors[0],
        "python",
    )


def wrk_script_load(url: str, script: str, *, connections: int, duration: float, cpus=None) -> Load:
    """wrk with a Lua script of the caller's (one thread, `connections` connections)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="cc-bench-") as file:
        file.write(script)
        file.flush()
        command = ["wrk", "--latency", "-t", "1", "-c", str(connections), "-d", f"{max(1, round(duration))}s"]
        command += ["--timeout", "10s", "-s", file.name, url]
        if cpus:
            command = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] + command
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return _wrk_figures(out)


class AppliedObserver:
    """When each event was applied by each consumer, seen from the side.

    On PostgreSQL a trigger (installed here, in the benchmark's own throw-away databases) on
    each consumer's `inbox` runs `pg_notify` for every row of `event_type`; a notification is
    delivered when the consumer's transaction COMMITS, i.e. exactly when the effect (written in
    that same transaction, see shared/consumer.py) becomes visible, and not at all when it rolls
    back. A thread LISTENs on every consumer's database and stamps each arrival with
    `time.time()`. The trigger adds one pg_notify per applied event to the consumer's commit
    (licensing's outbox already pays the same for every sale). On SQLite (no NOTIFY) the thread
    polls each inbox for new rows every `poll` seconds instead (resolution = `poll`).
    """

    CHANNEL = "cc_bench_applied"

    def __init__(self, database_urls: dict[str, str], event_type: str = SALE_EVENT, cpus=None, poll: float = 0.002):
        self.database_urls = database_urls
        self.event_type = event_type
        self.cpus = cpus
        self.poll = poll
        self.applied: dict[str, dict[str, float]] = {name: {} for name in database_urls}
        self.condition = threading.Condition()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connections: dict = {}

    @staticmethod
    def _psycopg_url(url: str) -> str:
        return url.replace("postgresql+psycopg://", "postgresql://")

    def __enter__(self) -> AppliedObserver:
        import psycopg

        for name, url in self.database_urls.items():
            if url.startswith("postgresql"):
                conn = psycopg.connect(self._psycopg_url(url), autocommit=True)
                conn.execute(
                    "CREATE OR REPLACE FUNCTION cc_bench_applied() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    f"BEGIN PERFORM pg_notify('{self.CHANNEL}', NEW.event_id); RETURN NULL; END $$"
                )
                conn.execute("DROP TRIGGER IF EXISTS cc_bench_applied ON inbox")
                conn.execute(
                    "CREATE TRIGGER cc_bench_applied AFTER INSERT ON inbox FOR EACH ROW "
                    f"WHEN (NEW.event_type = '{self.event_type}') EXECUTE FUNCTION cc_bench_applied()"
                )
                conn.execute(f"LISTEN {self.CHANNEL}")
                # What was applied before we listened (set-up, an earlier phase).
                for (event_id,) in conn.execute(
                    "SELECT event_id FROM inbox WHERE event_type = %s", (self.event_type,)
                ).fetchall():
                    self.applied[name].setdefault(event_id, 0.0)
            else:
                import sqlite3

                conn = sqlite3.connect(url.removeprefix("sqlite:///"), check_same_thread=False)
                self._sqlite_last = getattr(self, "_sqlite_last", {})
                self._sqlite_last[name] = 0
            self._connections[name] = conn
        self._thread = threading.Thread(target=self._run, daemon=True, name="applied-observer")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        for conn in self._connections.values():
            with contextlib.suppress(Exception):
                conn.close()

    def _run(self) -> None:
        import select as select_module

        if self.cpus:
            os.sched_setaffinity(0, self.cpus)
        postgres = {name: c for name, c in self._connections.items() if hasattr(c, "notifies")}
        sqlite = {name: c for name, c in self._connections.items() if name not in postgres}
        by_fd = {c.fileno(): name for name, c in postgres.items()}
        while not self.stopping.is_set():
            ready = []
            if by_fd:
                ready, _, _ = select_module.select(list(by_fd), [], [], self.poll if sqlite else 0.2)
            else:
                time.sleep(self.poll)
            arrivals: list[tuple[str, str, float]] = []
            for fd in ready:
                name = by_fd[fd]
                for notify in postgres[name].notifies(timeout=0):
                    arrivals.append((name, notify.payload, time.time()))
            for name, conn in sqlite.items():
                rows = conn.execute(
                    "SELECT rowid, event_id FROM inbox WHERE event_type = ? AND rowid > ? ORDER BY rowid",
                    (self.event_type, self._sqlite_last[name]),
                ).fetchall()
                now = time.time()
                for rowid, event_id in rows:
                    arrivals.append((name, event_id, now))
                    self._sqlite_last[name] = rowid
            if arrivals:
                with self.condition:
                    for name, event_id, at in arrivals:
                        self.applied[name].setdefault(event_id, at)
                    self.condition.notify_all()

    def count(self) -> int:
        """Events applied by EVERY consumer so far."""
        with self.condition:
            return min((len(seen) for seen in self.applied.values()), default=0)

    def wait_for(self, total: int, timeout: float, check=None) -> bool:
        """Wait until every consumer applied `total` events in all; False on timeout. `check()`
        runs about once a second meanwhile (e.g. BenchSuite.check_alive: a dead consumer
        should stop the benchmark at once, not after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while min((len(seen) for seen in self.applied.values()), default=0) < total:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.condition.wait(min(left, 1.0))
                if check is not None:
                    check()
        return True

    def applied_at(self, event_id: str) -> float | None:
        """When the LAST consumer committed `event_id` (the end to end of that event)."""
        with self.condition:
            times = [seen.get(event_id) for seen in self.applied.values()]
        return None if any(t is None for t in times) else max(times)


def outbox_events(database_url: str, event_type: str = SALE_EVENT) -> dict[str, dict]:
    """A producer's outbox rows of `event_type`: event id -> installation number (or the whole
    data), the body's size, and when it was written and confirmed by the broker (wall clock)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT event_id, body, created_at, published_at FROM outbox WHERE routing_key = :t"),
                {"t": event_type},
            ).all()
    finally:
        engine.dispose()
    events = {}
    for event_id, body, created_at, published_at in rows:
        data = json.loads(body)["data"]
        events[event_id] = {
            "installation_number": data.get("installation_number"),
            "size": len(body.encode()),
            "created": _epoch(created_at),
            "published": _epoch(published_at),
        }
    return events


def inbox_times(database_url: str, consumer: str, event_type: str = SALE_EVENT) -> dict[str, float]:
    """A consumer's inbox: event id -> when it began applying it (`processed_at`, wall clock)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT event_id, processed_at FROM inbox WHERE event_type = :t AND consumer = :c"),
                {"t": event_type, "c": consumer},
            ).all()
    finally:
        engine.dispose()
    return {event_id: _epoch(at) for event_id, at in rows}


def _epoch(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands back text
        from datetime import datetime

        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.timestamp()


# --- raw pika: what the broker alone gives, on the same machine, in the same run ------------
class RawPika:
    """The baseline of the event path: pika alone, one durable quorum queue (the same kind as
    the services' `<consumer>.events`), persistent messages of the events' size, publisher
    confirms (pika's BlockingChannel after `confirm_delivery()`: each `basic_publish` returns
    once the broker confirmed it, exactly as the relay publishes), one consumer with manual
    acks and the services' prefetch (20). Publisher and consumer are separate processes
    ("spawn") started on `cpus` (the servers' CPUs), so neither shares a GIL with us.

    - `latency(rate, duration)`: open-loop publishes at `rate`/s; each body carries its send
      time; the consumer notes receipt − send (before its ack). List of ms.
    - `throughput(duration)`: publish as fast as confirms allow for `duration` s, then a stop
      message; messages consumed (and acked) ÷ (last receipt − first publish).
    """

    PREFETCH = 20

    def __init__(self, amqp_url: str, namespace: str, size: int, cpus: set[int] | None = None):
        self.amqp_url = amqp_url
        self.queue = f"{namespace}bench.raw-pika"
        self.size = max(size, 32)
        self.cpus = cpus

    def __enter__(self) -> RawPika:
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        channel = connection.channel()
        channel.queue_declare(self.queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_purge(self.queue)
        connection.close()
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            import pika

            connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            connection.channel().queue_delete(self.queue)
            connection.close()

    def _run(self, publisher_args: tuple, timeout: float) -> tuple[dict, dict]:
        import multiprocessing
        import queue as queue_module

        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        ready = context.Event()
        with affinity(self.cpus):
            consumer = context.Process(
                target=_raw_consumer, args=(self.amqp_url, self.queue, self.PREFETCH, ready, results)
            )
            consumer.start()
            if not ready.wait(30):
                consumer.kill()
                raise RuntimeError("the raw pika consumer did not start")
            publisher = context.Process(
                target=_raw_publisher, args=(self.amqp_url, self.queue, *publisher_args, results)
            )
            publisher.start()
        got = {}
        deadline = time.monotonic() + timeout
        try:
            while len(got) < 2:
                try:
                    kind, payload = results.get(timeout=1.0)
                    got[kind] = payload
                    continue
                except queue_module.Empty:
                    pass
                for label, process in (("publisher", publisher), ("consumer", consumer)):
                    if label not in got and process.exitcode not in (None, 0):
                        raise RuntimeError(f"the raw pika {label} died (exit code {process.exitcode}): broker away?")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the raw pika run gave no result in {timeout:.0f} s (has {sorted(got)})")
        finally:
            for process in (publisher, consumer):
                process.join(5)
                if process.is_alive():
                    process.kill()
        return got["publisher"], got["consumer"]

    def latency(self, rate: float, duration: float) -> list[float]:
        _published, consumed = self._run((self.size, rate, duration), timeout=duration + 60)
        return consumed["latencies_ms"]

    def throughput(self, duration: float) -> float:
        published, consumed = self._run((self.size, 0.0, duration), timeout=duration + 120)
        if consumed["count"] != published["count"]:
            raise RuntimeError(f"raw pika lost messages: {published['count']} published, {consumed['count']} consumed")
        elapsed = consumed["last"] - published["first"]
        return consumed["count"] / elapsed if elapsed > 0 else float("nan")


def _raw_publisher(url: str, queue: str, size: int, rate: float, duration: float, results) -> None:
    """In its own process: publish persistent, confirmed, `mandatory` messages of `size` bytes
    (open loop at `rate`/s, or as fast as confirms come when rate is 0), then "STOP"."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.confirm_delivery()
    properties = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json")
    padding = b"x" * size
    count = 0
    first = time.time()
    end = first + duration
    while True:
        if rate:
            due = first + count / rate
            if due >= end:
                break
            pause = due - time.time()
            if pause > 0:
                connection.sleep(pause)
        elif time.time() >= end:
            break
        stamp = f"{time.time():.6f} ".encode()
        channel.basic_publish("", queue, (stamp + padding)[:size], properties, mandatory=True)
        count += 1
    channel.basic_publish("", queue, b"STOP", properties, mandatory=True)
    connection.close()
    results.put(("publisher", {"count": count, "first": first}))


def _raw_consumer(url: str, queue: str, prefetch: int, ready, results) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    ready.set()
    latencies: list[float] = []
    count = 0
    last = 0.0
    for method, _properties, body in channel.consume(queue, inactivity_timeout=60):
        if method is None:
            break
        now = time.time()
        channel.basic_ack(method.delivery_tag)
        if body == b"STOP":
            break
        count += 1
        last = now
        latencies.append((now - float(body.split(b" ", 1)[0])) * 1000)
    channel.cancel()
    connection.close()
    results.put(("consumer", {"count": count, "last": last, "latencies_ms": latencies}))


# --- memory of server processes (download) --------------------------------------------------
def process_memory_kib(pid: int, field: str = "VmRSS") -> int | None:
    """`field` (VmRSS, VmHWM, ...) of /proc/<pid>/status in KiB; None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def group_worker_pids(pgid: int) -> list[int]:
    """The processes of process group `pgid` except its leader: gunicorn's workers when the
    group is a suite process (ops.suite starts each in a session of its own)."""
    pids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit() or int(entry) == pgid:
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return sorted(pids)


class RssSampler:
    """The resident set of some processes, sampled every `interval` s in a thread while the
    block runs: `growth_kib()` is, per process, the highest sample minus its RSS at entry (the
    largest of those). VmHWM alone would not do: a process's high-water mark may date from
    before the block (start-up)."""

    def __init__(self, pids: list[int], interval: float = 0.02):
        self.pids = list(pids)
        self.interval = interval
        self.before: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        for pid in self.pids:
            rss = process_memory_kib(pid)
            if rss is not None:
                self.peak[pid] = max(self.peak.get(pid, 0), rss)

    def __enter__(self) -> RssSampler:
        self.before = {pid: rss for pid in self.pids if (rss := process_memory_kib(pid)) is not None}
        self.peak = dict(self.before)

        def run() -> None:
            while not self._stop.wait(self.interval):
                self._sample()

        self._thread = threading.Thread(target=run, daemon=True, name="rss-sampler")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self._sample()

    def growth_kib(self) -> int:
        return max((self.peak.get(pid, 0) - before for pid, before in self.before.items()), default=0)


# --- stub services: fixed-delay HTTP answers standing in for a backend ----------------------
# Used by profile-fanout and io-concurrency (bench/profile_fanout.py, bench/io_concurrency.py):
# the gateway in front of backends whose answer time is known exactly, so what the gateway
# adds (fan-out, threads, queueing) is all that differs from the ideal.


@dataclass(frozen=True)
class StubRoute:
    """One answer of a stub: after `delay` seconds, `status` with `body` (JSON-encoded)."""

    method: str
    path: str  # without the query string
    delay: float
    body: object = None
    status: int = 200


def _stub_process(services: dict[str, list[StubRoute]], ports) -> None:
    """In its own process: one threaded HTTP/1.1 server (keep-alive, a thread per connection,
    a deep listen backlog) per service, answering its routes after their delays."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024  # 64 connections opening at once must not meet a full backlog

        def handle_error(self, request, client_address) -> None:
            # wrk drops its connections mid-answer when a run ends: nothing to report.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    def handler_for(routes: list[StubRoute]):
        table = {
            (route.method, route.path): (route.delay, route.status, json.dumps(route.body).encode()) for route in routes
        }

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the body would wait for
            # the client's delayed ACK (40 ms on Linux).
            disable_nagle_algorithm = True

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                found = table.get((self.command, self.path.split("?", 1)[0]))
                delay, status, data = found if found else (0.0, 404, b'{"status": 404}')
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args) -> None:
                pass

        return Handler

    servers = [Server(("127.0.0.1", 0), handler_for(routes)) for routes in services.values()]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    ports.put({name: server.server_address[1] for name, server in zip(services, servers, strict=True)})
    for thread in threads:
        thread.join()


class StubServices:
    """Stub backends in a separate process (so they share no GIL with the load generator),
    started on `cpus`: `urls[name]` is each service's base URL."""

    def __init__(self, services: dict[str, list[StubRoute]], cpus: set[int] | None = None):
        self.services = services
        self.cpus = cpus
        self.urls: dict[str, str] = {}
        self._process = None

    def __enter__(self) -> StubServices:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        ports = context.Queue()
        with affinity(self.cpus):
            self._process = context.Process(target=_stub_process, args=(self.services, ports), daemon=True)
            self._process.start()
        try:
            self.urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.get(timeout=30).items()}
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()


# The person the stub identity vouches for at sign-in (profile-fanout, io-concurrency).
STUB_USER = {"id": "u-bench", "email": "bench@example.com", "name": "Bench Tester", "staff": False}
STUB_SIGN_IN = StubRoute("POST", "/internal/v1/credentials/verify", 0.0, STUB_USER)


@contextlib.contextmanager
def gateway_before_stubs(routes: dict[str, list[StubRoute]], options, cpus, env: dict[str, str] | None = None):
    """Stub backends (`routes`, on `cpus`, with identity's `STUB_SIGN_IN` among them) and the
    real gateway in front of them, signed in through `POST /api/v1/sessions`: yields
    (bench, stubs, the gateway's base URL, headers with the session's Bearer token)."""
    with StubServices(routes, cpus=cpus) as stubs:
        gateway_env = {f"{name.upper()}_URL": url for name, url in stubs.urls.items()} | (env or {})
        with BenchSuite(["gateway"], options, gateway_env) as bench:
            gateway = bench.web_url("gateway")
            status, body = request_json(
                f"{gateway}/api/v1/sessions", "POST", {"email": STUB_USER["email"], "password": "bench-password"}
            )
            if status != 201:
                raise RuntimeError(f"sign-in failed: {status} {body}")
            bearer = {"Authorization": f"Bearer {body['token']}", "Accept": "application/json"}
            yield bench, stubs, gateway, bearer


def sequential_latencies(
    url: str, headers: dict[str, str], duration: float, cpus: set[int] | None = None
) -> tuple[list[float], int]:
    """One keep-alive connection, one request after the other for `duration` s: every
    request's latency in ms (for percentiles over several runs), and the failures. At one
    connection the GIL costs nothing, so wrk is not needed for this."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    errors = 0
    with affinity(cpus):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        clock = time.perf_counter
        end = clock() + duration
        try:
            while clock() < end:
                began = clock()
                try:
                    conn.request("GET", target, headers=headers)
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    errors += 1
                    conn.close()
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                    continue
                if response.status >= 400:
                    errors += 1
                else:
                    latencies.append((clock() - began) * 1000)
        finally:
            conn.close()
    return latencies, errors
