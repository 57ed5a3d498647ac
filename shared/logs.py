"""JSON log lines carrying the correlation id of the request or event being handled."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)

# The one rule for a correlation id that comes from outside (the X-Correlation-ID header, a
# message's properties, an event's envelope): 1 to 64 of these ASCII characters, which a UUID
# is. It is copied into log lines, outbox rows and AMQP properties (short strings, 255 bytes at
# most, where a longer one stopped the relay); anything else is replaced by a new UUID.
CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def valid_correlation_id(value: object) -> str | None:
    """`value` if it is a well-formed correlation id (see CORRELATION_ID), else None."""
    return value if isinstance(value, str) and CORRELATION_ID.fullmatch(value) else None


def correlation_id_or_new(value: object) -> str:
    """`value` if it is a well-formed correlation id, else a new one."""
    return valid_correlation_id(value) or str(uuid.uuid4())


def current_correlation_id() -> str:
    value = correlation_id.get()
    if value is None:
        value = str(uuid.uuid4())
        correlation_id.set(value)
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str):
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = correlation_id.get()
        if cid:
            line["correlation_id"] = cid
        for key in ("event_id", "event_type", "queue", "status", "path", "method"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(component: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.WARNING)
