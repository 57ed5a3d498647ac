"""Dead letters for operators: see what failed and why, and send it back once fixed.

`python -m ops.deadletters list [consumer]` prints each message in `<consumer>.events.dlq`
(event id, type, when and why it failed) and leaves it there; `python -m ops.deadletters
replay <consumer> [event-id ...]` puts the messages (all, or the ones named) back on that
consumer's own queue only, so other consumers never see the event twice, and removes them
from the DLQ once the broker confirmed the copy.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import pika
from pika.exceptions import ChannelClosedByBroker

from shared import amqp
from shared.config import Settings
from shared.topology import Topology

# Headers the consumer adds when it dead-letters a message; a replayed message starts clean.
FAILURE_HEADERS = ("x-failure-reason", "x-failed-consumer", "x-failed-at", "x-original-routing-key", "x-delivery-count")
# How the partners' sales inbox is named among the consumers in a listing.
PARTNER_SALES = "licensing.partner-sales"


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
                        event_id=properties.message_id,
                        event_type=headers.get("x-original-routing-key") or properties.type,
                        failed_at=headers.get("x-failed-at"),
                        reason=headers.get("x-failure-reason"),
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


def _get(channel, queue: str):
    """The next message of a DLQ, or (None, None, None) when it is empty or does not exist yet
    (no consumer has declared the topology since the broker started afresh: nothing failed)."""
    try:
        return channel.basic_get(queue)
    except ChannelClosedByBroker as error:
        if error.reply_code == 404:
            return None, None, None
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ops.deadletters", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show dead letters")
    listing.add_argument("consumer", nargs="?")
    replaying = commands.add_parser("replay", help="send dead letters back to their consumer")
    replaying.add_argument("consumer")
    replaying.add_argument("event_ids", nargs="*")
    args = parser.parse_args(argv)

    settings = Settings.from_env("ops")
    letters = DeadLetters(settings.amqp_url, settings.events_namespace)
    if args.command == "list":
        for consumer in [args.consumer] if args.consumer else letters.consumers():
            for letter in letters.list(consumer):
                print(json.dumps(letter.__dict__, ensure_ascii=False))
    else:
        count = letters.replay(args.consumer, set(args.event_ids) or None)
        print(f"replayed {count} message(s) to {letters.topology.queue(args.consumer)}", file=sys.stderr)


if __name__ == "__main__":
    main()
