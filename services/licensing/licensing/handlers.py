"""What licensing does with other services' events (its subscriptions, one line each)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from licensing.access import apply_membership
from licensing.customers import apply_contacts
from shared.events import Event


def on_membership_changed(session: Session, event: Event) -> None:
    apply_membership(session, event.data, event.occurred_at)


def on_contact_changed(session: Session, event: Event) -> None:
    apply_contacts(session, event.data)


HANDLERS = {
    "identity.membership.changed": on_membership_changed,
    "identity.customer.contact_changed": on_contact_changed,
}
