"""A person as the other services show them (a forum post's author): `identity.user.changed`.

`announce(session, user_id)` recomputes the whole state (name, e-mail, company, staff,
active) and writes the event into the outbox, in the caller's transaction, only when that
state differs from what was last announced (kept in `users.announced`); each announcement
bumps `users.version`, so consumers keep the highest one seen. Every change that can alter
the state calls it after making the change: confirming a registration, accepting an
invitation, a membership granted or removed, a new display name, a company renamed, a staff
account made. A person is first announced once active (a pending registration or an
unanswered invitation is nobody's business yet) and never withdrawn: leaving the last
profile announces `active: false`, so their forum posts keep their author.

- company_name: the company of the earliest-joined membership (Membership.created_at, then
  the customer number; an invitation not accepted yet does not count); null when the person
  belongs to no profile.
- active: can sign in (status "active") and is staff or a member of at least one profile.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from identity.models import CustomerProfile, Membership, User
from shared.outbox import add_event


def state(session: Session, user: User) -> dict[str, Any]:
    """What `identity.user.changed` says about this person now (without its version)."""
    company_name = session.scalar(
        select(CustomerProfile.company_name)
        .join(Membership, Membership.customer_number == CustomerProfile.customer_number)
        .where(Membership.user_id == user.id, Membership.status == "active")
        .order_by(Membership.created_at, Membership.customer_number)
        .limit(1)
    )
    return {
        "user_id": user.id,
        "name": user.name,
        "email": user.email,
        "company_name": company_name,
        "staff": bool(user.staff),
        "active": user.status == "active" and (bool(user.staff) or company_name is not None),
    }


def announce(session: Session, user_id: str) -> bool:
    """Announce the person if what others should show changed; True when an event was written.

    Locks the user's row first, so two transactions changing one person announce one after
    the other, each with its own version and the state the other committed."""
    session.flush()
    user = session.scalars(
        select(User).where(User.id == user_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if user is None:
        return False
    data = state(session, user)
    if data == user.announced or (user.announced is None and not data["active"]):
        return False
    user.version += 1
    user.announced = data
    add_event(session, "identity.user.changed", {**data, "version": user.version}, producer="identity")
    return True


def announce_members(session: Session, customer_number: str) -> None:
    """After a profile's company name changed: announce each member whose company that changes
    (in the order of their ids, so concurrent renames lock users in one order)."""
    user_ids = session.scalars(
        select(Membership.user_id).where(Membership.customer_number == customer_number).order_by(Membership.user_id)
    ).all()
    for user_id in user_ids:
        announce(session, user_id)
