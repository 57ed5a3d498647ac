"""Rule 4: who belongs to a profile and with which rights; the administrator's work.

Every change of a membership bumps its version and is announced (`identity.membership.changed`
with the whole new state), so other services can keep their own copy for their own checks and
ignore an older event that arrives late. A profile always keeps at least one administrator.
Granting or removing a membership may also change the person as others show them (company,
active): `people.announce` follows each.

A person added by an administrator is invited, whether or not the address has an account: the
membership gives no access and is not announced until they accept (`join`), and it is shown
with the name the administrator typed. Vendor staff are never members of a profile.

Every write to a profile's members (and contacts) first locks the profile, the aggregate
(`lock_profile`), then reads and changes: writes to one profile take turns, in one lock order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity import gateway_notices, mail, people, tokens
from identity.models import RIGHTS, CustomerProfile, Membership, ProfileClaim, Token, User
from shared.auth import Principal
from shared.db import utc_now
from shared.memberships import MissingRight, NotAMember
from shared.outbox import add_event


class LastAdministrator(Exception):
    pass


class UnknownMember(LookupError):
    pass


class StaffAccount(Exception):
    """Vendor staff cannot be made members of a customer profile."""


@dataclass(frozen=True)
class Access:
    """What the caller may do in one profile. Staff see every profile, read-only."""

    customer_number: str
    rights: frozenset[str]
    administrator: bool
    staff_read_only: bool = False

    def require(self, right: str, write: bool = False) -> None:
        if self.staff_read_only and not write:
            return
        if right not in self.rights or (write and self.staff_read_only):
            raise MissingRight(right)


def lock_profile(session: Session, customer_number: str) -> None:
    """Lock the profile's row until the transaction ends (on SQLite: the database's write lock)."""
    session.execute(
        select(CustomerProfile.customer_number)
        .where(CustomerProfile.customer_number == customer_number)
        .with_for_update()
    )


def access(session: Session, principal: Principal, customer_number: str) -> Access:
    membership = session.get(Membership, (principal.user_id, customer_number))
    if membership is None or membership.status != "active":
        if principal.staff and session.get(CustomerProfile, customer_number) is not None:
            return Access(customer_number, frozenset(), False, staff_read_only=True)
        raise NotAMember(customer_number)
    user = session.get(User, principal.user_id)
    if user is None or user.status != "active":
        raise NotAMember(customer_number)
    return Access(customer_number, frozenset(membership.effective_rights()), membership.administrator)


def snapshot(session: Session, user_id: str) -> tuple[int, list[Membership]]:
    """A person's access_version and the memberships that give them access now (none for an
    account that cannot sign in), read under a share lock of their row: a change of theirs in
    progress is waited for, so the answer is at least as new as the number it carries."""
    user = session.scalars(
        select(User).where(User.id == user_id).with_for_update(read=True).execution_options(populate_existing=True)
    ).one_or_none()
    if user is None:
        return 0, []
    if user.status != "active":
        return user.access_version or 0, []
    rows = session.scalars(
        select(Membership)
        .where(Membership.user_id == user_id, Membership.status == "active")  # not invitations
        .order_by(Membership.customer_number)
    ).all()
    return user.access_version or 0, list(rows)


def announce(session: Session, membership: Membership, removed: bool = False) -> None:
    """Every change of a membership goes through here: it counts the person's access_version
    (their row locked, so two changes of one person get two numbers), announces the new state
    and tells the gateway, which then carries the number in the person's tokens (rule 4)."""
    session.flush()  # the locked read below refreshes the row: pending changes go first
    user = session.get(User, membership.user_id, with_for_update=True, populate_existing=True)
    user.access_version = (user.access_version or 0) + 1
    add_event(
        session,
        "identity.membership.changed",
        {
            "user_id": membership.user_id,
            "customer_number": membership.customer_number,
            "administrator": membership.administrator and not removed,
            "rights": [] if removed else membership.effective_rights(),
            "active": not removed,
            "version": membership.version,
            "access_version": user.access_version,
        },
        producer="identity",
    )
    gateway_notices.access_changed(session, user.id, user.access_version)


def members(session: Session, customer_number: str) -> list[tuple[Membership, User]]:
    return list(
        session.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.customer_number == customer_number)
            .order_by(func.coalesce(Membership.invited_name, User.name), User.email)
        ).all()
    )


def member_id(membership: Membership) -> str:
    """The member's id in the profile's list: the invitation's while invited, else the account's."""
    return membership.invitation_id if membership.status == "invited" else membership.user_id


def _member(session: Session, customer_number: str, listed_id: str) -> Membership:
    """The membership behind an id from the profile's list (`member_id`, or an invitation's id
    after acceptance), locked; UnknownMember otherwise."""
    user_id = session.scalar(
        select(Membership.user_id).where(
            Membership.customer_number == customer_number,
            or_(
                and_(Membership.user_id == listed_id, Membership.status == "active"),
                Membership.invitation_id == listed_id,
            ),
        )
    )
    membership = session.get(Membership, (user_id, customer_number), with_for_update=True) if user_id else None
    if membership is None:
        raise UnknownMember(listed_id)
    return membership


def _administrators(session: Session, customer_number: str) -> int:
    return session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.customer_number == customer_number, Membership.administrator, Membership.status == "active")
    )


