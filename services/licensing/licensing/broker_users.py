"""Which RabbitMQ user a partner may publish its sales as: checked with the broker before the
partner is registered with it (or changed to it).

The partner inbox takes a message as a sale of the partner whose `broker_user` is the
message's `user_id`, which the broker vouches for. So a partner's user must be able to do
nothing but publish to the partner-sales exchange: were it the application's own user (the
one in `AMQP_URL`), or any user with more rights, messages of the application or of whoever
else holds that user would become that partner's sales. Only the broker knows a user's tags
and permissions, so this asks RabbitMQ's management HTTP API (`RABBITMQ_MANAGEMENT_URL`,
default: port 15672 on the `AMQP_URL` host) with the application's credentials, and accepts
exactly what the README tells operators to make:

- no tags (`impersonator` would let it publish as anyone; `management` and up see the broker);
- permissions in the application's vhost only: configure and read matching nothing (`^$` or
  empty), write matching the partner-sales exchange (with `EVENTS_NAMESPACE`) and nothing else:
  `^name$` with the name written literally (its dots escaped);
- no topic permissions.

An unknown user is refused like one with too many rights. A management API that cannot be
asked (down, refusing the application's credentials, answering nonsense) refuses every
check: `BrokerUnavailable`, which the API answers with 503 and Retry-After (fail closed).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import urllib3

from shared.config import Settings
from shared.topology import Topology

log = logging.getLogger(__name__)

MANAGEMENT_PORT = 15672
TIMEOUT = urllib3.Timeout(connect=3.0, read=5.0)
_POOL = urllib3.PoolManager(maxsize=4, retries=False)
NOTHING = ("", "^$")
# A regular expression that matches one name only: ^, the name's characters (a character
# regular expressions treat specially only escaped), $.
_LITERAL = re.compile(r"\^((?:\\[^0-9A-Za-z]|[0-9A-Za-z_\-:/~])*)\$")


class BrokerUserRefused(ValueError):
    """This user may not be a partner's: the message says why."""


class BrokerUnavailable(Exception):
    """The management API could not be asked; nothing can be said about the user."""


def application_user(amqp_url: str) -> str:
    """The user the application itself signs in to the broker as."""
    return unquote(urlsplit(amqp_url).username or "guest")


def default_management_url(amqp_url: str) -> str:
    host = urlsplit(amqp_url).hostname or "localhost"
    return f"http://{f'[{host}]' if ':' in host else host}:{MANAGEMENT_PORT}"


def only_matches(pattern: str, name: str) -> bool:
    """Whether `pattern` (a RabbitMQ permission, a regular expression) matches `name` and
    nothing else."""
    literal = _LITERAL.fullmatch(pattern)
    return literal is not None and re.sub(r"\\(.)", r"\1", literal.group(1)) == name


@dataclass(frozen=True)
class BrokerUsers:
    management_url: str
    amqp_url: str
    topology: Topology

    @classmethod
    def from_settings(cls, settings: Settings) -> BrokerUsers:
        url = os.environ.get("RABBITMQ_MANAGEMENT_URL") or default_management_url(settings.amqp_url)
        return cls(url.rstrip("/"), settings.amqp_url, Topology(settings.events_namespace))

    @property
    def vhost(self) -> str:
        return unquote(urlsplit(self.amqp_url).path[1:]) or "/"

    def check_partner_user(self, name: str) -> None:
        """Raises BrokerUserRefused unless `name` may publish partners' sales and nothing else;
        BrokerUnavailable when the broker cannot be asked."""
        if name == application_user(self.amqp_url):
            raise BrokerUserRefused(f"{name!r} is the application's own broker user; make one for the partner.")
        user = quote(name, safe="")
        found = self._get(f"/api/users/{user}")
        if found is None:
            raise BrokerUserRefused(f"No such user on the broker: {name!r}. Make it first (see the README).")
        if not isinstance(found, dict):
            raise BrokerUnavailable("the management API answered something that is not a user")
        tags = found.get("tags") or []
        tags = [tag for tag in (tags.split(",") if isinstance(tags, str) else tags) if tag]
        if tags:
            raise BrokerUserRefused(f"{name!r} has the tags {', '.join(map(str, tags))}; a partner's user has none.")
        permissions = self._get(f"/api/users/{user}/permissions") or []
        exchange = self.topology.partner_sales_exchange
        wanted = f"configure '^$', write only '{exchange}', read '^$' in the vhost {self.vhost!r}"
        if not (
            isinstance(permissions, list)
            and len(permissions) == 1
            and permissions[0].get("vhost") == self.vhost
            and permissions[0].get("configure") in NOTHING
            and permissions[0].get("read") in NOTHING
            and only_matches(str(permissions[0].get("write")), exchange)
        ):
            raise BrokerUserRefused(f"{name!r} has other permissions than a partner's user ({wanted}).")
        if self._get(f"/api/users/{user}/topic-permissions"):
            raise BrokerUserRefused(f"{name!r} has topic permissions; a partner's user has none.")

    def _get(self, path: str):
        """The JSON the management API answers, None for a 404."""
        parts = urlsplit(self.amqp_url)
        credentials = f"{application_user(self.amqp_url)}:{unquote(parts.password or 'guest')}"
        try:
            response = _POOL.request(
                "GET",
                self.management_url + path,
                headers=urllib3.make_headers(basic_auth=credentials),
                timeout=TIMEOUT,
            )
        except urllib3.exceptions.HTTPError as error:
            log.warning("RabbitMQ management API unreachable at %s: %s", self.management_url, error)
            raise BrokerUnavailable(str(error)) from None
        if response.status == 404:
            return None
        if response.status != 200:
            # 401/403: the application's user may not ask (it needs the administrator tag).
            log.warning("RabbitMQ management API answered %s to %s", response.status, path)
            raise BrokerUnavailable(f"the management API answered {response.status}")
        try:
            return json.loads(response.data)
        except ValueError:
            raise BrokerUnavailable("the management API answered something that is not JSON") from None
