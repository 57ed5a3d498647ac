"""The outbox relay: publishes what services wrote to their outbox, losing nothing.

Run one (or several, on PostgreSQL) per service: `python -m shared.relay <service>`.
It claims unsent rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so relays never publish the
same rows at once), publishes each with publisher confirms, persistent delivery and
`mandatory`, and marks a row sent only after the broker confirmed it. If the broker goes away
mid-batch, the confirmed rows are marked and the rest stay for the next attempt: an event may
be published twice (consumers are idempotent), never zero times. It sleeps until a NOTIFY
from a committing transaction (PostgreSQL) or a short poll (SQLite) says there is work.

One row never stops the others. A row that cannot be sent for what it holds counts an
attempt, says why in `last_error`, and the rows behind it are published in the same pass:
pika cannot encode it (a property or the routing key over AMQP's 255 bytes, a body that is not
UTF-8; it never can, so it is held at once), or the broker refuses that message (closes the
channel on it with 406, e.g. a body over its `max_message_size`; nacks it; returns it). With
`shared.outbox.HELD_AFTER_ATTEMPTS` attempts the row is held: no longer claimed, listed beside
the dead letters until an operator releases it. A lost broker connection is not the row's
fault: it counts nothing and the pass is retried with back-off.
"""

from __future__ import annotations

import logging
import select
import signal
import sys
import threading
from datetime import UTC, datetime

import pika
import pika.exceptions
import psycopg
from sqlalchemy import Connection, Row, bindparam, exists, update
from sqlalchemy import select as sql_select

from shared import amqp, logs
from shared.config import Settings
from shared.db import Database
from shared.heartbeat import Heartbeat
from shared.messaging import outbox
from shared.outbox import HELD_AFTER_ATTEMPTS, NOTIFY_CHANNEL, PENDING
from shared.topology import Topology

log = logging.getLogger(__name__)

# The broker closes the channel with this on a message it refuses for itself (too large, a bad property).
PRECONDITION_FAILED = 406

# Built once: a pass runs the same two statements every time, only the values change.
CLAIM = (
    sql_select(
        outbox.c.id,
        outbox.c.event_id,
        outbox.c.routing_key,
        outbox.c.body,
        outbox.c.correlation_id,
        outbox.c.attempts,
    )
    .where(PENDING)
    .order_by(outbox.c.id)
    .limit(bindparam("batch_size"))
    .with_for_update(skip_locked=True)
)
MARK_PUBLISHED = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(published_at=bindparam("published_at"))
)


class Unpublishable(Exception):
    """A row that can never be sent as it is (pika cannot encode it)."""


