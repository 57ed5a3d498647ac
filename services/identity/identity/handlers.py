"""What identity does with other services' events (its subscriptions, one line each)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from identity import people
from identity.models import CustomerProfile
from shared.db import as_utc
from shared.events import Event


def on_customer_created(session: Session, event: Event) -> None:
    data = event.data
    profile = session.get(CustomerProfile, data["customer_number"])
    if profile is None:
        session.add(
            CustomerProfile(
                customer_number=data["customer_number"],
                company_id=data["company_id"],
                company_name=data["company_name"],
                billing_address=data.get("billing_address"),
                source_updated_at=event.occurred_at,
            )
        )
    elif as_utc(profile.source_updated_at) < event.occurred_at:
        profile.company_id = data["company_id"]
        _rename(session, profile, data["company_name"])
        profile.source_updated_at = event.occurred_at


def on_customer_updated(session: Session, event: Event) -> None:
    """Staff corrected the sales master: the company name follows; the billing address only
    while the customer has not edited its contacts here (theirs is newer)."""
    data = event.data
    profile = session.get(CustomerProfile, data["customer_number"])
    if profile is None:
        on_customer_created(session, event)
        return
    if as_utc(profile.source_updated_at) >= event.occurred_at:
        return
    _rename(session, profile, data["company_name"])
    if profile.contacts_version == 0:
        profile.billing_address = data.get("billing_address")
    profile.source_updated_at = event.occurred_at


def _rename(session: Session, profile: CustomerProfile, company_name: str) -> None:
    """A new company name reaches the people shown with it (identity.user.changed)."""
    if profile.company_name != company_name:
        profile.company_name = company_name
        people.announce_members(session, profile.customer_number)


HANDLERS = {
    "licensing.customer.created": on_customer_created,
    "licensing.customer.updated": on_customer_updated,
}
