"""Signing in, resetting and changing passwords, accepting an invitation, the display name.

Every failure of a sign-in looks the same from outside (status, body, and timing: an unknown
e-mail still verifies a dummy hash). Failed sign-ins are counted per account and per client;
a successful one clears its account's count; a password reset works for a throttled account.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity import gateway_notices, limits, mail, memberships, people, tokens
from identity.models import CustomerProfile, Membership, Token, User
from identity.passwords import hash_password, needs_rehash, problems_with, verify_password
from shared import throttle
from shared.db import Database, as_utc, utc_now

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
    gateway_notices.end_sessions(session, user.id)  # whoever knew the old password is signed out
    return user


class PasswordNeeded(Exception):
    """A new account accepts its invitation with a password that meets the policy."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Invitation:
    """What an invitation link is for, as its holder may see it."""

    company_name: str | None
    password_needed: bool
    expires_at: datetime


def invitation(session: Session, raw_token: str) -> Invitation:
    """Look at an invitation without using it; raises tokens.TokenUnknown or TokenExpired."""
    token, user = _invitation(session, raw_token)
    profile = session.get(CustomerProfile, token.customer_number) if token.customer_number else None
    return Invitation(profile.company_name if profile else None, user.status == "invited", as_utc(token.expires_at))


def accept_invitation(session: Session, raw_token: str, password: str | None = None) -> bool:
    """Join what the invitation is for. A new account (no password yet) sets its password and
    joins every profile it is invited to (a new invitation voided its older link); an active
    account joins the link's profile and keeps its password (`password` is not used). True when
    a new account's password was set. Raises PasswordNeeded, tokens.TokenUnknown or TokenExpired."""
    token, user = _invitation(session, raw_token)
    new_account = user.status == "invited"
    password_hash = None
    if new_account:
        reason = problems_with(password) if password else "Missing data for required field: a new account's password."
        if reason:
            raise PasswordNeeded(reason)
        password_hash = hash_password(password)  # before any lock is taken
    invited_to = (
        session.scalars(
            select(Membership.customer_number).where(Membership.user_id == user.id, Membership.status == "invited")
        ).all()
        if new_account
        else [token.customer_number]
    )
    # The lock order of every write to members: the profiles, then the account, then its token.
    for customer_number in sorted(invited_to):
        memberships.lock_profile(session, customer_number)
    user = session.scalars(
        select(User).where(User.id == user.id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    tokens.consume(session, tokens.INVITATION, raw_token)
    if user is None or user.status not in ("invited", "active"):
        raise tokens.TokenUnknown()
    password_set = user.status == "invited"
    if password_set:
        user.password_hash = password_hash
        user.status = "active"
    joined = memberships.join(session, user.id, invited_to)
    if not new_account and not joined:
        raise tokens.TokenUnknown()  # that invitation was cancelled, or accepted already
    people.announce(session, user.id)
    return password_set


def _invitation(session: Session, raw_token: str) -> tuple[Token, User]:
    token = session.scalars(
        select(Token).where(Token.token_hash == tokens.digest(raw_token), Token.kind == tokens.INVITATION)
    ).one_or_none()
    user = session.get(User, token.user_id) if token is not None else None
    if user is None or user.status not in ("invited", "active"):
        raise tokens.TokenUnknown()
    if as_utc(token.expires_at) <= utc_now():
        raise tokens.TokenExpired(token)
    return token, user


def change_password(session: Session, user_id: str, current: str, new: str, keep_session: str | None = None) -> bool:
    """Every other session of the account ends with the old password (product rule 17)."""
    user = session.get(User, user_id)
    if user is None or not verify_password(user.password_hash, current):
        return False
    user.password_hash = hash_password(new)
    gateway_notices.end_sessions(session, user.id, keep=keep_session)
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
