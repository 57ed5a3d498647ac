"""Dead letters and held events, read and sent back: what operators see through
`python -m ops.deadletters`, the gateway's `GET /api/v1/admin/dead-letters` and licensing's
`dead-letters` command alike.

A dead letter waits in `<consumer>.events.dlq`; replaying puts it back on that consumer's own
queue only, so other consumers never see the event twice, and removes it from the DLQ once the
broker confirmed the copy. Events a service's relay held (`shared.outbox`) are `<service>.outbox`,
asked of the services' internal endpoints (`shared.outbox_api`) with a token signed with
`INTERNAL_AUTH_SECRET`, at `<SERVICE>_URL`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pika
import urllib3
from pika.exceptions import ChannelClosedByBroker

from shared import amqp, auth
from shared.auth import Principal
from shared.config import Settings
from shared.topology import Topology

# Headers the consumer adds when it dead-letters a message; a replayed message starts clean.
FAILURE_HEADERS = ("x-failure-reason", "x-failed-consumer", "x-failed-at", "x-original-routing-key", "x-delivery-count")
# How the partners' sales inbox is named among the consumers in a listing.
PARTNER_SALES = "licensing.partner-sales"
# How a service's held events are named there: `<service>.outbox`.
OUTBOX = ".outbox"


@dataclass(frozen=True)
class DeadLetter:
    consumer: str
    event_id: str | None
    event_type: str | None
    failed_at: str | None
    reason: str | None


class DeadLetters:
    def __init__(self, amqp_url: str, namespace: str = ""):
        self.amqp_url = amqp_url
        self.topology = Topology(namespace)

    def consumers(self) -> list[str]:
        return list(self.topology.consumers())

    def list(self, consumer: str) -> list[DeadLetter]:
        """Every dead letter of one consumer's events queue; nothing is removed."""
        return self._list(self.topology.dead_letter_queue(consumer), consumer)

    def list_partner_sales(self) -> list[DeadLetter]:
        """The partners' sales messages licensing's inbox refused. Listed, never replayed: a
        dead-lettered sale has lost its broker-checked user_id (the partner is then only in a
        header a partner could forge), so the inbox would refuse a copy; the partner sends it again."""
        return self._list(self.topology.dead_letter_queue_of(self.topology.partner_sales_queue), PARTNER_SALES)

    def _list(self, dead_letter_queue: str, consumer: str) -> list[DeadLetter]:
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        channel = connection.channel()
        letters = []
        try:
            while True:
                method, properties, _body = _get(channel, dead_letter_queue)
                if method is None:
                    break
                headers = properties.headers or {}
                letters.append(
                    DeadLetter(
                        consumer=consumer,
                        event_id=_text(properties.message_id),
                        event_type=_text(headers.get("x-original-routing-key") or properties.type),
                        failed_at=_text(headers.get("x-failed-at")),
                        reason=_text(headers.get("x-failure-reason")),
                    )
                )
        finally:
            # Unacked gets go back to the queue when the connection closes (the DLQs have no
            # delivery limit, so looking at them costs nothing).
            connection.close()
        return letters

    def replay(self, consumer: str, event_ids: set[str] | None = None) -> int:
        """Move dead letters (all, or those with the given ids) back to the consumer's queue."""
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        channel = connection.channel()
        channel.confirm_delivery()
        replayed = 0
        try:
            while True:
                method, properties, body = _get(channel, self.topology.dead_letter_queue(consumer))
                if method is None:
                    break
                if event_ids is not None and properties.message_id not in event_ids:
                    continue  # left unacked: it returns to the DLQ when we close
                headers = {k: v for k, v in (properties.headers or {}).items() if k not in FAILURE_HEADERS}
                channel.basic_publish(
                    exchange="",  # the default exchange: straight to this consumer's queue
                    routing_key=self.topology.queue(consumer),
                    body=body,
                    properties=amqp.persistent_copy(properties, headers),
                    mandatory=True,
                )
                channel.basic_ack(method.delivery_tag)
                replayed += 1
        finally:
            connection.close()
        return replayed


@dataclass(frozen=True)
class HeldEvent:
    producer: str
    event_id: str
    event_type: str
    reason: str | None
    attempts: int
    created_at: str

    @property
    def consumer(self) -> str:
        """Its name beside the consumers' queues in a listing."""
        return self.producer + OUTBOX


class ServiceUnavailable(Exception):
    def __init__(self, service: str, detail: str):
        super().__init__(f"{service}: {detail}")
        self.service = service


class HeldEvents:
    """The events each service's relay held, through the services' internal endpoints
    (`shared.outbox_api`): the gateway's dead-letter endpoints and this command line alike."""

    def __init__(self, settings: Settings, caller: str):
        self.urls = dict(settings.service_urls)
        self.secret = settings.internal_auth_secret
        self.caller = Principal(caller, kind="service")
        timeout = urllib3.Timeout(connect=min(1.0, settings.upstream_timeout), read=settings.upstream_timeout)
        self.http = urllib3.PoolManager(timeout=timeout, retries=False)

    def services(self) -> list[str]:
        return list(self.urls)

    def service_of(self, name: str) -> str | None:
        """The service a listing name such as `identity.outbox` stands for, or None."""
        service = name.removesuffix(OUTBOX)
        return service if name.endswith(OUTBOX) and service in self.urls else None

    def list(self, service: str) -> list[HeldEvent]:
        answer = self._call(service, "GET", "/internal/v1/outbox/held")
        return [
            HeldEvent(service, x["id"], x["type"], x.get("reason"), x["attempts"], x["created_at"])
            for x in answer.json()["items"]
        ]

    def release(self, service: str, event_id: str) -> bool:
        """Back to the service's relay; False if that service holds no event with this id."""
        return self._call(service, "POST", f"/internal/v1/outbox/held/{quote(event_id, safe='')}/release").status == 200

    def _call(self, service: str, method: str, path: str) -> urllib3.BaseHTTPResponse:
        if len(self.secret) < 32:
            raise ServiceUnavailable(service, "INTERNAL_AUTH_SECRET (32+ characters) is not set here")
        token = auth.issue(self.secret, service, self.caller)
        try:
            answer = self.http.request(
                method, self.urls[service] + path, headers={auth.HEADER: token, "Accept": "application/json"}
            )
        except urllib3.exceptions.HTTPError as error:
            raise ServiceUnavailable(service, str(error)) from None
        if answer.status not in (200, 404):
            raise ServiceUnavailable(
                service, f"it answered {answer.status}: {answer.data[:200].decode(errors='replace')}"
            )
        return answer


def _text(value) -> str | None:
    """A property or header as text: pika leaves one that is not UTF-8 (a partner's) as bytes."""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _get(channel, queue: str):
    """The next message of a DLQ, or (None, None, None) when it is empty or does not exist yet
    (no consumer has declared the topology since the broker started afresh: nothing failed)."""
    try:
        return channel.basic_get(queue)
    except ChannelClosedByBroker as error:
        if error.reply_code == 404:
            return None, None, None
        raise
