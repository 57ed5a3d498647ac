"""Helpers the tests share: waiting for a condition, running a relay or consumer in a thread,
stopping the real broker, reading a queue."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pika
import pytest
import requests
from werkzeug.serving import make_server


def wait_until(condition: Callable[[], object], timeout: float = 20, interval: float = 0.02, message: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


class Background:
    """Runs an OutboxRelay or EventConsumer (anything with run_forever/stop) in a thread."""

    def __init__(self, worker):
        self.worker = worker
        self.thread = threading.Thread(target=worker.run_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self.worker

    def __exit__(self, *exc):
        self.worker.stop()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), f"{self.worker} did not stop"


class BrokerControl:
    """Stops and starts the real RabbitMQ node (its application, as an outage would)."""

    def __init__(self, amqp_url: str):
        host = urlsplit(amqp_url).hostname
        if shutil.which("rabbitmqctl") is None or host not in ("localhost", "127.0.0.1"):
            pytest.skip("needs rabbitmqctl for the local broker to stop it")
        self.stopped = False

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
        self.stopped = True

    def start(self) -> None:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "await_startup"], check=True, capture_output=True)
        self.stopped = False


def publish_raw(amqp_url: str, exchange: str, routing_key: str, body: bytes, message_id: str | None = None) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish(
        exchange,
        routing_key,
        body,
        pika.BasicProperties(message_id=message_id, delivery_mode=2, content_type="application/json"),
        mandatory=True,
    )
    connection.close()


def drain(amqp_url: str, queue: str) -> list[tuple[dict, bytes]]:
    """Take every message off a queue: [(headers, body)]."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    messages = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        messages.append((properties.headers or {}, body))
    connection.close()
    return messages


def queue_depth(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    depth = connection.channel().queue_declare(queue, passive=True).method.message_count
    connection.close()
    return depth


def envelope_json(envelope: dict) -> bytes:
    return json.dumps(envelope, default=str).encode()


class SmtpInbox:
    """A real SMTP server for a test (aiosmtpd) that keeps what it receives in memory."""

    def __init__(self):
        import email
        import email.policy

        from aiosmtpd.controller import Controller

        from ops.suite import free_port

        self.messages: list = []
        self._email, self._policy = email, email.policy.default
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            self._email.message_from_bytes(envelope.original_content or envelope.content, policy=self._policy)
        )
        return "250 OK"

    def start(self) -> SmtpInbox:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def to(self, recipient: str) -> list:
        return [m for m in self.messages if recipient.lower() in str(m["To"]).lower()]

    def wait_for(self, recipient: str, count: int = 1, timeout: float = 15):
        """The `count`-th mail to `recipient` (waits for it)."""
        wait_until(lambda: len(self.to(recipient)) >= count, timeout=timeout, message=f"mail #{count} to {recipient}")
        return self.to(recipient)[count - 1]

    @staticmethod
    def link_token(message, page: str) -> str:
        """The token of the `{PUBLIC_URL}/<page>?token=...` link in a mail."""
        import re

        body = message.get_body(("plain",)).get_content()
        match = re.search(rf"/{re.escape(page)}\?token=([A-Za-z0-9_\-]+)", body)
        assert match, f"no /{page}?token= link in: {body}"
        return match.group(1)


def valid_company_id(seed: int) -> str:
    """A valid company ID (IČO) made from a number: seven digits and the mod-11 check digit."""
    digits = f"{seed % 10_000_000:07d}"
    total = sum(int(d) * w for d, w in zip(digits, range(8, 1, -1), strict=True))
    return digits + str((11 - total % 11) % 10)


@contextlib.contextmanager
def running_suite(amqp_url: str, new_database, tmp_path_factory, label: str, staff: dict, **extra_env: str):
    """Every Procfile process on free ports, on PostgreSQL databases and a broker namespace
    of its own; stopped and cleaned up afterwards."""
    from ops.suite import COMPONENTS, Suite
    from shared.topology import Topology
    from tests.conftest import TEST_SECRET

    namespace = f"{label}-{secrets.token_hex(4)}."
    env = {
        "AMQP_URL": amqp_url,
        "EVENTS_NAMESPACE": namespace,
        "INTERNAL_AUTH_SECRET": TEST_SECRET,
        "STAFF_EMAIL": staff["email"],
        "STAFF_PASSWORD": staff["password"],
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "8",
        "UPSTREAM_TIMEOUT": "3",
        "VAR_DIR": str(tmp_path_factory.mktemp("var")),
        **extra_env,
    }
    for component in COMPONENTS:
        env[f"{component.upper()}_DATABASE_URL"] = new_database(component)
    suite = Suite(Suite.local_env(env), log_dir=tmp_path_factory.mktemp("logs"))
    suite.namespace = namespace
    suite.migrate()
    suite.start()
    try:
        suite.wait_ready()
        yield suite
    finally:
        suite.stop_all()
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        Topology(namespace).delete(connection.channel())
        connection.close()


def membership_event(user_id: str, customer_number: str, rights=(), active: bool = True):
    """identity.membership.changed as a consumer receives it, happening now."""
    from datetime import UTC, datetime

    from shared.events import Event

    data = {"user_id": user_id, "customer_number": customer_number, "rights": list(rights), "active": active}
    return Event("", "identity.membership.changed", 1, datetime.now(UTC), "identity", None, data)


