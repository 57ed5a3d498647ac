"""Connecting to RabbitMQ with pika: heartbeats on, and back-off when the broker is away."""

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


def parameters(url: str, *, heartbeat: int = 30, connection_attempts: int = 1) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = 60
    params.connection_attempts = connection_attempts
    params.socket_timeout = 5
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
    """Exponential back-off with jitter, reset after a success."""

    def __init__(self, first: float = 0.2, limit: float = 10.0):
        self.first, self.limit, self.current = first, limit, first

    def next_delay(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.limit)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.current = self.first


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
