"""Fixtures every test folder shares: the real broker and database, isolated per test.

RabbitMQ and PostgreSQL come from `AMQP_URL` and `POSTGRES_URL` (this machine's by default).
When neither answers and a Docker engine is reachable, testcontainers starts them. Each test
gets its own exchange/queue prefix (`EVENTS_NAMESPACE`) and its own databases, removed after.
"""

from __future__ import annotations

import os
import secrets
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pika
import psycopg
import pytest
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.topology import Topology

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TEST_SECRET = "test-secret-" + "x" * 40


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "localhost", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _docker_engine() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    url = os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL
    if _reachable(url, 5672) or "AMQP_URL" in os.environ or not _docker_engine():
        yield url
        return
    from testcontainers.rabbitmq import RabbitMqContainer

    with RabbitMqContainer("rabbitmq:3.13-management") as container:
        params = container.get_connection_params()
        yield f"amqp://guest:guest@{params.host}:{params.port}/"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """An admin URL (plain libpq form) for creating the tests' databases."""
    url = os.environ.get("POSTGRES_URL") or DEFAULT_POSTGRES_URL
    if _reachable(url, 5432) or "POSTGRES_URL" in os.environ or not _docker_engine():
        yield url
        return
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16", driver=None) as container:
        yield container.get_connection_url()


@pytest.fixture(scope="session")
def new_database(postgres_url):
    """Factory: a fresh PostgreSQL database, as a SQLAlchemy URL; all dropped at the end."""
    created: list[str] = []
    admin = make_url(postgres_url.replace("postgresql+psycopg://", "postgresql://"))

    def create(label: str = "db") -> str:
        name = f"cc_test_{label}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return admin.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)

    yield create
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as connection:
        for name in created:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def namespace(amqp_url) -> Iterator[str]:
    """A prefix for every exchange and queue this test touches; deleted afterwards."""
    prefix = f"test-{secrets.token_hex(4)}."
    yield prefix
    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        Topology(prefix).delete(connection.channel())
        connection.close()
    except pika.exceptions.AMQPError:
        pass


@pytest.fixture
def settings_for(amqp_url, namespace, tmp_path):
    """Factory: Settings for a service on the test's broker namespace and database URL."""

    def make(service: str, database_url: str | None = None, **overrides) -> Settings:
        return Settings.from_env(
            service,
            database_url=database_url or f"sqlite:///{tmp_path / (service + '.db')}",
            amqp_url=amqp_url,
            events_namespace=namespace,
            internal_auth_secret=TEST_SECRET,
            **overrides,
        )

    return make


@pytest.fixture
def smtp_inbox():
    """A real SMTP server on a free port; `.wait_for(recipient)` returns the parsed mail."""
    from tests.support import SmtpInbox

    inbox = SmtpInbox().start()
    yield inbox
    inbox.stop()
