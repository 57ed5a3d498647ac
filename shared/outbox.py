"""Writing events into the outbox, inside the caller's transaction; and the rows set aside.

A service never publishes from a request thread. `add_event` puts the envelope in the outbox
table in the same transaction as the change; the relay (`shared.relay`) publishes it after
commit. On PostgreSQL it also queues a NOTIFY, delivered at commit, that wakes the relay at once.

A row the relay cannot publish because of the row itself (pika cannot encode it, the broker
refuses that message) counts an attempt each time; with `HELD_AFTER_ATTEMPTS` it is **held**:
`published_at IS NULL AND attempts >= HELD_AFTER_ATTEMPTS`, with the reason in `last_error`.
The relay passes it by, so the rows behind it flow; operators see it beside the dead letters
(`held_events`) and `release` it to the relay once the cause is fixed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, insert, select, update
from sqlalchemy.orm import Session

from shared.events import new_envelope
from shared.logs import current_correlation_id
from shared.messaging import outbox

NOTIFY_CHANNEL = "cc_outbox"
HELD_AFTER_ATTEMPTS = 5
# What the relay claims, and what it has set aside.
PENDING = and_(outbox.c.published_at.is_(None), outbox.c.attempts < HELD_AFTER_ATTEMPTS)
HELD = and_(outbox.c.published_at.is_(None), outbox.c.attempts >= HELD_AFTER_ATTEMPTS)


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


@dataclass(frozen=True)
class HeldEvent:
    event_id: str
    event_type: str
    reason: str | None
    attempts: int
    created_at: datetime


def held_events(connection: Connection | Session) -> list[HeldEvent]:
    """Every held row, oldest first."""
    rows = connection.execute(
        select(outbox.c.event_id, outbox.c.routing_key, outbox.c.last_error, outbox.c.attempts, outbox.c.created_at)
        .where(HELD)
        .order_by(outbox.c.id)
    )
    return [HeldEvent(*row) for row in rows]


def release(session: Session, event_id: str) -> bool:
    """Give a held row back to the relay (its attempts start again); False if none is held with that id."""
    released = session.execute(update(outbox).where(HELD, outbox.c.event_id == event_id).values(attempts=0))
    if released.rowcount and session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(NOTIFY_CHANNEL, "")))  # wake the relay at commit
    return bool(released.rowcount)


def counts(connection: Connection | Session) -> tuple[int, int]:
    """(pending, held): unsent rows the relay will publish, and those it has set aside."""
    pending, held = connection.execute(
        select(
            func.coalesce(func.sum(case((PENDING, 1), else_=0)), 0),
            func.coalesce(func.sum(case((HELD, 1), else_=0)), 0),
        ).where(outbox.c.published_at.is_(None))
    ).one()
    return int(pending), int(held)
