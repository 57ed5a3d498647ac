"""What distribution does with other services' events (its subscriptions, one line each)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from distribution.models import Customer, Entitlement, Shipment
from shared import memberships
from shared.events import Event
from shared.ordering import supersedes

# Stamped on a customer that identity's contacts created before licensing's event arrived:
# older than any licensing event, so licensing's (even one that happened before the contacts
# changed but arrives after them) still sets the company name.
NOT_YET_FROM_LICENSING = datetime(1970, 1, 1, tzinfo=UTC)


def on_customer_created(session: Session, event: Event) -> None:
    """licensing's customer (created or corrected by staff): the company name, and the billing
    address until the customer has edited its contacts in identity (theirs is newer). The
    highest version of licensing's customer wins (shared.ordering), as with licenses."""
    data = event.data
    customer = session.get(Customer, data["customer_number"], with_for_update=True)
    if customer is None:
        session.add(
            Customer(
                customer_number=data["customer_number"],
                company_name=data["company_name"],
                billing_address=data.get("billing_address"),
                source_updated_at=event.occurred_at,
                source_version=data.get("version") or 0,
            )
        )
    elif supersedes(data.get("version"), event.occurred_at, customer.source_version, customer.source_updated_at):
        customer.company_name = data["company_name"]
        if not customer.contacts_version:
            customer.billing_address = data.get("billing_address")
            _readdress_pending_shipments(session, customer)
        customer.source_updated_at = event.occurred_at
        customer.source_version = data.get("version") or customer.source_version or 0


def on_contact_changed(session: Session, event: Event) -> None:
    """Keep the newest contacts; an older version arriving late changes nothing."""
    data = event.data
    customer = session.get(Customer, data["customer_number"])
    if customer is None:  # identity spoke first; licensing's event will fill in the rest
        customer = Customer(
            customer_number=data["customer_number"],
            company_name=data["company_name"],
            source_updated_at=NOT_YET_FROM_LICENSING,
            source_version=0,
            contacts_version=0,
        )
        session.add(customer)
    if data["version"] <= (customer.contacts_version or 0):
        return
    customer.delivery_address = data.get("delivery_address")
    customer.billing_address = data.get("billing_address") or customer.billing_address
    customer.delivery_method = data["delivery_method"]
    customer.contacts_version = data["version"]
    _readdress_pending_shipments(session, customer)


def _readdress_pending_shipments(session: Session, customer: Customer) -> None:
    """Rule 6: a DVD not posted yet goes to the address the customer has now."""
    session.execute(
        update(Shipment)
        .where(Shipment.customer_number == customer.customer_number, Shipment.status == "pending")
        .values(delivery_address=customer.ship_to)
    )


def on_license_changed(session: Session, event: Event) -> None:
    """Any of the four license events: keep the newest state of the license."""
    data = event.data
    entitlement = session.get(Entitlement, data["installation_number"], with_for_update=True)
    if entitlement is None:
        entitlement = Entitlement(installation_number=data["installation_number"], version=0)
        session.add(entitlement)
    if data["version"] <= entitlement.version:
        return
    entitlement.customer_number = data["customer_number"]
    entitlement.product = data["product"]
    entitlement.edition = data["edition"]
    entitlement.add_ons = list(data["add_ons"])
    entitlement.seats = data["seats"]
    entitlement.status = data["status"]
    entitlement.support_until = data.get("support_until")
    entitlement.version = data["version"]


HANDLERS = {
    "identity.membership.changed": memberships.apply,
    "licensing.license.issued": on_license_changed,
    "licensing.license.registered": on_license_changed,
    "licensing.license.support_changed": on_license_changed,
    "licensing.license.revoked": on_license_changed,
    "licensing.customer.created": on_customer_created,
    # created and updated carry the same fields: the higher version wins either way
    "licensing.customer.updated": on_customer_created,
    "identity.customer.contact_changed": on_contact_changed,
}
