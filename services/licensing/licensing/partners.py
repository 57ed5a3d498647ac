"""Partners (resellers) and their API keys.

A key is `cc_<key id>_<secret>`: the id finds the row, the secret (32 random bytes) is
stored only as SHA-256 and compared in constant time. It is shown once, when made; a revoked
key stops working on the next request.

A partner's writes carry an idempotency key (the REST API's `Idempotency-Key`, the broker's
`message_id`): `claim_request_key` keeps one `idempotent_requests` row per partner, channel
(`REST` or `AMQP`) and key. The channels' keys never meet: `Idempotency-Key: X` and a message
with id X are two writes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from licensing.models import REQUEST_CHANNELS, IdempotentRequest, Partner, PartnerKey
from shared.db import insert_or_skip, utc_now

PREFIX = "cc"
# The channels a partner's write comes by (models.REQUEST_CHANNELS), each with keys of its own.
REST, AMQP = REQUEST_CHANNELS


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_partner(session: Session, name: str, broker_user: str | None = None) -> tuple[Partner, str]:
    partner = Partner(name=name, broker_user=broker_user)
    session.add(partner)
    session.flush()
    return partner, new_key(session, partner)


def new_key(session: Session, partner: Partner) -> str:
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    session.add(PartnerKey(id=key_id, partner_id=partner.id, secret_hash=_hash(secret)))
    session.flush()
    return f"{PREFIX}_{key_id}_{secret}"


def authenticate(session: Session, api_key: str) -> Partner | None:
    prefix, _, rest = api_key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not key_id or not secret:
        return None
    row = session.execute(
        select(PartnerKey.secret_hash, PartnerKey.revoked_at, Partner)
        .join(Partner, Partner.id == PartnerKey.partner_id)
        .where(PartnerKey.id == key_id)
    ).one_or_none()
    # Compare even when the key is unknown, so a wrong id and a wrong secret take as long.
    expected = row.secret_hash if row is not None else _hash("no such key")
    if not hmac.compare_digest(expected, _hash(secret)) or row is None or row.revoked_at is not None:
        return None
    return row.Partner


def revoke_keys(session: Session, partner_id: str) -> int:
    keys = session.query(PartnerKey).filter(PartnerKey.partner_id == partner_id, PartnerKey.revoked_at.is_(None)).all()
    for key in keys:
        key.revoked_at = utc_now()
    return len(keys)


def claim_request_key(
    session: Session, partner_id: str, channel: str, key: str, fingerprint: str
) -> IdempotentRequest | None:
    """Take `key` of `channel` (REST or AMQP) for this request (`fingerprint`: the SHA-256 of
    its body). None: the key is ours, record the answer with `record_answer` in the same
    transaction. Otherwise the earlier request's row, answered already: a concurrent request
    with the same key waits in the INSERT until the first one's transaction ends (and takes the
    key if that rolled back)."""
    assert channel in REQUEST_CHANNELS, channel
    claimed = session.execute(
        insert_or_skip(session.get_bind().dialect.name, IdempotentRequest)
        .values(
            partner_id=partner_id,
            channel=channel,
            key=key,
            request_hash=fingerprint,
            status=0,
            response="",
            created_at=utc_now(),
        )
        .returning(IdempotentRequest.key)
    ).first()
    if claimed is not None:
        return None
    return session.get(IdempotentRequest, (partner_id, channel, key), populate_existing=True)


def record_answer(session: Session, partner_id: str, channel: str, key: str, status: int, response: str) -> None:
    requests = IdempotentRequest.__table__
    session.execute(
        update(requests)
        .where(requests.c.partner_id == partner_id, requests.c.channel == channel, requests.c.key == key)
        .values(status=status, response=response)
    )
