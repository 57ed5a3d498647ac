"""What licensing does with other services' events (its subscriptions, one line each)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from licensing.customers import apply_contacts
from shared import memberships
from shared.events import Event


def on_contact_changed(session: Session, event: Event) -> None:
    apply_contacts(session, event.data)


HANDLERS = {
    "identity.membership.changed": memberships.apply,
    "identity.customer.contact_changed": on_contact_changed,
}
