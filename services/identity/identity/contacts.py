"""Rules 6-7: billing and delivery addresses and the delivery method of a profile.

Each change bumps the profile's contacts version and is announced with the whole new state
(`identity.customer.contact_changed`), so distribution ships DVDs to the current address."""

from __future__ import annotations

from sqlalchemy.orm import Session

from identity.models import CustomerProfile
from shared.outbox import add_event


def update(session: Session, customer_number: str, **changes) -> CustomerProfile:
    profile = session.get(CustomerProfile, customer_number, with_for_update=True)
    for field, value in changes.items():
        setattr(profile, field, value)
    profile.contacts_version += 1
    session.flush()
    add_event(
        session,
        "identity.customer.contact_changed",
        {
            "customer_number": profile.customer_number,
            "company_name": profile.company_name,
            "billing_address": profile.billing_address,
            "delivery_address": profile.delivery_address,
            "delivery_method": profile.delivery_method,
            "version": profile.contacts_version,
        },
        producer="identity",
    )
    return profile
