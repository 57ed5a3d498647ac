"""The idempotent consumer: applies each event once, whatever the broker redelivers.

For each message on its queue `<service>.events`:
1. parse and validate the envelope (a malformed message can never succeed: straight to the DLQ);
2. in one transaction, insert `(event id, consumer)` into `inbox` and run the handler; a
   duplicate delivery finds its row there and is acked with no effect;
3. commit, then ack. A crash before the ack means redelivery, which step 2 makes harmless.

The messages the broker has delivered already (up to the prefetch) are applied together: one
transaction, one commit, then one ack (`multiple`) for all of them. If anything in such a
batch fails, the transaction is rolled back (nothing of it was applied, nothing acked) and
its messages are applied one by one as above, so a failing message takes no batch-mate down
with it: the others are applied once, it alone is retried and dead-lettered.

A handler that raises is retried (the message is requeued) until it has failed
`MAX_DELIVERY_ATTEMPTS` times; then the message is copied to the DLQ with the reason in its
headers and acked, so the queue keeps flowing. The failures are counted by us, in the
service's database (`consumer_failures`), not by the broker: its delivery count also grows
with every crash of a consumer and every broker outage, which say nothing about the message
(its `x-delivery-limit`, far higher, only stops a message that kills the consumer each time).
The ack comes after the commit and outside the handler's error path: a connection lost
between the two is a reconnect, never a failure of the message. A database that is down is not the message's
fault: the consumer holds the message and waits for the database instead of burning attempts.

Handlers are declared per service (`<service>/handlers.py`: `HANDLERS = {type: function}`)
and receive `(session, event)`; they must tolerate events out of order (compare versions or
timestamps, never assume sequence).

A consumer of messages that are not event envelopes (licensing's partner inbox) reuses this
loop: it passes its own `name` and `queue` and overrides `handle(properties, body)`, which
must be idempotent by itself and raise `Poison` for a message that can never be applied; with
`max_batch = 1` its messages never go through the batch path.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pika
import pika.exceptions
from marshmallow import ValidationError
from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from shared import amqp, logs
from shared.config import Settings
from shared.db import Database, insert_or_skip, upsert
from shared.events import Event, UnknownEvent, parse_envelope
from shared.heartbeat import Heartbeat
from shared.messaging import consumer_failures, inbox
from shared.topology import Topology

log = logging.getLogger(__name__)

Handler = Callable[[Session, Event], None]

# How long the failure count of a message that went through in the end is kept.
FAILURES_KEPT = timedelta(days=7)


class Poison(Exception):
    """A message that can never be applied; it goes to the DLQ without retries."""


class EventConsumer:
    # How many delivered messages one transaction may apply (see the module's docstring).
    max_batch = 50

    def __init__(
        self,
        settings: Settings,
        handlers: dict[str, Handler],
        database: Database | None = None,
        prefetch: int = 20,
        *,
        name: str | None = None,
        queue: str | None = None,
    ):
        self.settings = settings
        # The consumer's name (inbox rows, logs, the DLQ headers) and the queue it works from:
        # by default the service and its `<service>.events`.
        self.name = name or settings.service
        self.handlers = handlers
        self.database = database or Database(settings.database_url)
        self.topology = Topology(settings.events_namespace)
        self.queue = queue or self.topology.queue(self.name)
        self.prefetch = prefetch
        # Built once, the same statement for every event (only the values change).
        self._inbox_insert = insert_or_skip(self.database.engine.dialect.name, inbox).returning(inbox.c.event_id)
        self.stopping = threading.Event()
        self._connection: pika.BlockingConnection | None = None
        self.heartbeat = Heartbeat(settings.heartbeat_file)

    # --- applying one event ---------------------------------------------------------------
    def handle(self, properties: pika.BasicProperties, body: bytes) -> None:
        """Apply one delivery. Raise Poison for a message that can never succeed, anything
        else for a failure worth retrying. Event consumers parse the envelope (`apply`)."""
        self.apply(body)

    def apply(self, body: bytes) -> bool:
        """Apply one message in its own transaction. True if applied, False if a duplicate."""
        return self.apply_batch([body])[0]

    def apply_batch(self, bodies: list[bytes]) -> list[bool]:
        """Apply messages in one transaction, in order; for each, True if applied, False if a
        duplicate. Raises if any of them fails, and then none is applied."""
        events = [self._event(body) for body in bodies]
        with self.database.unit_of_work() as session:
            applied = [self._apply_in(session, event) for event in events]
        for event, new in zip(events, applied, strict=True):
            if new:
                token = logs.correlation_id.set(event.correlation_id)
                log.info("event applied", extra={"event_id": event.id, "event_type": event.type})
                logs.correlation_id.reset(token)
        return applied

    def _event(self, body: bytes) -> Event:
        try:
            event = parse_envelope(body)
        except (ValidationError, UnknownEvent) as error:
            raise Poison(f"invalid message: {error}") from None
        if event.type not in self.handlers:
            raise Poison(f"{self.name} has no handler for {event.type}")
        return event

    def _apply_in(self, session: Session, event: Event) -> bool:
        token = logs.correlation_id.set(event.correlation_id)
        try:
            if not self._record_in_inbox(session, event):
                log.info("duplicate delivery ignored", extra={"event_id": event.id, "event_type": event.type})
                return False
            self.handlers[event.type](session, event)
            return True
        finally:
            logs.correlation_id.reset(token)

    def _record_in_inbox(self, session: Session, event: Event) -> bool:
        """The event's inbox row; False if it is there already. `ON CONFLICT DO NOTHING`
        (PostgreSQL, SQLite) instead of a savepoint around a failing INSERT: one round trip
        instead of three. A concurrent consumer of the same event waits here for the first
        one's transaction, then finds its row."""
        values = {
            "event_id": event.id,
            "consumer": self.name,
            "event_type": event.type,
            "processed_at": datetime.now(UTC),
        }
        return session.connection().execute(self._inbox_insert, values).first() is not None

    def _on_deliveries(self, channel, deliveries: list) -> None:
        """Apply what the broker delivered: together if possible, else one by one."""
        if len(deliveries) > 1:
            try:
                self.apply_batch([body for _method, _properties, body in deliveries])
            except Exception as error:
                # The one-by-one pass below logs the cause with its message.
                log.warning(
                    "a batch of %d messages failed (%s); applying them one by one",
                    len(deliveries),
                    type(error).__name__,
                )
            else:
                # Committed: ack all of them at once. Every earlier delivery on this channel
                # has been settled, so "multiple" covers exactly this batch.
                channel.basic_ack(deliveries[-1][0].delivery_tag, multiple=True)
                return
        for method, properties, body in deliveries:
            self.heartbeat.beat()  # each retry may pause: the loop is turning, not hanging
            if self.stopping.is_set():
                channel.basic_nack(method.delivery_tag, requeue=True)
            else:
                self._on_message(channel, method, properties, body)

    def _on_message(self, channel, method, properties, body: bytes) -> None:
        while True:
            try:
                self.handle(properties, body)
            except Poison as error:
                self._dead_letter(channel, method, properties, body, str(error))
                return
            except DBAPIError as error:
                if self._database_reachable():
                    failure = error
                    break
                # Our database is away: keep the message and wait for it rather than
                # spending the message's attempts on an outage.
                log.warning("database unavailable, holding the message: %s", error.orig)
                self._wait_for_database()
                if self.stopping.is_set():
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    return
            except Exception as error:  # a handler bug or bad data: counted, then DLQ
                failure = error
                break
            else:
                # Applied and committed. Settled outside the handler's error path: a connection
                # lost now is no failure of the message; it goes to run_forever, which
                # reconnects, and the redelivery is a duplicate the inbox recognises.
                channel.basic_ack(method.delivery_tag)
                return
        reason = f"{type(failure).__name__}: {failure}"
        failures = self._count_failure(properties, body, reason)
        log.error("handler failed (failure %d of %d)", failures, self.settings.max_delivery_attempts, exc_info=failure)
        if failures >= self.settings.max_delivery_attempts:
            self._dead_letter(channel, method, properties, body, f"failed {failures} times; last: {reason}")
            self._forget_failures(properties, body)
        else:
            # Give a transient cause a moment before the redelivery.
            self._connection.sleep(min(0.1 * 2 ** (failures - 1), 2.0))
            channel.basic_nack(method.delivery_tag, requeue=True)

    # --- the handler's failures, counted by us --------------------------------------------
    @staticmethod
    def _message_key(properties: pika.BasicProperties, body: bytes) -> str:
        """A redelivery of the same message has the same key; partners' message ids may
        repeat across partners, so the publisher's broker user is part of it."""
        digest = hashlib.sha256()
        for part in (properties.user_id or "", properties.message_id or ""):
            digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
        digest.update(body)
        return digest.hexdigest()

    def _count_failure(self, properties: pika.BasicProperties, body: bytes, reason: str) -> int:
        """One more handler failure of this message, in a transaction of its own (the handler's
        was rolled back); returns how many there have been. The broker's x-delivery-count is
        no measure: redeliveries after a crash or a broker outage count there too. If even
        this write fails, it is taken for a first failure: retried, never dead-lettered uncounted."""
        key = {"consumer": self.name, "message_key": self._message_key(properties, body)}
        now = datetime.now(UTC)
        table = consumer_failures
        statement = (
            upsert(self.database.engine.dialect.name, table)
            .values(**key, failures=1, last_error=reason[:2000], last_failed_at=now)
            .returning(table.c.failures)
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.consumer, table.c.message_key],
            set_={
                "failures": table.c.failures + 1,
                "last_error": statement.excluded.last_error,
                "last_failed_at": statement.excluded.last_failed_at,
            },
        )
        try:
            with self.database.unit_of_work() as session:
                return int(session.connection().execute(statement).scalar_one())
        except DBAPIError as error:
            log.warning("could not count the handler's failure: %s", error.orig)
            return 1

    def _forget_failures(self, properties: pika.BasicProperties, body: bytes) -> None:
        key = self._message_key(properties, body)
        try:
            with self.database.unit_of_work() as session:
                session.execute(
                    delete(consumer_failures).where(
                        consumer_failures.c.consumer == self.name, consumer_failures.c.message_key == key
                    )
                )
        except DBAPIError as error:
            log.warning("could not clear the failure count of a dead-lettered message: %s", error.orig)

    def forget_old_failures(self, older_than: timedelta = FAILURES_KEPT) -> int:
        """Counts of messages that failed and then went through are kept this long (a row
        costs nothing in the hot path: only a failure writes one), then purged at start."""
        with self.database.unit_of_work() as session:
            purged = session.execute(
                delete(consumer_failures).where(
                    consumer_failures.c.consumer == self.name,
                    consumer_failures.c.last_failed_at < datetime.now(UTC) - older_than,
                )
            )
            return purged.rowcount or 0

    def _dead_letter(self, channel, method, properties, body: bytes, reason: str) -> None:
        """Copy the message to our DLQ with the reason, then ack the original."""
        headers = dict(properties.headers or {})
        headers.update(
            {
                "x-failure-reason": reason[:1000],
                "x-failed-consumer": self.name,
                "x-original-routing-key": method.routing_key,
                "x-failed-at": datetime.now(UTC).isoformat(),
            }
        )
        if properties.user_id:
            # The copy cannot carry the publisher's broker-validated user_id (the broker would
            # refuse us publishing as another user), so keep it as a header.
            headers["x-original-user-id"] = properties.user_id
        channel.basic_publish(
            exchange=self.topology.dead_letter_exchange,
            routing_key=self.queue,
            body=body,
            properties=amqp.persistent_copy(properties, headers),
            mandatory=True,
        )
        channel.basic_ack(method.delivery_tag)
        log.error("message dead-lettered: %s", reason, extra={"event_id": properties.message_id})

    def _database_reachable(self) -> bool:
        try:
            self.database.ping()
            return True
        except Exception:
            return False

    def _wait_for_database(self) -> None:
        backoff = amqp.Backoff(first=0.2, limit=5.0)
        while not self.stopping.is_set():
            self.heartbeat.beat()  # waiting on purpose is not hanging
            try:
                self.database.ping()
                return
            except Exception:
                self._connection.sleep(backoff.next_delay())

    # --- the loop -------------------------------------------------------------------------
    def run_forever(self) -> None:
        backoff = amqp.Backoff()
        log.info("consumer %s started on %s", self.name, self.queue)
        try:
            self.forget_old_failures()
        except DBAPIError as error:  # a database still starting: the next start purges them
            log.warning("could not purge old failure counts: %s", error.orig)
        while not self.stopping.is_set():
            try:
                self._connection = amqp.connect(self.settings.amqp_url, f"{self.name}-consumer")
                channel = self._connection.channel()
                channel.confirm_delivery()  # our DLQ copies are confirmed before the ack
                self.topology.declare(channel)
                channel.basic_qos(prefetch_count=self.prefetch)
                backoff.reset()
                deliveries = channel.consume(self.queue, inactivity_timeout=0.5)
                for delivery in deliveries:
                    self.heartbeat.beat()
                    if self.stopping.is_set():
                        break
                    if delivery[0] is None:
                        continue
                    # Whatever else has arrived already joins it, without waiting for more.
                    batch = [delivery]
                    while len(batch) < self.max_batch and channel.get_waiting_message_count():
                        batch.append(next(deliveries))
                    self._on_deliveries(channel, batch)
                channel.cancel()
            except amqp.CONNECTION_ERRORS as error:
                self.heartbeat.beat()
                delay = backoff.next_delay()
                log.warning("broker connection lost (%s); reconnecting in %.1fs", error, delay)
                self.stopping.wait(delay)
            except Exception:
                # Whatever else went wrong (a broker error mid-ack, a bug), the process must
                # not end: unacked messages are redelivered after we reconnect.
                delay = backoff.next_delay()
                log.exception("consumer loop failed; reconnecting in %.1fs", delay)
                self.stopping.wait(delay)
            finally:
                self._close()
        log.info("consumer %s stopped", self.name)

    def _close(self) -> None:
        try:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
        except Exception:
            pass
        self._connection = None

    def stop(self, *_args) -> None:
        self.stopping.set()


def run(service: str, handlers: dict[str, Handler]) -> None:
    """Entry point body of `python -m <service>.consumer`."""
    logs.configure(f"{service}-consumer")
    consumer = EventConsumer(Settings.from_env(service), handlers)
    signal.signal(signal.SIGTERM, consumer.stop)
    signal.signal(signal.SIGINT, consumer.stop)
    consumer.run_forever()
