"""Partners (resellers) and their API keys.

A key is `cc_<key id>_<secret>`: the id finds the row, the secret (32 random bytes) is
stored only as SHA-256 and compared in constant time. It is shown once, when made; a revoked
key stops working on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy.orm import Session

from licensing.models import Partner, PartnerKey
from shared.db import utc_now

PREFIX = "cc"


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
    key = session.get(PartnerKey, key_id)
    # Compare even when the key is unknown, so a wrong id and a wrong secret take as long.
    expected = key.secret_hash if key is not None else _hash("no such key")
    if not hmac.compare_digest(expected, _hash(secret)) or key is None or key.revoked_at is not None:
        return None
    return session.get(Partner, key.partner_id)


def revoke_keys(session: Session, partner_id: str) -> int:
    keys = session.query(PartnerKey).filter(PartnerKey.partner_id == partner_id, PartnerKey.revoked_at.is_(None)).all()
    for key in keys:
        key.revoked_at = utc_now()
    return len(keys)
