"""One-time tokens sent by e-mail: 256 bits from the CSPRNG, stored as SHA-256, used once.

Issuing a token voids the user's older tokens of that kind, so only the newest link works;
confirmations and invitations are per profile: a new one voids the older one for that profile.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from identity.models import Token
from shared.db import as_utc, utc_now

CONFIRM = "confirm"
INVITATION = "invitation"
RESET = "password-reset"
# Pages of the portal the links point to (api.md, "E-mails").
PAGES = {CONFIRM: "confirm", INVITATION: "invitation", RESET: "password-reset"}


class TokenUnknown(LookupError):
    """Never issued, already used, or voided by a newer one."""


class TokenExpired(Exception):
    def __init__(self, token: Token):
        super().__init__("token expired")
        self.user_id = token.user_id
        self.customer_number = token.customer_number


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(
    session: Session, kind: str, user_id: str, ttl_seconds: int, customer_number: str | None = None
) -> tuple[str, datetime]:
    older = delete(Token).where(Token.user_id == user_id, Token.kind == kind)
    if kind in (CONFIRM, INVITATION):
        # One account may be registering several companies (an accounting firm), or be invited
        # to several: a new link voids only the older one for the same profile.
        older = older.where(Token.customer_number == customer_number)
    session.execute(older)
    raw = secrets.token_urlsafe(32)
    expires_at = utc_now() + timedelta(seconds=ttl_seconds)
    session.add(
        Token(
            token_hash=digest(raw), kind=kind, user_id=user_id, customer_number=customer_number, expires_at=expires_at
        )
    )
    return raw, expires_at


def link(public_url: str, kind: str, raw: str) -> str:
    return f"{public_url}/{PAGES[kind]}?token={raw}"


def consume(session: Session, kind: str, raw: str) -> Token:
    """Use a token: returns it and deletes it; raises TokenUnknown or TokenExpired."""
    token = session.scalars(
        select(Token).where(Token.token_hash == digest(raw), Token.kind == kind).with_for_update()
    ).one_or_none()
    if token is None:
        raise TokenUnknown()
    session.delete(token)
    if as_utc(token.expires_at) <= utc_now():
        raise TokenExpired(token)
    return token
