"""What licensing does with other services' events (its subscriptions, one line each)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from licensing.access import apply_membership
from shared.events import Event


def on_membership_changed(session: Session, event: Event) -> None:
    apply_membership(session, event.data, event.occurred_at)


HANDLERS = {
    "identity.membership.changed": on_membership_changed,
}
