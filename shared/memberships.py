"""Memberships as the services that own profile data keep them: who may act for which
customer with which rights, learnt from identity's `identity.membership.changed` events.

Each service checks membership and rights itself, in its own database, on every request
(never only the gateway): another customer's data is a `404`, a missing right a `403`.
Services create the table with `create_table(op)` in a migration and subscribe `apply`.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, MetaData, String, Table, insert, select, update
from sqlalchemy.orm import Session

from shared.auth import Principal
from shared.db import as_utc
from shared.events import Event
from shared.problems import Problem

metadata = MetaData()

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("customer_number", String(20), primary_key=True),
    Column("rights", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    # When identity made the change: a membership removed and granted again counts its
    # versions anew, so the time of the change is what orders them.
    Column("changed_at", DateTime(timezone=True), nullable=False),
)


def create_table(op) -> None:
    metadata.create_all(bind=op.get_bind(), checkfirst=False)


class NotAMember(Problem):
    """Answered as 404: other profiles' existence is not disclosed."""

    def __init__(self, customer_number: str = ""):
        super().__init__(404, "not-found", "Not found", "No such customer profile.")
        self.customer_number = customer_number


class MissingRight(Problem):
    def __init__(self, right: str):
        super().__init__(403, "missing-right", "Forbidden", f"This needs the right '{right}'.", right=right)
        self.right = right


def require(session: Session, principal: Principal, customer_number: str, right: str, *, customer_exists) -> None:
    """Raises NotAMember (a 404 problem) or MissingRight (403). Staff may read any existing customer's data
    (`customer_exists(session, customer_number)` says whether it exists)."""
    if principal.staff:
        if customer_exists(session, customer_number):
            return
        raise NotAMember(customer_number)
    row = session.execute(
        select(memberships.c.rights, memberships.c.active).where(
            memberships.c.user_id == principal.user_id, memberships.c.customer_number == customer_number
        )
    ).one_or_none()
    if row is None or not row.active:
        raise NotAMember(customer_number)
    if right not in (row.rights or []):
        raise MissingRight(right)


def require_anywhere(session: Session, principal: Principal, right: str) -> None:
    """For what no one profile owns (e.g. the vendor's news): staff, or `right` in at least one
    of the caller's active memberships; MissingRight (403) otherwise."""
    if principal.staff:
        return
    rows = session.execute(
        select(memberships.c.rights).where(memberships.c.user_id == principal.user_id, memberships.c.active)
    ).all()
    if not any(right in (row.rights or []) for row in rows):
        raise MissingRight(right)


def apply(session: Session, event: Event) -> None:
    """The handler for `identity.membership.changed`: keep the newest state; an older event
    arriving late changes nothing."""
    data, changed_at = event.data, event.occurred_at
    key = (memberships.c.user_id == data["user_id"]) & (memberships.c.customer_number == data["customer_number"])
    current = session.execute(select(memberships.c.changed_at).where(key).with_for_update()).scalar_one_or_none()
    values = {"rights": list(data["rights"]), "active": data["active"], "changed_at": changed_at}
    if current is None:
        session.execute(
            insert(memberships).values(user_id=data["user_id"], customer_number=data["customer_number"], **values)
        )
    elif changed_at > as_utc(current):
        session.execute(update(memberships).where(key).values(**values))
