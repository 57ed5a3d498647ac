"""`Idempotency-Key` on every POST that creates something (api.md, "Retries (every write)").

A client that got no answer (the gateway's `504`: the outcome is unknown) sends the request
again with the same key. The same caller with the same key and the same request within
`LIFETIME` gets the first answer again, with `Idempotent-Replayed: true`, and nothing new is
made; the same key with another request is a `422` (`idempotency-key-reused`). Without the
header a request behaves as it always did. A password reset and an invitation's acceptance take
one too: the portal's forms send theirs (a double click then mails once, joins once).

One table, `idempotency_keys`, in every service's database (created by a migration like the
outbox), keyed by (caller, key). The caller is who the gateway signed (`shared.auth`):
`user:<id>`, `service:<subject>`, or `anonymous:<client address>`, so two callers never meet.
The request's fingerprint is an HMAC-SHA256 (with the service's secret: a body may hold a
password) over the method, the path with its query, and the raw body.

The claim and the creation are one transaction. `@idempotent` (outermost on the view) opens
it, inserts the key's row with `INSERT ... ON CONFLICT DO NOTHING` (on PostgreSQL a second
request with the same key waits there until the first one's transaction ends, then sees its
row; on SQLite the row takes the database's write lock), and runs the whole view with every
`database().unit_of_work()` joined to that transaction as a savepoint (`Database.joined`).
A `2xx` answer is stored on the row (status, body sealed with the service's secret as it may
hold a secret shown once, `Content-Type` and `Location`) and committed with what the view
made. Any other answer, or an exception, gives the key back: its row is deleted and what the
view's own units of work committed is kept, as without a key (a failed attempt's throttle
count, for one, must stay); what they rolled back stays rolled back. A row older than
`LIFETIME` does not replay: it is replaced. Every claim also deletes up to `PURGE_BATCH`
expired rows (oldest first, skipping rows another transaction holds).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app, request
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
    tuple_,
)
from sqlalchemy.engine import Connection

from shared.auth import current_principal
from shared.db import as_utc, insert_or_skip, utc_now
from shared.problems import Problem

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
LIFETIME = timedelta(hours=24)
PURGE_BATCH = 100
# What of an answer a replay repeats besides its status and body.
KEPT_HEADERS = ("Content-Type", "Location")
KEY_PATTERN = re.compile(r"[\x20-\x7e]{1,200}")  # printable ASCII, 1-200 characters

metadata = MetaData()

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("caller", String(300), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    # The answer kept for replays; null only inside the claim's own transaction.
    Column("status", Integer),
    Column("body", LargeBinary),
    Column("headers", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)


def create_table(op) -> None:
    """Called from a migration of each service."""
    metadata.create_all(bind=op.get_bind(), checkfirst=False)


def drop_table(op) -> None:
    metadata.drop_all(bind=op.get_bind(), checkfirst=False)


# --- the request ----------------------------------------------------------------------------
def caller() -> str:
    """Whose keys these are: the signed caller, or an unsigned one by its address."""
    principal = current_principal()
    if principal is not None and principal.kind in ("user", "service"):
        return f"{principal.kind}:{principal.subject}"
    address = (principal.client if principal is not None else None) or request.remote_addr or "unknown"
    return f"anonymous:{address}"


def request_key() -> str | None:
    """The request's Idempotency-Key, None without one; a 400 problem for one we cannot keep."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not KEY_PATTERN.fullmatch(key):
        raise Problem(
            400,
            "idempotency-key-invalid",
            "Invalid Idempotency-Key",
            "An Idempotency-Key has 1 to 200 printable ASCII characters.",
        )
    return key


def fingerprint(secret: str) -> str:
    """The request as far as a replay must match it: method, path with query, raw body."""
    target = request.path + (f"?{request.query_string.decode('latin-1')}" if request.query_string else "")
    message = b"\0".join((request.method.encode(), target.encode(), request.get_data(cache=True)))
    return hmac.new(f"idempotency:{secret}".encode(), message, hashlib.sha256).hexdigest()


def reused() -> Problem:
    message = "This Idempotency-Key was used with another request. Send a new key for a new request."
    return Problem(
        422,
        "idempotency-key-reused",
        "Idempotency-Key reused",
        message,
        errors=[{"field": HEADER, "message": message}],
    )


# --- sealed answers -------------------------------------------------------------------------
# An answer may hold a secret shown once (a partner's new API key: licensing keeps only its
# SHA-256): what is kept for replays is encrypted and authenticated (cryptography's Fernet,
# its key derived from the service's secret with HKDF), so a read of the database or of a
# backup learns nothing from it.
def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"customer-center idempotency answers")
    return Fernet(base64.urlsafe_b64encode(key.derive(secret.encode())))


def seal(secret: str, plain: bytes) -> bytes:
    return _fernet(secret).encrypt(plain)


