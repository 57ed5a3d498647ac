"""Who may read a customer's licenses, checked here in licensing (not only in the gateway):
identity's memberships are kept from its `identity.membership.changed` events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from licensing.models import Customer, Membership
from shared.auth import Principal
from shared.db import as_utc


class NotAMember(LookupError):
    pass


class MissingRight(PermissionError):
    def __init__(self, right: str):
        super().__init__(right)
        self.right = right


def require(session: Session, principal: Principal, customer_number: str, right: str, write: bool = False) -> None:
    """Raises NotAMember (answer 404) or MissingRight (403). Staff may read any customer's."""
    if principal.staff and not write:
        if session.query(Customer.id).filter(Customer.customer_number == customer_number).first():
            return
        raise NotAMember(customer_number)
    membership = session.get(Membership, (principal.user_id, customer_number))
    if membership is None or not membership.active:
        raise NotAMember(customer_number)
    if right not in (membership.rights or []):
        raise MissingRight(right)


def apply_membership(session: Session, data: dict, changed_at: datetime) -> None:
    """Keep the newest state of a membership; an older event arriving late changes nothing."""
    key = (data["user_id"], data["customer_number"])
    membership = session.get(Membership, key, with_for_update=True)
    if membership is None:
        session.add(
            Membership(
                user_id=data["user_id"],
                customer_number=data["customer_number"],
                rights=list(data["rights"]),
                active=data["active"],
                changed_at=changed_at,
            )
        )
    elif changed_at > as_utc(membership.changed_at):
        membership.rights = list(data["rights"])
        membership.active = data["active"]
        membership.changed_at = changed_at