class OutboxRelay:
    def __init__(self, settings: Settings, database: Database | None = None, batch_size: int = 200):
        self.settings = settings
        self.database = database or Database(settings.database_url)
        self.topology = Topology(settings.events_namespace)
        self.batch_size = batch_size
        self.stopping = threading.Event()
        self._connection: pika.BlockingConnection | None = None
        self._channel = None
        self._listener: psycopg.Connection | None = None
        # One database connection kept between passes: a pass is then its transaction's
        # statements only, without a pool checkout and its liveness ping.
        self._db: Connection | None = None
        self.heartbeat = Heartbeat(settings.heartbeat_file)
        self.claimed = 0  # rows the last pass claimed

    # --- broker -------------------------------------------------------------------------
    def _open_channel(self):
        if self._channel is None or not self._channel.is_open:
            if self._connection is not None and self._connection.is_open:
                # The broker closed only the channel, on a message it refused: a new one will do.
                self._channel = self._connection.channel()
                self._channel.confirm_delivery()
                return self._channel
            self._close_broker()
            self._connection = amqp.connect(self.settings.amqp_url, f"{self.settings.service}-relay")
            channel = self._connection.channel()
            channel.confirm_delivery()
            self.topology.declare(channel)
            self._channel = channel
            log.info("relay connected to the broker")
        return self._channel

    def _close_broker(self) -> None:
        try:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
        except Exception:  # closing a dead connection may raise anything; we drop it anyway
            pass
        self._connection = self._channel = None

    # --- one pass -----------------------------------------------------------------------
    def _database_connection(self) -> Connection:
        if self._db is None or self._db.invalidated or self._db.closed:
            self._close_database()
            self._db = self.database.engine.connect()
        return self._db

    def _close_database(self) -> None:
        if self._db is not None:
            try:
                self._db.close()  # back to the pool, which drops it if it was found broken
            except Exception:
                pass
            self._db = None

    def publish_pending(self) -> int:
        """Publish one batch of unsent events; returns how many the broker confirmed."""
        published: list[int] = []
        refused: list[tuple[Row, str, bool]] = []  # (row, why, held at once)
        lost_broker: Exception | None = None
        connection = self._database_connection()
        with connection.begin():
            rows = connection.execute(CLAIM, {"batch_size": self.batch_size}).all()
            self.claimed = len(rows)  # a full batch: more may be waiting, refused rows or not
            if not rows:
                return 0
            try:
                for row in rows:
                    try:
                        self._publish(row)
                    except Unpublishable as error:
                        refused.append((row, str(error), True))
                    except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as error:
                        refused.append((row, f"the broker refused it: {type(error).__name__}: {error}", False))
                    except pika.exceptions.ChannelClosedByBroker as error:
                        if error.reply_code != PRECONDITION_FAILED:
                            raise
                        refused.append((row, f"the broker refused it: {error.reply_text}", False))
                    else:
                        published.append(row.id)  # basic_publish returned: the broker confirmed it
            except amqp.CONNECTION_ERRORS as error:
                log.warning("broker connection lost while publishing: %s", error)
                self._close_broker()
                lost_broker = error  # raised below, once the confirmed rows are marked and committed
            self._mark_published(connection, published)
            for row, reason, at_once in refused:
                self._mark_refused(connection, row, reason, at_once)
        if lost_broker is not None:
            raise lost_broker
        return len(published)

    def _publish(self, row: Row) -> None:
        """Publish one row and wait for the broker's confirm; `Unpublishable` if it cannot be encoded."""
        try:
            body = row.body.encode("utf-8")
        except UnicodeEncodeError as error:
            raise Unpublishable(f"cannot be encoded: its body is not UTF-8 ({error})") from None
        try:
            self._open_channel().basic_publish(
                exchange=self.topology.events_exchange,
                routing_key=row.routing_key,
                body=body,
                properties=self._properties(row),
                mandatory=True,
            )
        except pika.exceptions.ShortStringTooLong as error:
            # pika encodes the whole frame before sending any of it: nothing went out, the channel is fine.
            value = error.args[0] if error.args else b""
            raise Unpublishable(
                f"cannot be encoded: its routing key or a property is over AMQP's 255 bytes "
                f"({len(value)} bytes: {value[:40]!r}...)"
            ) from None

    def _properties(self, row: Row) -> pika.BasicProperties:
        return pika.BasicProperties(
            message_id=row.event_id,
            type=row.routing_key,
            app_id=self.settings.service,
            # A row from before the edge checked correlation ids may hold one that does not fit:
            # it goes without (the envelope keeps it) rather than not at all.
            correlation_id=logs.valid_correlation_id(row.correlation_id),
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
        )

    def _mark_published(self, connection, ids: list[int]) -> None:
        if ids:
            connection.execute(MARK_PUBLISHED, {"ids": ids, "published_at": datetime.now(UTC)})

    def _mark_refused(self, connection, row: Row, reason: str, at_once: bool) -> None:
        attempts = max(row.attempts + 1, HELD_AFTER_ATTEMPTS) if at_once else row.attempts + 1
        connection.execute(
            update(outbox).where(outbox.c.id == row.id).values(attempts=attempts, last_error=reason[:2000])
        )
        extra = {"event_id": row.event_id, "event_type": row.routing_key}
        if attempts >= HELD_AFTER_ATTEMPTS:
            log.error("event held after %d attempts (the others go on): %s", attempts, reason, extra=extra)
        else:
            log.warning("event not published (attempt %d), will retry: %s", attempts, reason, extra=extra)

    def has_pending(self) -> bool:
        """Whether rows wait to be published (held rows do not)."""
        with self.database.engine.connect() as connection:
            return bool(connection.execute(sql_select(exists().where(PENDING))).scalar())

    # --- waiting for work ---------------------------------------------------------------
    def _wait_for_work(self, timeout: float) -> None:
        """Block until a commit NOTIFYs us (PostgreSQL), or a short poll interval passes."""
        if not self.database.is_postgres:
            self._service_broker(self.settings.relay_poll_interval)
            return
        if self._listener is None:
            url = self.database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._listener = psycopg.connect(url, autocommit=True)
            self._listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        ready, _, _ = select.select([self._listener.fileno()], [], [], timeout)
        if ready:
            for _ in self._listener.notifies(timeout=0):
                pass  # drain: one pass publishes everything that is pending
        self._service_broker(0)

    def _service_broker(self, seconds: float) -> None:
        # Keep heartbeats flowing while idle; a sleep on the connection does that.
        if self._connection is not None and self._connection.is_open:
            self._connection.sleep(seconds)
        else:
            self.stopping.wait(seconds)

    def run_forever(self) -> None:
        backoff = amqp.reconnect_backoff()  # the broker back: publishing again within about a second
        log.info("relay for %s started", self.settings.service)
        while not self.stopping.is_set():
            self.heartbeat.beat()
            try:
                self._open_channel()  # declares the topology at once, even with nothing to send
                # A batch short of full was all there was: what commits later NOTIFYs us (and a
                # row refused by the broker is tried again within a second, until it is held).
                self.publish_pending()
                while self.claimed == self.batch_size and not self.stopping.is_set():
                    self.publish_pending()
                backoff.reset()
                self._wait_for_work(timeout=1.0)
            except Exception as error:
                # Broker or database away: nothing is marked that was not confirmed, so wait
                # and go again. Anything else is logged with its trace and retried the same way.
                delay = backoff.next_delay()
                log.warning("relay pass failed (%s: %s); retrying in %.1fs", type(error).__name__, error, delay)
                self._close_broker()
                self._close_listener()
                self._close_database()
                self.stopping.wait(delay)
        self._close_broker()
        self._close_listener()
        self._close_database()

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except Exception:
                pass
            self._listener = None

    def stop(self, *_args) -> None:
        self.stopping.set()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: python -m shared.relay <service>")
    service = argv[0]
    logs.configure(f"{service}-relay")
    relay = OutboxRelay(Settings.from_env(service))
    signal.signal(signal.SIGTERM, relay.stop)
    signal.signal(signal.SIGINT, relay.stop)
    relay.run_forever()


if __name__ == "__main__":
    main()
