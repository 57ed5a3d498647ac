"""The whole suite as real processes (the Procfile's, as `make run` starts them) on free
ports, with PostgreSQL databases of its own and its own broker namespace."""

from __future__ import annotations

import secrets

import pika
import pytest
import requests

from ops.suite import COMPONENTS, Suite
from shared.topology import Topology
from tests.conftest import TEST_SECRET
from tests.support import SmtpInbox

STAFF = {"email": "staff@example.com", "password": "staff-password-for-tests"}


@pytest.fixture(scope="module")
def mailbox():
    """The SMTP server the suite's mailer delivers to."""
    inbox = SmtpInbox().start()
    yield inbox
    inbox.stop()


@pytest.fixture(scope="module")
def suite(amqp_url, new_database, tmp_path_factory, mailbox):
    namespace = f"e2e-{secrets.token_hex(4)}."
    env = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mailbox.port),
        "AMQP_URL": amqp_url,
        "EVENTS_NAMESPACE": namespace,
        "INTERNAL_AUTH_SECRET": TEST_SECRET,
        "STAFF_EMAIL": STAFF["email"],
        "STAFF_PASSWORD": STAFF["password"],
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "8",
        "UPSTREAM_TIMEOUT": "3",
        "VAR_DIR": str(tmp_path_factory.mktemp("var")),
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


@pytest.fixture(scope="module")
def gateway(suite) -> str:
    return suite.web_url("gateway")


@pytest.fixture(scope="module")
def staff_token(gateway) -> str:
    response = requests.post(f"{gateway}/api/v1/sessions", json=STAFF, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["token"]


@pytest.fixture(scope="module")
def staff(staff_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {staff_token}"}
