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
from collections.abc import Callable
from urllib.parse import urlsplit

import pika
import pytest


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
