"""Rule 4: who belongs to a profile and with which rights; the administrator's work.

Every change of a membership bumps its version and is announced (`identity.membership.changed`
with the whole new state), so other services can keep their own copy for their own checks and
ignore an older event that arrives late. A profile always keeps at least one administrator.
Granting or removing a membership may also change the person as others show them (company,
active): `people.announce` follows each.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from identity import mail, people, tokens
from identity.models import RIGHTS, CustomerProfile, Membership, ProfileClaim, User
from shared.auth import Principal
from shared.memberships import MissingRight, NotAMember
from shared.outbox import add_event


class LastAdministrator(Exception):
    pass


class UnknownMember(LookupError):
    pass


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


def access(session: Session, principal: Principal, customer_number: str) -> Access:
    membership = session.get(Membership, (principal.user_id, customer_number))
    if membership is None:
        if principal.staff and session.get(CustomerProfile, customer_number) is not None:
            return Access(customer_number, frozenset(), False, staff_read_only=True)
        raise NotAMember(customer_number)
    user = session.get(User, principal.user_id)
    if user is None or user.status != "active":
        raise NotAMember(customer_number)
    return Access(customer_number, frozenset(membership.effective_rights()), membership.administrator)


def announce(session: Session, membership: Membership, removed: bool = False) -> None:
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
        },
        producer="identity",
    )


def members(session: Session, customer_number: str) -> list[tuple[Membership, User]]:
    return list(
        session.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.customer_number == customer_number)
            .order_by(User.name, User.email)
        ).all()
    )


def _administrators(session: Session, customer_number: str) -> int:
    return session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.customer_number == customer_number, Membership.administrator)
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
    """Give a person access: a new account gets an invitation to set a password, an active
    one gains the membership at once and a notice. An account that cannot sign in yet (an
    invitation not accepted, perhaps expired; a registration not confirmed) gets a fresh
    invitation: a notice to sign in would leave it no way in."""
    profile = session.get(CustomerProfile, customer_number)
    user = session.scalars(select(User).where(User.email == email)).one_or_none()
    if user is not None and session.get(Membership, (user.id, customer_number)) is not None:
        raise MemberExists()
    if user is None or user.status != "active":
        if user is None:
            user = User(email=email, name=name, status="invited")
            session.add(user)
            session.flush()
        else:
            user.status = "invited"  # a pending registration's lapse then leaves the account
        raw, expires_at = tokens.issue(session, tokens.INVITATION, user.id, invitation_ttl, customer_number)
        mail.invitation(
            session,
            email,
            name,
            profile.company_name,
            inviter,
            tokens.link(public_url, tokens.INVITATION, raw),
            expires_at,
        )
    else:
        mail.membership_notice(session, user.email, user.name, profile.company_name, inviter, f"{public_url}/sign-in")
    administrator = "users" in rights  # the users right is the administrator's role
    membership = Membership(
        user_id=user.id,
        customer_number=customer_number,
        administrator=administrator,
        rights=list(RIGHTS) if administrator else _clean(rights),
        version=1,
    )
    session.add(membership)
    session.flush()
    announce(session, membership)
    people.announce(session, user.id)  # an existing account may gain a company, or become active
    return membership, user


class MemberExists(Exception):
    pass


def change_member(
    session: Session, customer_number: str, user_id: str, rights: list[str] | None, administrator: bool | None
) -> tuple[Membership, User]:
    """Change rights and/or the administrator role. The `users` right is the administrator's
    (product rule 4): granting it makes an administrator, taking it away ends the role."""
    membership = session.get(Membership, (user_id, customer_number), with_for_update=True)
    if membership is None:
        raise UnknownMember(user_id)
    if administrator is None and rights is not None:
        administrator = "users" in rights
    new_rights = _clean(rights) if rights is not None else [r for r in membership.effective_rights() if r != "users"]
    if administrator is False and membership.administrator:
        _lock_administrators(session, customer_number)
        if _administrators(session, customer_number) <= 1:
            raise LastAdministrator()
    if administrator is not None:
        membership.administrator = administrator
    membership.rights = list(RIGHTS) if membership.administrator else [r for r in new_rights if r != "users"]
    membership.version += 1
    session.flush()
    announce(session, membership)
    return membership, session.get(User, user_id)


def remove_member(session: Session, customer_number: str, user_id: str) -> None:
    membership = session.get(Membership, (user_id, customer_number), with_for_update=True)
    if membership is None:
        raise UnknownMember(user_id)
    if membership.administrator:
        _lock_administrators(session, customer_number)
        if _administrators(session, customer_number) <= 1:
            raise LastAdministrator()
    membership.version += 1
    announce(session, membership, removed=True)
    session.delete(membership)
    user = session.get(User, user_id)
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


def _lock_administrators(session: Session, customer_number: str) -> None:
    """Serialise administrator changes of one profile, so two administrators demoting each
    other at once cannot leave it with none."""
    session.execute(
        select(CustomerProfile.customer_number)
        .where(CustomerProfile.customer_number == customer_number)
        .with_for_update()
    )
    session.execute(
        select(Membership.user_id)
        .where(Membership.customer_number == customer_number, Membership.administrator)
        .with_for_update()
    )


def _clean(rights: list[str]) -> list[str]:
    return [right for right in RIGHTS if right in set(rights)]
