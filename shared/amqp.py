"""Connecting to RabbitMQ with pika: heartbeats on, and back-off when the broker is away.

A relay or consumer that lost the broker tries again soon and then about once a second
(`reconnect_backoff()`: capped at RECONNECT_LIMIT, with jitter so that the suite's processes
do not knock all at once), so it is back within about a second of the broker's return while a
broker that stays away sees one try a second from each. A try is short (CONNECT_TIMEOUT for
the TCP connect, HANDSHAKE_TIMEOUT for the whole AMQP opening): a broker that takes the
connection but does not answer yet (half up, starting) costs one short try, not a stall.
"""

from __future__ import annotations

import logging
import random
import threading

import pika
import pika.exceptions

log = logging.getLogger(__name__)

# What a lost or refused broker connection raises; worth reconnecting after.
CONNECTION_ERRORS = (
    pika.exceptions.AMQPError,  # the base of pika's own errors, channel and connection alike
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.ConnectionClosed,
    pika.exceptions.ChannelClosedByBroker,
    pika.exceptions.StreamLostError,
    pika.exceptions.ChannelWrongStateError,
    ConnectionError,
    OSError,
)


# Seconds: between reconnection tries at first, and at most (before jitter takes up to half off).
RECONNECT_FIRST = 0.1
RECONNECT_LIMIT = 1.0
# Seconds a connection try may take: the TCP connect, and the whole opening (TCP + AMQP handshake).
CONNECT_TIMEOUT = 2.0
HANDSHAKE_TIMEOUT = 4.0


def parameters(url: str, *, heartbeat: int = 30, connection_attempts: int = 1) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = 60
    params.connection_attempts = connection_attempts
    params.socket_timeout = CONNECT_TIMEOUT
    params.stack_timeout = HANDSHAKE_TIMEOUT
    params.client_properties = {"connection_name": threading.current_thread().name}
    return params


def connect(url: str, name: str) -> pika.BlockingConnection:
    params = parameters(url)
    params.client_properties = {"connection_name": name}
    try:
        return pika.BlockingConnection(params)
    except ValueError as error:
        # pika says ValueError when the peer drops the socket between the TCP connect and the
        # AMQP handshake (a broker going down, a cut link): a lost connection like any other.
        raise pika.exceptions.AMQPConnectionError(f"the connection was dropped while opening: {error}") from error


class Backoff:
    """Exponential back-off with jitter, reset after a success: each delay is the current step
    times a random factor in `jitter`; the step doubles up to `limit`."""

    def __init__(self, first: float = 0.2, limit: float = 10.0, jitter: tuple[float, float] = (0.8, 1.2)):
        self.first, self.limit, self.current, self.jitter = first, limit, first, jitter

    def next_delay(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.limit)
        return delay * random.uniform(*self.jitter)

    def reset(self) -> None:
        self.current = self.first


def reconnect_backoff() -> Backoff:
    """The back-off between tries to reach the broker again: 0.05–0.1 s first, then doubling,
    never over RECONNECT_LIMIT (the jitter only shortens a delay: 0.5–1 s once capped)."""
    return Backoff(first=RECONNECT_FIRST, limit=RECONNECT_LIMIT, jitter=(0.5, 1.0))


def broker_reachable(url: str) -> bool:
    try:
        params = parameters(url, heartbeat=0)
        params.socket_timeout = 2
        params.stack_timeout = 3
        pika.BlockingConnection(params).close()
        return True
    except Exception as error:  # any failure means "not ready", and readiness must not crash
        log.debug("broker not reachable: %s", error)
        return False


def persistent_copy(properties: pika.BasicProperties, headers: dict) -> pika.BasicProperties:
    """Properties for re-publishing a message (to a DLQ, or back from one) with new headers."""
    return pika.BasicProperties(
        message_id=properties.message_id,
        type=properties.type,
        correlation_id=properties.correlation_id,
        content_type=properties.content_type,
        delivery_mode=pika.DeliveryMode.Persistent,
        headers=headers,
    )
