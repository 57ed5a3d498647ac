"""The outbox relay: publishes what services wrote to their outbox, losing nothing.

Run one (or several, on PostgreSQL) per service: `python -m shared.relay <service>`.
It claims unsent rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so relays never publish the
same rows at once), publishes each with publisher confirms, persistent delivery and
`mandatory`, and marks a row sent only after the broker confirmed it. If the broker goes away
mid-batch, the confirmed rows are marked and the rest stay for the next attempt: an event may
be published twice (consumers are idempotent), never zero times. It sleeps until a NOTIFY
from a committing transaction (PostgreSQL) or a short poll (SQLite) says there is work.
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
from sqlalchemy import Connection, bindparam, exists, update
from sqlalchemy import select as sql_select

from shared import amqp, logs
from shared.config import Settings
from shared.db import Database
from shared.heartbeat import Heartbeat
from shared.messaging import outbox
from shared.outbox import NOTIFY_CHANNEL
from shared.topology import Topology

log = logging.getLogger(__name__)

# Built once: a pass runs the same two statements every time, only the values change.
CLAIM = (
    sql_select(outbox.c.id, outbox.c.event_id, outbox.c.routing_key, outbox.c.body, outbox.c.correlation_id)
    .where(outbox.c.published_at.is_(None))
    .order_by(outbox.c.id)
    .limit(bindparam("batch_size"))
    .with_for_update(skip_locked=True)
)
MARK_PUBLISHED = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(published_at=bindparam("published_at"))
)


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

    # --- broker -------------------------------------------------------------------------
    def _open_channel(self):
        if self._channel is None or not self._channel.is_open:
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
        lost_broker: Exception | None = None
        connection = self._database_connection()
        with connection.begin():
            rows = connection.execute(CLAIM, {"batch_size": self.batch_size}).all()
            if not rows:
                return 0
            try:
                channel = self._open_channel()
                for row in rows:
                    channel.basic_publish(
                        exchange=self.topology.events_exchange,
                        routing_key=row.routing_key,
                        body=row.body.encode("utf-8"),
                        properties=pika.BasicProperties(
                            message_id=row.event_id,
                            type=row.routing_key,
                            app_id=self.settings.service,
                            correlation_id=row.correlation_id,
                            content_type="application/json",
                            delivery_mode=pika.DeliveryMode.Persistent,
                        ),
                        mandatory=True,
                    )
                    published.append(row.id)  # basic_publish returned: the broker confirmed it
            except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as error:
                log.error("broker refused an event, will retry: %s", error)
                self._mark_failed(connection, rows[len(published)].id, str(error))
            except amqp.CONNECTION_ERRORS as error:
                log.warning("broker connection lost while publishing: %s", error)
                self._close_broker()
                lost_broker = error  # raised below, once the confirmed rows are marked and committed
            self._mark_published(connection, published)
        if lost_broker is not None:
            raise lost_broker
        return len(published)

    def _mark_published(self, connection, ids: list[int]) -> None:
        if ids:
            connection.execute(MARK_PUBLISHED, {"ids": ids, "published_at": datetime.now(UTC)})

    def _mark_failed(self, connection, row_id: int, error: str) -> None:
        connection.execute(
            update(outbox).where(outbox.c.id == row_id).values(attempts=outbox.c.attempts + 1, last_error=error)
        )

    def has_pending(self) -> bool:
        with self.database.engine.connect() as connection:
            return bool(connection.execute(sql_select(exists().where(outbox.c.published_at.is_(None)))).scalar())

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
        backoff = amqp.Backoff()
        log.info("relay for %s started", self.settings.service)
        while not self.stopping.is_set():
            self.heartbeat.beat()
            try:
                self._open_channel()  # declares the topology at once, even with nothing to send
                # A batch short of full was all there was: what commits later NOTIFYs us (and a
                # row left unsent, e.g. refused by the broker, is tried again within a second).
                while self.publish_pending() == self.batch_size and not self.stopping.is_set():
                    pass
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
