"""The service's own database: engine, sessions and the unit of work.

SQLite (the one-machine default) runs in WAL mode with a busy timeout so that the web
workers, the relay and the consumer can share the file; PostgreSQL is what compose and CI run.

SQLite has no `SELECT ... FOR UPDATE`, and Python's sqlite3 runs reads outside any transaction
until the first write: a "lock, read, then write" would read unlocked. So on SQLite a locking
read that opens a transaction first takes the database's write lock (`BEGIN IMMEDIATE`, waiting
up to the busy timeout): what the transaction reads from then on stays true until it ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", _sqlite_lock_for_update)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def insert_or_skip(dialect_name: str, table, **conflict):
    """`INSERT ... ON CONFLICT DO NOTHING` for the dialect in use (PostgreSQL's or SQLite's: the
    plain `insert()` has no ON CONFLICT). A row whose unique key is taken is skipped without an
    error, so no savepoint is needed to carry on after it; a conflicting insert still waits for
    the transaction holding that key to end. `conflict`: e.g. `index_elements=[...]`."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(**conflict)


def upsert(dialect_name: str, table):
    """`INSERT` with `.on_conflict_do_update(...)` available, PostgreSQL's or SQLite's."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _sqlite_lock_for_update(_connection, cursor, _statement, _parameters, context, _executemany) -> None:
    """`BEGIN IMMEDIATE` before a `FOR UPDATE` read that would otherwise run outside a transaction.
    Not for `SKIP LOCKED` claims (relay, mailer, notifier): they only mark rows, and holding the
    write lock while they publish or send would stall every writer."""
    compiled = getattr(context, "compiled", None)
    for_update = getattr(getattr(compiled, "statement", None), "_for_update_arg", None)
    if for_update is None or for_update.skip_locked:
        return
    dbapi_connection = cursor.connection
    # A transaction sqlite3 opened already began with a write: it holds the write lock.
    if not dbapi_connection.in_transaction:
        # sqlite3 then sees a transaction open: no BEGIN of its own, and commit()/rollback() end it.
        dbapi_connection.execute("BEGIN IMMEDIATE")


class Database:
    """One per process: the engine and a session factory for the service's database."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # A transaction the current request runs in (`joined`): units of work become its savepoints.
        self._ambient: ContextVar[Connection | None] = ContextVar(f"ambient-{id(self)}", default=None)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextlib.contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back when it raises. Inside
        `joined(connection)` it is a savepoint of that connection's transaction instead: its
        changes are committed, or not, with that transaction."""
        connection = self._ambient.get()
        if connection is None:
            session = self.sessions()
        else:
            session = self.sessions(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextlib.contextmanager
    def joined(self, connection: Connection) -> Iterator[None]:
        """Every unit of work in this block (this thread or task) joins `connection`'s open
        transaction (`shared.idempotency`: an Idempotency-Key's claim and what the request
        creates commit together)."""
        token = self._ambient.set(connection)
        try:
            yield
        finally:
            self._ambient.reset(token)

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
