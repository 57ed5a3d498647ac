"""The tables every service's database carries for its events.

`outbox`: events written in the same transaction as the change that caused them; the relay
publishes them and marks them sent after the broker confirmed. `inbox`: one row per event a
consumer has applied, written in the effect's transaction, so a redelivery does nothing.
`consumer_failures`: how often a consumer's handler failed on a message. Only these failures
make a message poison; the broker's delivery count also counts crashes and outages.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, text

metadata = MetaData()

# SQLite only autoincrements an INTEGER PRIMARY KEY.
_id_type = BigInteger().with_variant(Integer(), "sqlite")

outbox = Table(
    "outbox",
    metadata,
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("routing_key", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("correlation_id", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
)
# The relay only ever looks for unsent rows; keep that index small.
Index(
    "ix_outbox_unsent",
    outbox.c.id,
    postgresql_where=outbox.c.published_at.is_(None),
    sqlite_where=outbox.c.published_at.is_(None),
)

inbox = Table(
    "inbox",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("consumer", String(100), primary_key=True),
    Column("event_type", String(200), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)

consumer_failures = Table(
    "consumer_failures",
    metadata,
    Column("consumer", String(100), primary_key=True),
    # sha256 over the publisher's broker user, the message id and the body (shared.consumer).
    Column("message_key", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_error", Text),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
)


# What each service's first migration made; later tables come with migrations of their own.
FIRST_TABLES = (outbox, inbox)


def create_tables(op) -> None:
    """Called from each service's first Alembic migration."""
    metadata.create_all(bind=op.get_bind(), tables=FIRST_TABLES, checkfirst=False)


def drop_tables(op) -> None:
    metadata.drop_all(bind=op.get_bind(), tables=FIRST_TABLES, checkfirst=False)


def create_consumer_failures(op) -> None:
    """Called from the migration that brought the handler-failure count to each service."""
    metadata.create_all(bind=op.get_bind(), tables=[consumer_failures], checkfirst=False)


def drop_consumer_failures(op) -> None:
    metadata.drop_all(bind=op.get_bind(), tables=[consumer_failures], checkfirst=False)
