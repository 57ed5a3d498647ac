"""One suite of real processes (the Procfile's) for the whole folder, on PostgreSQL databases
of its own, with licensing's and the gateway's databases reached through proxies the tests can
cut.

Each test breaks one thing, undoes it, lets the system settle and reconciles. After each
test, whatever it left broken is put right (a process it stopped is started again, as
compose's restart policy would, the broker and the database link are restored) so that a
failing test does not take the next ones with it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy.engine import make_url

from tests.fault.world import PRODUCT, STAFF, World
from tests.support import BrokerControl, SmtpInbox, TcpProxy, running_suite


@pytest.fixture(scope="package")
def mailbox():
    inbox = SmtpInbox().start()
    yield inbox
    inbox.stop()


def _database_link(postgres_url: str) -> TcpProxy:
    parts = urlsplit(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    return TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()


@pytest.fixture(scope="package")
def licensing_link(postgres_url):
    """The TCP proxy between licensing (web, relay, consumer, partner inbox) and PostgreSQL."""
    proxy = _database_link(postgres_url)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="package")
def gateway_link(postgres_url):
    """The TCP proxy between the gateway (its session store) and PostgreSQL."""
    proxy = _database_link(postgres_url)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="package")
def suite(amqp_url, new_database, tmp_path_factory, mailbox, licensing_link, gateway_link):
    BrokerControl(amqp_url)  # the scenarios stop the broker or ask rabbitmqctl: skipped without it
    direct: dict[str, str] = {}
    links = {"licensing": licensing_link, "gateway": gateway_link}

    def database(component: str) -> str:
        url = new_database(component)
        direct[component] = url
        return links[component].url_for(url) if component in links else url

    with running_suite(
        amqp_url,
        database,
        tmp_path_factory,
        "fault",
        STAFF,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(mailbox.port),
        # The gateway gives a slow service this long; a partner's retry covers a timeout.
        UPSTREAM_TIMEOUT="10",
    ) as suite:
        suite.direct_database_urls = direct
        suite.licensing_link = licensing_link
        suite.gateway_link = gateway_link
        yield suite


@pytest.fixture(scope="package")
def world(suite, mailbox) -> World:
    gateway = suite.web_url("gateway")
    signed_in = requests.post(f"{gateway}/api/v1/sessions", json=STAFF, timeout=15)
    assert signed_in.status_code == 201, signed_in.text
    staff = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    product = requests.post(f"{gateway}/api/v1/admin/products", json=PRODUCT, headers=staff, timeout=15)
    assert product.status_code == 201, product.text
    partner = requests.post(
        f"{gateway}/api/v1/admin/partners", json={"name": "Software Novák s.r.o."}, headers=staff, timeout=15
    )
    assert partner.status_code == 201, partner.text
    return World(suite, gateway, staff, partner.json()["api_key"], mailbox)


@pytest.fixture
def broker(amqp_url):
    control = BrokerControl(amqp_url)
    yield control
    if control.stopped:
        control.start()


@pytest.fixture(autouse=True)
def put_right_what_a_test_broke(request):
    """After a test that used the suite: the faults undone and every process running again."""
    yield
    suite = request.node.funcargs.get("suite")
    if suite is None:
        return
    for link in (suite.licensing_link, suite.gateway_link):
        if link.is_cut:
            link.restore()
    _rename_back_entitlements(suite)
    for name in suite.entries:
        process = suite.processes.get(name)
        if process is None or process.popen.poll() is not None:
            suite.processes.pop(name, None)
            suite.start_one(name)


def _rename_back_entitlements(suite) -> None:
    import psycopg

    url = make_url(suite.direct_database_urls["distribution"]).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as db:
        broken = db.execute("SELECT to_regclass('entitlements_broken')").fetchone()[0]
        if broken is not None:
            db.execute("ALTER TABLE entitlements_broken RENAME TO entitlements")
