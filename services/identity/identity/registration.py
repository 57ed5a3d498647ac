"""Rules 1-3: a person registers a customer company with its customer number and company ID,
becomes its first administrator once they confirm by e-mail within the time allowed.

The claim on a profile is a row keyed by the customer number: of many people registering one
profile at once, the database lets exactly one insert it. It stays after confirmation, so
nobody can self-register to a profile that has an administrator; it is removed with the
unconfirmed account when the confirmation lapses.

A person who has an account already (an accounting firm's bookkeeper registering one more
client company, rule 4) registers the same way: the claim is made for their account, the
e-mail asks them to confirm adding the company, and their password stays as it is. The
answer is the same as for a new address, so registering tells nobody which e-mails have
accounts (quality.md). An account that is not active yet (a registration not confirmed, an
invitation not accepted) gets the same answer and nothing else: its earlier link is its way in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity import mail, memberships, people, tokens
from identity.models import RIGHTS, CustomerProfile, Membership, ProfileClaim, User
from identity.passwords import hash_password
from shared.db import as_utc, utc_now


class PairMismatch(Exception):
    """The customer number and company ID do not belong together (one answer for both halves)."""


class ProfileHasAdministrator(Exception):
    pass


class ProfileClaimed(Exception):
    """Someone registered this profile and has not confirmed yet."""


def register(
    session: Session,
    *,
    customer_number: str,
    company_id: str,
    email: str,
    password: str,
    name: str,
    public_url: str,
    ttl_seconds: int,
) -> datetime:
    """Create the pending account and claim; queue the confirmation mail. Returns expiry."""
    profile = session.get(CustomerProfile, customer_number)
    if profile is None or profile.company_id != company_id:
        raise PairMismatch()
    claim = session.get(ProfileClaim, customer_number)
    if claim is not None and claim.status == "pending" and as_utc(claim.expires_at) <= utc_now():
        lapse(session, claim)
        claim = None
    if claim is not None:
        raise ProfileHasAdministrator() if claim.status == "confirmed" else ProfileClaimed()
    if session.scalar(
        select(Membership).where(Membership.customer_number == customer_number, Membership.administrator)
    ):
        raise ProfileHasAdministrator()
    expires_at = utc_now() + timedelta(seconds=ttl_seconds)
    # Hashed whether or not the address has an account, so both answers take as long.
    password_hash = hash_password(password)
    # Locked: two registrations with one address take turns (the first may lapse the row).
    existing = session.scalar(select(User).where(User.email == email).with_for_update())
    if existing is not None and existing.status == "pending" and _lapse_expired(session, existing):
        existing = None  # their earlier registration lapsed just now: this one starts afresh
    if existing is not None and existing.status != "active":
        # A registration or invitation not finished yet: the link already sent is the way in.
        # Nothing is claimed and no mail goes out (a mail here could be sent to that address
        # over and over; and pointing to "the earlier link" could be someone else's).
        return expires_at
    user = existing or User(email=email, name=name, password_hash=password_hash, status="pending")
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
            session.add(
                ProfileClaim(customer_number=customer_number, user_id=user.id, status="pending", expires_at=expires_at)
            )
            session.flush()
    except IntegrityError:
        # Lost the race for this profile to a registration that committed first.
        if session.get(ProfileClaim, customer_number) is not None:
            raise ProfileClaimed() from None
        # Or for this e-mail: that registration sent its own mail, and ours says the same.
        return expires_at
    raw, _ = tokens.issue(session, tokens.CONFIRM, user.id, ttl_seconds, customer_number)
    link = tokens.link(public_url, tokens.CONFIRM, raw)
    if existing is not None:
        mail.confirm_added_profile(session, email, existing.name, profile.company_name, link, expires_at)
    else:
        mail.confirm_registration(session, email, name, profile.company_name, link, expires_at)
    return expires_at


def confirm(session: Session, raw_token: str) -> User:
    """Turn the pending account (or an existing one) and its claim into an active administrator. Raises
    tokens.TokenUnknown, or tokens.TokenExpired (the caller then calls `lapse_for`)."""
    token = tokens.consume(session, tokens.CONFIRM, raw_token)
    user = session.get(User, token.user_id)
    claim = session.get(ProfileClaim, token.customer_number)
    if user is None or claim is None or claim.user_id != user.id:
        raise tokens.TokenUnknown()
    user.status = "active"
    claim.status = "confirmed"
    session.add(
        Membership(
            user_id=user.id, customer_number=claim.customer_number, administrator=True, rights=list(RIGHTS), version=1
        )
    )
    session.flush()
    memberships.announce(session, session.get(Membership, (user.id, claim.customer_number)))
    people.announce(session, user.id)
    return user


def lapse_for(session: Session, user_id: str, customer_number: str | None) -> None:
    claim = session.get(ProfileClaim, customer_number) if customer_number else None
    if claim is not None and claim.user_id == user_id and claim.status == "pending":
        lapse(session, claim)


def _lapse_expired(session: Session, user: User) -> bool:
    """Lapse the pending account's registration if its time is up (nobody may have touched its
    profile since to lapse it). True when the account is gone."""
    claims = session.scalars(select(ProfileClaim).where(ProfileClaim.user_id == user.id)).all()
    if any(claim.status != "pending" or as_utc(claim.expires_at) > utc_now() for claim in claims):
        return False
    for claim in claims:
        lapse(session, claim)
    if not claims:
        session.delete(user)  # a pending account without a claim is a leftover: nothing to confirm
        session.flush()
    return True


def lapse(session: Session, claim: ProfileClaim) -> None:
    """The confirmation time is up: the claim is gone and so is the account it made (an account
    that was active before keeps its other profiles); the profile is free."""
    user = session.get(User, claim.user_id)
    session.delete(claim)
    if user is not None and user.status == "pending":
        session.delete(user)
    session.flush()