def add_member(
    session: Session,
    *,
    customer_number: str,
    email: str,
    name: str,
    rights: list[str],
    inviter: str,
    public_url: str,
    invitation_ttl: int,
) -> tuple[Membership, User]:
    """Invite a person. A new address gets an account to set a password for; an account that
    cannot sign in yet (an invitation not accepted, a registration not confirmed) a fresh
    invitation to set one (its older links stop working: accepting the newest joins every
    profile it was invited to); an active account an invitation to accept with the password it
    has. Whichever it is, the membership is invited and shown with the name typed here, so
    adding tells nobody whether the address has an account, nor whose."""
    lock_profile(session, customer_number)
    profile = session.get(CustomerProfile, customer_number)
    user = _account_for(session, email, name)
    if user.staff:
        raise StaffAccount()
    if session.get(Membership, (user.id, customer_number)) is not None:
        raise MemberExists()
    if user.status != "active":
        user.status = "invited"  # a pending registration's lapse then leaves the account
        session.execute(delete(Token).where(Token.user_id == user.id, Token.kind == tokens.INVITATION))
    raw, expires_at = tokens.issue(session, tokens.INVITATION, user.id, invitation_ttl, customer_number)
    link = tokens.link(public_url, tokens.INVITATION, raw)
    if user.status == "active":
        mail.membership_invitation(session, email, user.name, profile.company_name, inviter, link, expires_at)
    else:
        mail.invitation(session, email, name, profile.company_name, inviter, link, expires_at)
    administrator = "users" in rights  # the users right is the administrator's role
    membership = Membership(
        user_id=user.id,
        customer_number=customer_number,
        administrator=administrator,
        rights=list(RIGHTS) if administrator else _clean(rights),
        version=1,
        status="invited",
        invitation_id=str(uuid.uuid4()),
        invited_name=name,
        invited_until=expires_at,
    )
    session.add(membership)
    session.flush()
    return membership, user


def _account_for(session: Session, email: str, name: str) -> User:
    """The account with this address; a new one, invited, when there is none."""
    user = session.scalars(select(User).where(User.email == email)).one_or_none()
    if user is not None:
        return user
    try:
        with session.begin_nested():
            user = User(email=email, name=name, status="invited")
            session.add(user)
            session.flush()
        return user
    except IntegrityError:  # another profile invited the same new address at the same moment
        return session.scalars(select(User).where(User.email == email)).one()


def join(session: Session, user_id: str, customer_numbers: Iterable[str]) -> list[Membership]:
    """The person accepted: their invited memberships of these profiles (locked by the caller,
    `lock_profile`) become active and are announced. Returns them."""
    joined = session.scalars(
        select(Membership)
        .where(
            Membership.user_id == user_id,
            Membership.customer_number.in_(list(customer_numbers)),
            Membership.status == "invited",
        )
        .order_by(Membership.customer_number)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    for membership in joined:
        membership.status = "active"
        membership.invited_name = membership.invited_until = None
        membership.created_at = utc_now()  # joined now: the person's company (people.state) counts from here
        membership.version += 1
    session.flush()
    for membership in joined:
        announce(session, membership)
    return list(joined)


class MemberExists(Exception):
    pass


def change_member(
    session: Session, customer_number: str, listed_id: str, rights: list[str] | None, administrator: bool | None
) -> tuple[Membership, User]:
    """Change rights and/or the administrator role. The `users` right is the administrator's
    (product rule 4): granting it makes an administrator, taking it away ends the role. An
    invited membership changes too, and is announced once the person joins."""
    lock_profile(session, customer_number)
    membership = _member(session, customer_number, listed_id)
    if administrator is None and rights is not None:
        administrator = "users" in rights
    new_rights = _clean(rights) if rights is not None else [r for r in membership.effective_rights() if r != "users"]
    if administrator is False and membership.administrator and membership.status == "active":
        if _administrators(session, customer_number) <= 1:
            raise LastAdministrator()
    if administrator is not None:
        membership.administrator = administrator
    membership.rights = list(RIGHTS) if membership.administrator else [r for r in new_rights if r != "users"]
    membership.version += 1
    session.flush()
    if membership.status == "active":
        announce(session, membership)
    return membership, session.get(User, membership.user_id)


def remove_member(session: Session, customer_number: str, listed_id: str) -> None:
    lock_profile(session, customer_number)
    membership = _member(session, customer_number, listed_id)
    user_id = membership.user_id
    if membership.administrator and membership.status == "active":
        if _administrators(session, customer_number) <= 1:
            raise LastAdministrator()
    membership.version += 1
    announce(session, membership, removed=True)
    session.delete(membership)
    user = session.get(User, user_id)
    if user is not None and user.status == "active" and membership.status == "invited":
        # The invitation is cancelled: its link answers 404. (An account without a password keeps
        # its one link: it leads into the profiles it is still invited to.)
        session.execute(
            delete(Token).where(
                Token.user_id == user_id, Token.kind == tokens.INVITATION, Token.customer_number == customer_number
            )
        )
    # An invited person who never set a password and belongs nowhere else is no account at all,
    # unless they are registering a company of their own: that registration stays theirs.
    if (
        user is not None
        and user.status == "invited"
        and not session.scalar(
            select(Membership.user_id).where(
                Membership.user_id == user_id, Membership.customer_number != customer_number
            )
        )
    ):
        if session.scalar(select(ProfileClaim.customer_number).where(ProfileClaim.user_id == user_id)):
            user.status = "pending"  # as before the invitation: confirming or lapsing decides
        else:
            session.delete(user)  # never active, so never announced: nobody else knows them
        session.flush()
        return
    session.flush()
    people.announce(session, user_id)  # the company may change, or the person be active no more


def _clean(rights: list[str]) -> list[str]:
    return [right for right in RIGHTS if right in set(rights)]
