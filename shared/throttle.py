"""Throttling of guessable or costly requests, counted in the service's own database.

A fixed window per key (e.g. `registration-client:203.0.113.7`): `hit()` counts one attempt
and says how long to wait once the limit is passed. Counting in the database (not in a
process) means every gunicorn worker and replica sees the same count. Services create the
table with `create_table(op)` in a migration.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.db import as_utc, utc_now
from shared.problems import Problem

metadata = MetaData()

throttles = Table(
    "throttles",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("window_started_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
)


def create_table(op) -> None:
    metadata.create_all(bind=op.get_bind(), checkfirst=False)


@dataclass(frozen=True)
class Limit:
    attempts: int
    window_seconds: int


def retry_after(session: Session, key: str, limit: Limit, now: datetime | None = None) -> int | None:
    """Seconds to wait if `key` is over its limit now (without counting an attempt)."""
    now = now or utc_now()
    row = session.execute(select(throttles).where(throttles.c.key == key)).one_or_none()
    if row is None:
        return None
    ends = as_utc(row.window_started_at) + timedelta(seconds=limit.window_seconds)
    if ends <= now or row.attempts < limit.attempts:
        return None
    return max(1, int((ends - now).total_seconds()) + 1)


def hit(session: Session, key: str, limit: Limit, now: datetime | None = None) -> None:
    """Count one (failed or costly) attempt for `key`."""
    now = now or utc_now()
    row = session.execute(select(throttles).where(throttles.c.key == key).with_for_update()).one_or_none()
    if row is None:
        try:
            with session.begin_nested():
                session.execute(throttles.insert().values(key=key, window_started_at=now, attempts=1))
            return
        except IntegrityError:  # another request counted first; count on top of it
            row = session.execute(select(throttles).where(throttles.c.key == key).with_for_update()).one()
    if as_utc(row.window_started_at) + timedelta(seconds=limit.window_seconds) <= now:
        session.execute(update(throttles).where(throttles.c.key == key).values(window_started_at=now, attempts=1))
    else:
        session.execute(update(throttles).where(throttles.c.key == key).values(attempts=throttles.c.attempts + 1))


def clear(session: Session, key: str) -> None:
    session.execute(delete(throttles).where(throttles.c.key == key))


def too_many(seconds: int) -> Problem:
    return Problem(
        429,
        "too-many-requests",
        "Too many attempts",
        f"Too many attempts. Try again in {seconds} seconds.",
        headers={"Retry-After": str(seconds)},
        retry_after=seconds,
    )


def limit_from_env(name: str, default: str) -> Limit:
    """A limit configured as `attempts/seconds` in the environment variable `name`."""
    attempts, _, seconds = (os.environ.get(name) or default).partition("/")
    return Limit(int(attempts), int(seconds or default.partition("/")[2]))


def refuse_if_throttled(session: Session, limits: Iterable[tuple[str, Limit]]) -> None:
    """A 429 problem with Retry-After when any of the keys is over its limit."""
    wait = max((retry_after(session, key, limit) or 0) for key, limit in limits)
    if wait:
        raise too_many(wait)


def count_failure(database, limits: Iterable[tuple[str, Limit]]) -> None:
    """Count a failed attempt against every key, in a transaction of its own: the failing
    request's transaction rolls back, the count must not."""
    with database.unit_of_work() as session:
        for key, limit in limits:
            hit(session, key, limit)
