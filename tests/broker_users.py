"""Real RabbitMQ users for tests of partners publishing over the broker: made with rabbitmqctl
as the README tells operators (with whatever permissions and tags a test asks for), deleted
afterwards; and the broker's management HTTP API, which licensing asks about a user before a
partner may publish as it.

The management plugin is enabled on the local broker if it does not answer yet
(`rabbitmq-plugins enable rabbitmq_management` works online, without restarting the broker),
so these tests never skip for want of it. Import the `broker_users` fixture where needed.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pytest
import urllib3

from shared.topology import Topology

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
MANAGEMENT_PORT = 15672


def _answers(url: str, user: str, password: str) -> bool:
    try:
        headers = urllib3.make_headers(basic_auth=f"{user}:{password}")
        response = urllib3.request("GET", f"{url}/api/overview", headers=headers, timeout=3, retries=False)
        return response.status == 200
    except urllib3.exceptions.HTTPError:
        return False


def local_management_api(amqp_url: str) -> str:
    """The local broker's management API URL, enabling the plugin first if it does not answer."""
    parts = urlsplit(amqp_url)
    user, password = unquote(parts.username or "guest"), unquote(parts.password or "guest")
    url = f"http://127.0.0.1:{MANAGEMENT_PORT}"
    if _answers(url, user, password):
        return url
    if parts.hostname not in LOCAL_HOSTS or shutil.which("rabbitmq-plugins") is None:
        pytest.fail(
            f"RabbitMQ's management API does not answer at {url}: enable the plugin on the broker at "
            f"{parts.hostname} (rabbitmq-plugins enable rabbitmq_management) or set RABBITMQ_MANAGEMENT_URL"
        )
    subprocess.run(["rabbitmq-plugins", "enable", "rabbitmq_management"], check=True, capture_output=True, timeout=120)
    deadline = time.monotonic() + 60
    while not _answers(url, user, password):
        if time.monotonic() > deadline:
            pytest.fail(f"enabled rabbitmq_management, but {url} still does not answer")
        time.sleep(0.5)
    return url


@dataclass(frozen=True)
class BrokerUser:
    name: str
    password: str


class BrokerUsers:
    """Factory of broker users on the local broker (rabbitmqctl), all deleted by `delete_all`."""

    def __init__(self, amqp_url: str):
        if shutil.which("rabbitmqctl") is None or urlsplit(amqp_url).hostname not in LOCAL_HOSTS:
            pytest.skip("needs rabbitmqctl for the local broker to make partners' broker users")
        self.vhost = unquote(urlsplit(amqp_url).path[1:]) or "/"
        self.made: list[str] = []

    @staticmethod
    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)

    def make(
        self,
        topology: Topology | None = None,
        *,
        configure: str = "^$",
        write: str | None = None,
        read: str = "^$",
        tags: tuple[str, ...] = (),
        topic_write: str | None = None,
    ) -> BrokerUser:
        """A user with these permissions in the vhost; by default what the README gives a
        partner: write to `topology`'s partner-sales exchange only, no tags."""
        user = BrokerUser(f"partner-{secrets.token_hex(4)}", secrets.token_urlsafe(16))
        # "--": a random password may begin with "-", which rabbitmqctl would take for an option
        self.ctl("add_user", "--", user.name, user.password)
        self.made.append(user.name)
        if write is None:
            write = f"^{re.escape((topology or Topology()).partner_sales_exchange)}$"
        self.ctl("set_permissions", "-p", self.vhost, user.name, configure, write, read)
        if tags:
            self.ctl("set_user_tags", user.name, *tags)
        if topic_write is not None:
            exchange = (topology or Topology()).partner_sales_exchange
            self.ctl("set_topic_permissions", "-p", self.vhost, user.name, exchange, topic_write, ".*")
        return user

    def delete_all(self) -> None:
        for name in self.made:
            subprocess.run(["rabbitmqctl", "-q", "delete_user", "--", name], capture_output=True, timeout=60)


@pytest.fixture
def broker_users(amqp_url):
    """Factory: real broker users (`.make(topology, ...)`), with the management API answering."""
    local_management_api(amqp_url)
    users = BrokerUsers(amqp_url)
    yield users
    users.delete_all()
