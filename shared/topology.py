"""RabbitMQ names and their declaration, derived from the event catalogue.

- `cc.events`: durable topic exchange for all domain events (routing key = event type); what
  no queue is bound for goes to its alternate exchange `cc.unrouted`, so `mandatory`
  publishing never loses an event nobody listens to yet.
- one durable quorum queue per consuming service, `<consumer>.events`, bound to the types the
  catalogue lists for it, dead-lettering into `cc.dead-letters` and from there into
  `<consumer>.events.dlq`. Which message is poison is the consumer's call: it counts the
  handler's own failures (shared/consumer.py) and dead-letters after `MAX_DELIVERY_ATTEMPTS`.
  The broker's `x-delivery-limit` counts every delivery, redeliveries after a consumer crash
  or a broker outage too, so it sits far above that: only the backstop against a message that
  kills its consumer process each time.
- `cc.partner-sales`: durable fanout exchange the partners' systems publish their sales to,
  each with a broker user of its own that may write to this exchange and nothing else (see
  the README); it feeds the quorum queue `licensing.partner-sales`, which dead-letters into
  `licensing.partner-sales.dlq` like the event queues do (`python -m licensing.partner_inbox`
  consumes it). Fanout, so a partner need not know any routing key.

Every process declares the whole topology when it connects (declarations are idempotent), so
a relay that starts before any consumer still publishes into queues that keep the events.
The names carry `EVENTS_NAMESPACE` as a prefix so test runs are isolated from each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pika.exceptions

from shared.events import catalogue

log = logging.getLogger(__name__)

# The broker gives up on a message after this many deliveries even if no consumer could
# record a failure (it crashed each time). Crashes and outages spend it too, so it is far
# above the consumer's own count of handler failures (MAX_DELIVERY_ATTEMPTS, 5 by default).
BROKER_DELIVERY_LIMIT = 100


@dataclass(frozen=True)
class Topology:
    namespace: str = ""

    def name(self, base: str) -> str:
        return f"{self.namespace}{base}"

    @property
    def events_exchange(self) -> str:
        return self.name("cc.events")

    @property
    def unrouted_exchange(self) -> str:
        return self.name("cc.unrouted")

    @property
    def unrouted_queue(self) -> str:
        return self.name("cc.unrouted")

    @property
    def dead_letter_exchange(self) -> str:
        return self.name("cc.dead-letters")

    @property
    def partner_sales_exchange(self) -> str:
        return self.name("cc.partner-sales")

    @property
    def partner_sales_queue(self) -> str:
        return self.name("licensing.partner-sales")

    def queue(self, consumer: str) -> str:
        return self.name(f"{consumer}.events")

    def dead_letter_queue(self, consumer: str) -> str:
        return self.dead_letter_queue_of(self.queue(consumer))

    @staticmethod
    def dead_letter_queue_of(queue: str) -> str:
        """Where a queue's dead letters go (bound to the dead-letter exchange by the queue's name)."""
        return queue + ".dlq"

    def consumers(self) -> dict[str, list[str]]:
        """consumer -> the routing keys its queue is bound to."""
        bindings: dict[str, list[str]] = {}
        for name, event in catalogue().items():
            for consumer in event.consumers:
                bindings.setdefault(consumer, []).append(name)
        return {consumer: sorted(keys) for consumer, keys in sorted(bindings.items())}

    def queue_arguments(self, consumer: str) -> dict:
        return self.dead_lettering_arguments(self.queue(consumer))

    def dead_lettering_arguments(self, queue: str) -> dict:
        return {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": queue,
            "x-delivery-limit": BROKER_DELIVERY_LIMIT,
        }

    def work_queues(self) -> dict[str, tuple[str, list[str]]]:
        """Every queue a consumer works from, each with a DLQ: queue -> (exchange, binding keys)."""
        queues = {
            self.queue(consumer): (self.events_exchange, routing_keys)
            for consumer, routing_keys in self.consumers().items()
        }
        queues[self.partner_sales_queue] = (self.partner_sales_exchange, [""])
        return queues

    def declare(self, channel) -> None:
        channel.exchange_declare(self.unrouted_exchange, "fanout", durable=True)
        channel.queue_declare(self.unrouted_queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(self.unrouted_queue, self.unrouted_exchange)
        channel.exchange_declare(
            self.events_exchange,
            "topic",
            durable=True,
            arguments={"alternate-exchange": self.unrouted_exchange},
        )
        channel.exchange_declare(self.dead_letter_exchange, "direct", durable=True)
        channel.exchange_declare(self.partner_sales_exchange, "fanout", durable=True)
        for queue, (exchange, routing_keys) in self.work_queues().items():
            self._declare_work_queue(channel, queue)
            for key in routing_keys:
                channel.queue_bind(queue, exchange, routing_key=key)
            dlq = self.dead_letter_queue_of(queue)
            channel.queue_declare(dlq, durable=True, arguments={"x-queue-type": "quorum"})
            channel.queue_bind(dlq, self.dead_letter_exchange, routing_key=queue)

    def _declare_work_queue(self, channel, queue: str) -> None:
        """Declared on a channel of its own: a queue made by an older version with another
        `x-delivery-limit` refuses the declaration (406) and closes the channel. Such a queue
        keeps working as it is (the consumer's own count still decides what is poison); the
        runbook says how to re-create it with the new limit."""
        side = channel.connection.channel()
        try:
            side.queue_declare(queue, durable=True, arguments=self.dead_lettering_arguments(queue))
        except pika.exceptions.ChannelClosedByBroker as refused:
            if refused.reply_code != 406 or "x-delivery-limit" not in str(refused.reply_text):
                raise
            log.warning(
                "queue %s keeps the delivery limit it was made with (%s); re-create it to get %d (see the runbook)",
                queue,
                refused.reply_text,
                BROKER_DELIVERY_LIMIT,
            )
        else:
            side.close()

    def delete(self, channel) -> None:
        """Remove everything `declare` made (tests clean up their namespace with it)."""
        for queue in self.work_queues():
            channel.queue_delete(queue)
            channel.queue_delete(self.dead_letter_queue_of(queue))
        channel.queue_delete(self.unrouted_queue)
        for exchange in (
            self.events_exchange,
            self.unrouted_exchange,
            self.dead_letter_exchange,
            self.partner_sales_exchange,
        ):
            channel.exchange_delete(exchange)

    def definitions(self) -> dict:
        """The same topology as a RabbitMQ definitions document (for compose's broker)."""
        vhost = "/"
        exchanges = [
            _exchange(self.unrouted_exchange, "fanout", {}),
            _exchange(self.events_exchange, "topic", {"alternate-exchange": self.unrouted_exchange}),
            _exchange(self.dead_letter_exchange, "direct", {}),
            _exchange(self.partner_sales_exchange, "fanout", {}),
        ]
        queues = [_queue(self.unrouted_queue, {"x-queue-type": "quorum"})]
        bindings = [_binding(self.unrouted_exchange, self.unrouted_queue, "")]
        for queue, (exchange, routing_keys) in self.work_queues().items():
            queues.append(_queue(queue, self.dead_lettering_arguments(queue)))
            bindings += [_binding(exchange, queue, key) for key in routing_keys]
            dlq = self.dead_letter_queue_of(queue)
            queues.append(_queue(dlq, {"x-queue-type": "quorum"}))
            bindings.append(_binding(self.dead_letter_exchange, dlq, queue))
        for item in exchanges + queues + bindings:
            item["vhost"] = vhost
        return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


def _exchange(name: str, kind: str, arguments: dict) -> dict:
    return {
        "name": name,
        "type": kind,
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": arguments,
    }


def _queue(name: str, arguments: dict) -> dict:
    return {"name": name, "durable": True, "auto_delete": False, "arguments": arguments}


def _binding(source: str, destination: str, routing_key: str) -> dict:
    return {
        "source": source,
        "destination": destination,
        "destination_type": "queue",
        "routing_key": routing_key,
        "arguments": {},
    }


if __name__ == "__main__":  # python -m shared.topology > deploy/rabbitmq/definitions.json
    import json

    print(json.dumps(Topology().definitions(), indent=2))
