"""Dead letters for operators: see what failed and why, and send it back once fixed.

`python -m ops.deadletters list [consumer]` prints each message in `<consumer>.events.dlq`
(event id, type, when and why it failed) and leaves it there; `python -m ops.deadletters
replay <consumer> [event-id ...]` puts the messages (all, or the ones named) back on that
consumer's own queue only, so other consumers never see the event twice, and removes them
from the DLQ once the broker confirmed the copy.

Events a service's relay held (it could not publish them, `shared.outbox`) are listed beside
them as `<service>.outbox` (`list` without a name shows every consumer and every service;
`list identity.outbox` one service's), and `replay identity.outbox [event-id ...]` releases
them to that relay, which publishes each once. Those are asked of the services' internal
endpoints (`shared.outbox_api`), with a token signed with `INTERNAL_AUTH_SECRET`, at
`<SERVICE>_URL`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.deadletters", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show dead letters and held events")
    listing.add_argument("consumer", nargs="?", help="a consumer, or <service>.outbox (default: all)")
    replaying = commands.add_parser("replay", help="send dead letters back to their consumer, or release held events")
    replaying.add_argument("consumer", help="a consumer, or <service>.outbox")
    replaying.add_argument("event_ids", nargs="*")
    args = parser.parse_args(argv)

    settings = Settings.from_env("ops")
    letters = DeadLetters(settings.amqp_url, settings.events_namespace)
    held = HeldEvents(settings, caller="ops")
    failed = False
    if args.command == "list":
        names = [args.consumer] if args.consumer else [*letters.consumers(), *(s + OUTBOX for s in held.services())]
        for name in names:
            service = held.service_of(name)
            if service is None:
                for letter in letters.list(name):
                    print(json.dumps(letter.__dict__, ensure_ascii=False))
                continue
            try:
                for event in held.list(service):
                    print(json.dumps({"consumer": event.consumer, **asdict(event)}, ensure_ascii=False))
            except ServiceUnavailable as error:
                print(f"cannot list {name}: {error}", file=sys.stderr)
                failed = True
    elif (service := held.service_of(args.consumer)) is not None:
        try:
            ids = args.event_ids or [event.event_id for event in held.list(service)]
            released = [event_id for event_id in ids if held.release(service, event_id)]
        except ServiceUnavailable as error:
            print(f"cannot release {args.consumer}: {error}", file=sys.stderr)
            return 1
        print(f"released {len(released)} held event(s) to {service}'s relay", file=sys.stderr)
    else:
        count = letters.replay(args.consumer, set(args.event_ids) or None)
        print(f"replayed {count} message(s) to {letters.topology.queue(args.consumer)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
