"""Signing in, resetting and changing passwords, accepting an invitation, the display name.

Every failure of a sign-in looks the same from outside (status, body, and timing: an unknown
e-mail still verifies a dummy hash). Failed sign-ins are counted per account and per client;
a successful one clears its account's count; a password reset works for a throttled account.
"""

from __future__ import annotations

import os
import threading

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity import limits, mail, people, tokens
from identity.models import User
from identity.passwords import hash_password, needs_rehash, verify_password
from shared import throttle
from shared.db import Database

# An argon2id verification takes 19 MiB and ≈ 20 ms of one CPU (argon2-cffi releases the GIL
# meanwhile). Several at once on one CPU evict each other's memory from the caches, and each
# then costs ≈ 40 % more CPU (bench/login.py): a worker verifies at most as many passwords at
# once as it has CPUs, the others wait their turn (same answers, same timing for unknown
# e-mails, more sign-ins per second under load, and a bound on the memory they take).
_VERIFYING = threading.BoundedSemaphore(
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)


class SignInFailed(Exception):
    pass


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).one_or_none()


def verify_credentials(database: Database, email: str, password: str, client: str) -> User:
    account_key = f"sign-in-account:{email}"
    keys = ((account_key, limits.SIGN_IN_PER_ACCOUNT), (f"sign-in-client:{client}", limits.SIGN_IN_PER_CLIENT))
    with database.unit_of_work() as session:
        throttle.refuse_if_throttled(session, keys)
        user = find_user(session, email)
        # Always verify a hash (a dummy one for unknown e-mails) so timing tells nothing.
        with _VERIFYING:
            valid = verify_password(user.password_hash if user else None, password)
        if valid and user is not None and user.status == "active":
            throttle.clear(session, account_key)
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
            return user
    throttle.count_failure(database, keys)
    raise SignInFailed()


def request_password_reset(session: Session, email: str, public_url: str, ttl_seconds: int) -> None:
    """Queue a reset mail if the account exists and may sign in; the caller answers 202 either way."""
    user = find_user(session, email)
    if user is None or user.status not in ("active",):
        return
    raw, expires_at = tokens.issue(session, tokens.RESET, user.id, ttl_seconds)
    mail.password_reset(session, user.email, user.name, tokens.link(public_url, tokens.RESET, raw), expires_at)


def reset_password(session: Session, raw_token: str, password: str) -> User:
    token = tokens.consume(session, tokens.RESET, raw_token)
    user = session.get(User, token.user_id)
    if user is None or user.status != "active":
        raise tokens.TokenUnknown()
    user.password_hash = hash_password(password)
    throttle.clear(session, f"sign-in-account:{user.email}")
    return user


def accept_invitation(session: Session, raw_token: str, password: str) -> User:
    token = tokens.consume(session, tokens.INVITATION, raw_token)
    user = session.get(User, token.user_id)
    if user is None or user.status != "invited":
        raise tokens.TokenUnknown()
    user.password_hash = hash_password(password)
    user.status = "active"
    people.announce(session, user.id)
    return user


def change_password(session: Session, user_id: str, current: str, new: str) -> bool:
    user = session.get(User, user_id)
    if user is None or not verify_password(user.password_hash, current):
        return False
    user.password_hash = hash_password(new)
    return True


def rename(session: Session, user_id: str, name: str) -> User | None:
    """Set the display name of an account that may sign in (None when it may not); other
    services learn it from `identity.user.changed`."""
    user = session.get(User, user_id)
    if user is None or user.status != "active":
        return None
    user.name = name
    people.announce(session, user.id)
    return user
