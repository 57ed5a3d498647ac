"""What distribution does with other services' events (its subscriptions, one line each)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from distribution.models import Customer
from shared.db import as_utc
from shared.events import Event


def on_customer_created(session: Session, event: Event) -> None:
    customer = session.get(Customer, event.data["customer_number"])
    if customer is None:
        session.add(
            Customer(
                customer_number=event.data["customer_number"],
                company_name=event.data["company_name"],
                source_updated_at=event.occurred_at,
            )
        )
    elif as_utc(customer.source_updated_at) < event.occurred_at:
        customer.company_name = event.data["company_name"]
        customer.source_updated_at = event.occurred_at


def on_contact_changed(session: Session, event: Event) -> None:
    """Keep the newest contacts; an older version arriving late changes nothing."""
    data = event.data
    customer = session.get(Customer, data["customer_number"])
    if customer is None:  # identity spoke first; licensing's event will fill in the rest
        customer = Customer(
            customer_number=data["customer_number"],
            company_name=data["company_name"],
            source_updated_at=event.occurred_at,
            contacts_version=0,
        )
        session.add(customer)
    if data["version"] <= (customer.contacts_version or 0):
        return
    customer.delivery_address = data.get("delivery_address")
    customer.delivery_method = data["delivery_method"]
    customer.contacts_version = data["version"]


HANDLERS = {
    "licensing.customer.created": on_customer_created,
    "identity.customer.contact_changed": on_contact_changed,
}
