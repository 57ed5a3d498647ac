"""The whole suite as real processes (the Procfile's, as `make run` starts them) on free
ports, with PostgreSQL databases of its own and its own broker namespace."""

from __future__ import annotations

import pytest
import requests

from tests.support import SmtpInbox, running_suite

STAFF = {"email": "staff@example.com", "password": "staff-password-for-tests"}


@pytest.fixture(scope="module")
def mailbox():
    """The SMTP server the suite's mailer delivers to."""
    inbox = SmtpInbox().start()
    yield inbox
    inbox.stop()


@pytest.fixture(scope="module")
def suite(amqp_url, new_database, tmp_path_factory, mailbox):
    with running_suite(
        amqp_url, new_database, tmp_path_factory, "e2e", STAFF, SMTP_HOST="127.0.0.1", SMTP_PORT=str(mailbox.port)
    ) as suite:
        yield suite


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
