"""Writing events: into the outbox, inside the caller's transaction.

A service never publishes from a request thread. `add_event` puts the envelope in the outbox
table in the same transaction as the change; the relay (`shared.relay`) publishes it after
commit. On PostgreSQL it also queues a NOTIFY, delivered at commit, that wakes the relay at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert
from sqlalchemy.orm import Session

from shared.events import new_envelope
from shared.logs import current_correlation_id
from shared.messaging import outbox

NOTIFY_CHANNEL = "cc_outbox"


def add_event(session: Session, type_: str, data: dict[str, Any], *, producer: str) -> str:
    """Record an event to be published when `session` commits; returns the event id."""
    envelope = new_envelope(type_, data, producer, current_correlation_id())
    row = insert(outbox).values(
        event_id=envelope["id"],
        routing_key=type_,
        body=json.dumps(envelope, ensure_ascii=False, default=str),
        correlation_id=envelope["correlation_id"],
        created_at=datetime.now(UTC),
    )
    if session.get_bind().dialect.name == "postgresql":
        # The NOTIFY rides on the INSERT (one round trip, not two); still sent only at commit.
        row = row.returning(func.pg_notify(NOTIFY_CHANNEL, ""))
    session.execute(row)
    return envelope["id"]
