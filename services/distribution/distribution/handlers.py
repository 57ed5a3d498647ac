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


HANDLERS = {
    "licensing.customer.created": on_customer_created,
}