def unseal(secret: str, data: bytes | None) -> bytes | None:
    """The sealed answer, or None for one sealed with another secret (or altered)."""
    if not data:
        return None
    try:
        return _fernet(secret).decrypt(bytes(data))
    except InvalidToken:
        return None


# --- the table ------------------------------------------------------------------------------
def purge(connection: Connection, now: datetime | None = None, batch: int = PURGE_BATCH) -> int:
    """Delete up to `batch` rows past their lifetime, oldest first; how many went."""
    cutoff = (now or utc_now()) - LIFETIME
    table = idempotency_keys
    expired = (
        select(table.c.caller, table.c.key)
        .where(table.c.created_at < cutoff)
        .order_by(table.c.created_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    return connection.execute(delete(table).where(tuple_(table.c.caller, table.c.key).in_(expired))).rowcount


@dataclass(frozen=True)
class Earlier:
    """The answer kept for an earlier request with the key."""

    fingerprint: str
    status: int
    body: bytes
    headers: dict[str, str]


def claim(
    connection: Connection, who: str, key: str, print_: str, secret: str, now: datetime | None = None
) -> Earlier | None:
    """Take the key for this request in `connection`'s transaction: None when it is ours now,
    else the earlier request's answer (committed, within its lifetime). A row whose answer
    cannot be unsealed (the secret changed) counts as expired."""
    now = now or utc_now()
    table = idempotency_keys
    this = (table.c.caller == who) & (table.c.key == key)
    purge(connection, now)
    new_row = (
        insert_or_skip(connection.dialect.name, table, index_elements=["caller", "key"])
        .values(caller=who, key=key, fingerprint=print_, created_at=now)
        .returning(table.c.key)
    )
    for _ in range(3):
        if connection.execute(new_row).first() is not None:
            return None
        earlier = connection.execute(select(table).where(this)).one_or_none()
        if earlier is None:
            continue  # given back or purged since the insert: try again
        body = unseal(secret, earlier.body) if earlier.status is not None else None
        if body is not None and as_utc(earlier.created_at) + LIFETIME > now:
            return Earlier(earlier.fingerprint, earlier.status, body, json.loads(earlier.headers or "{}"))
        connection.execute(delete(table).where(this))  # expired: it is replaced
    raise RuntimeError(f"could not claim Idempotency-Key {key!r}")


def record(connection: Connection, who: str, key: str, response, secret: str) -> None:
    kept = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
    connection.execute(
        idempotency_keys.update()
        .where((idempotency_keys.c.caller == who) & (idempotency_keys.c.key == key))
        .values(status=response.status_code, body=seal(secret, response.get_data()), headers=json.dumps(kept))
    )


def replay(earlier: Earlier):
    response = current_app.response_class(earlier.body, status=earlier.status)
    for name, value in earlier.headers.items():
        response.headers[name] = value
    response.headers[REPLAYED] = "true"
    return response


def _give_back(connection: Connection, transaction, who: str, key: str) -> None:
    """The key is free again; what the view committed stays, as it would without a key."""
    try:
        connection.execute(
            delete(idempotency_keys).where((idempotency_keys.c.caller == who) & (idempotency_keys.c.key == key))
        )
        transaction.commit()
    except Exception:
        log.exception("could not give back Idempotency-Key %r: rolling back", key)
        if transaction.is_active:
            transaction.rollback()


# --- the decorator --------------------------------------------------------------------------
OPENAPI_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": "The same key with the same request within 24 h answers the first answer again and "
    "creates nothing (`Idempotent-Replayed: true`); with another request: 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[ -~]+$"},
}


def idempotent(view):
    """The view (a POST that creates something) takes an Idempotency-Key. Put it outermost, above
    the authentication and flask-smorest's decorators: it needs the view's final answer."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        key = request_key()
        if key is None:
            return view(*args, **kwargs)
        database, secret = current_app.extensions["database"], current_app.extensions["settings"].require_secret()
        who, print_ = caller(), fingerprint(secret)
        with database.engine.connect() as connection:
            transaction = connection.begin()
            earlier = claim(connection, who, key, print_, secret)
            if earlier is not None:
                transaction.commit()  # the purge
                if earlier.fingerprint != print_:
                    raise reused()
                return replay(earlier)
            try:
                with database.joined(connection):
                    response = current_app.make_response(view(*args, **kwargs))
            except BaseException:
                _give_back(connection, transaction, who, key)
                raise
            if not 200 <= response.status_code < 300:
                _give_back(connection, transaction, who, key)
                return response
            record(connection, who, key, response, secret)
            transaction.commit()
            return response

    # Documented as flask-smorest's `doc(parameters=...)` would (a copy: the view's stays as it is).
    apidoc = getattr(view, "_apidoc", {})
    manual = apidoc.get("manual_doc", {})
    manual = {**manual, "parameters": [*manual.get("parameters", []), OPENAPI_PARAMETER]}
    wrapper._apidoc = {**apidoc, "manual_doc": manual}
    return wrapper