# --- fault tests: a database link that can be cut, queues as the broker counts them ----------
class TcpProxy:
    """A TCP forwarder on a free local port (e.g. between a service and PostgreSQL), with two
    threads per connection. `cut()` drops every open connection and, until `restore()`,
    resets each new one at once (the client gets an error straight away, as from a database
    host that refuses it); the port stays this proxy's throughout. `url_for(url)` is the
    given URL with this proxy as its host and port."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self._lock = threading.Lock()
        self._sockets: set = set()
        self._cut = threading.Event()
        self._stopped = threading.Event()
        self._listener = None
        self._accepting: threading.Thread | None = None
        self.port = 0
        self.connections = 0  # forwarded since the start
        self.refused = 0  # reset while cut

    def url_for(self, url: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def start(self) -> TcpProxy:
        import socket

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener, self.port = listener, listener.getsockname()[1]
        self._accepting = threading.Thread(target=self._accept, daemon=True, name="proxy-accept")
        self._accepting.start()
        return self

    def _accept(self) -> None:
        import socket
        import struct

        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut.is_set():
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
                client.close()
                self.refused += 1
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                late = self._cut.is_set()  # cut while we connected: it must not survive the cut
                if not late:
                    self._sockets.update((client, upstream))
                    self.connections += 1
            if late:
                client.close()
                upstream.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True, name="proxy-pump").start()

    def _pump(self, source, sink) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source)
            self._close(sink)

    def _close(self, sock) -> None:
        import socket

        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _drop_all(self) -> None:
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:
            self._close(sock)

    def cut(self) -> None:
        """Drop every open connection (no goodbye to either side) and refuse new ones."""
        self._cut.set()
        self._drop_all()

    def restore(self) -> None:
        self._cut.clear()

    @property
    def is_cut(self) -> bool:
        return self._cut.is_set()

    def stop(self) -> None:
        self._stopped.set()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        self._drop_all()


def queue_message_counts(queue: str) -> tuple[int, int]:
    """(ready, unacknowledged) messages of a queue, as the broker counts them (rabbitmqctl;
    the unacknowledged ones are those a consumer holds)."""
    columns = ["name", "messages_ready", "messages_unacknowledged"]
    listed = subprocess.run(
        ["rabbitmqctl", "list_queues", "-q", *columns, "--formatter", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    for row in json.loads(listed.stdout or "[]"):
        if row["name"] == queue:
            return int(row["messages_ready"]), int(row["messages_unacknowledged"])
    raise LookupError(f"no queue {queue}")


def publish_many(amqp_url: str, exchange: str, messages: list[tuple[str, bytes, str | None]]) -> None:
    """Publish (routing key, body, message id) in this order on one confirmed channel."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    for routing_key, body, message_id in messages:
        channel.basic_publish(
            exchange,
            routing_key,
            body,
            pika.BasicProperties(message_id=message_id, delivery_mode=2, content_type="application/json"),
            mandatory=True,
        )
    connection.close()


@contextlib.contextmanager
def read_only_database(url: str):
    """A psycopg connection to a service's PostgreSQL database that can read and never write."""
    import psycopg
    from sqlalchemy.engine import make_url

    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True, options="-c default_transaction_read_only=on") as connection:
        yield connection


@contextlib.contextmanager
def serving(wsgi_app) -> Iterator[str]:
    """Serve a WSGI app on a free 127.0.0.1 port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def ok(response: requests.Response) -> dict:
    """The JSON of a successful answer (an empty one: {}); anything else fails the test."""
    assert response.ok, f"{response.status_code} {response.text}"
    return response.json() if response.content else {}


def api_session(gateway: str, person: dict) -> requests.Session:
    """Someone signed in to the API with a bearer token (for setting data up quickly)."""
    http = requests.Session()
    token = ok(http.post(f"{gateway}/api/v1/sessions", json={"email": person["email"], "password": person["password"]}))
    http.headers["Authorization"] = "Bearer " + token["token"]
    return http


# --- Idempotency-Key (shared.idempotency) -----------------------------------------------------
def assert_idempotent_creation(
    send, count, request, other_request, caller, stranger, key="retry-1", stranger_request=None
) -> dict:
    """The checks every POST that creates something passes with an `Idempotency-Key`:
    `send(caller, (path, body), key)` answers as a test client does, `count()` counts what the
    POST creates. The same key and request again: the first answer again (status, body,
    `Content-Type`, `Location`), `Idempotent-Replayed: true`, nothing new; the same key with
    `other_request`: 422 idempotency-key-reused, nothing new; another caller with the same key
    (and `other_request`): a creation of its own. Returns the figures."""
    before = count()
    first = send(caller, request, key)
    assert 200 <= first.status_code < 300, (first.status_code, first.get_data(as_text=True))
    assert first.headers.get("Idempotent-Replayed") is None
    made = count()
    assert made == before + 1, (before, made)
    again = send(caller, request, key)
    assert (again.status_code, again.get_data()) == (first.status_code, first.get_data())
    assert again.headers["Idempotent-Replayed"] == "true"
    for name in ("Content-Type", "Location"):
        assert again.headers.get(name) == first.headers.get(name), name
    assert count() == made
    reused = send(caller, other_request, key)
    assert reused.status_code == 422 and reused.mimetype == "application/problem+json", reused.get_data()
    assert reused.get_json()["type"].endswith(":idempotency-key-reused")
    assert count() == made
    theirs = send(stranger, stranger_request or other_request, key)
    assert 200 <= theirs.status_code < 300, (theirs.status_code, theirs.get_data(as_text=True))
    assert theirs.headers.get("Idempotent-Replayed") is None
    assert count() == made + 1
    return {"first": first.status_code, "replayed": again.status_code, "reused": reused.status_code}
