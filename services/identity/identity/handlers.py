"""What identity does with other services' events (its subscriptions, one line each)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from identity import people
from identity.models import CustomerProfile
from shared.events import Event
from shared.ordering import supersedes


def on_customer_created(session: Session, event: Event) -> None:
    data = event.data
    profile = session.get(CustomerProfile, data["customer_number"], with_for_update=True)
    if profile is None:
        session.add(
            CustomerProfile(
                customer_number=data["customer_number"],
                company_id=data["company_id"],
                company_name=data["company_name"],
                billing_address=data.get("billing_address"),
                source_updated_at=event.occurred_at,
                source_version=data.get("version") or 0,
            )
        )
    elif _newer(profile, event):
        profile.company_id = data["company_id"]
        _rename(session, profile, data["company_name"])
        _applied(profile, event)


def on_customer_updated(session: Session, event: Event) -> None:
    """Staff corrected the sales master: the company name follows; the billing address only
    while the customer has not edited its contacts here (theirs is newer)."""
    data = event.data
    profile = session.get(CustomerProfile, data["customer_number"], with_for_update=True)
    if profile is None:
        on_customer_created(session, event)
        return
    if not _newer(profile, event):
        return
    _rename(session, profile, data["company_name"])
    if profile.contacts_version == 0:
        profile.billing_address = data.get("billing_address")
    _applied(profile, event)


def _newer(profile: CustomerProfile, event: Event) -> bool:
    """A higher version of licensing's customer than the one held (shared.ordering)."""
    return supersedes(event.data.get("version"), event.occurred_at, profile.source_version, profile.source_updated_at)


def _applied(profile: CustomerProfile, event: Event) -> None:
    profile.source_updated_at = event.occurred_at
    profile.source_version = event.data.get("version") or profile.source_version or 0


def _rename(session: Session, profile: CustomerProfile, company_name: str) -> None:
    """A new company name reaches the people shown with it (identity.user.changed)."""
    if profile.company_name != company_name:
        profile.company_name = company_name
        people.announce_members(session, profile.customer_number)


HANDLERS = {
    "licensing.customer.created": on_customer_created,
    "licensing.customer.updated": on_customer_updated,
}
