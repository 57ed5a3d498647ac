"""The sales master's customers: created by staff (direct sales), by partners' sales or by the
importer, each recording who made it.

Every announced change bumps the customer's `version` under the row's lock, and the events
carry it with the whole new state: replicas order the changes by it, so two licensing
replicas with clocks apart (or two changes in one clock tick) cannot make them keep an older
state."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from licensing.models import FIRST_CUSTOMER_NUMBER, Customer
from shared.outbox import add_event


class CustomerExists(Exception):
    def __init__(self, customer: Customer):
        super().__init__(f"a customer with company ID {customer.company_id} exists")
        # Plain values: the session that loaded the customer is rolled back when this propagates.
        self.company_id = customer.company_id
        self.customer_number = customer.customer_number


def create_customer(
    session: Session,
    company_id: str,
    company_name: str,
    billing_address: dict | None,
    *,
    created_by: str = "staff",
    partner_id: str | None = None,
) -> Customer:
    """Add a customer and announce it; one company ID is one customer. `created_by` is one of
    CUSTOMER_ORIGINS (with the partner's id for "partner")."""
    existing = session.scalars(select(Customer).where(Customer.company_id == company_id)).one_or_none()
    if existing is not None:
        raise CustomerExists(existing)
    customer = Customer(
        company_id=company_id,
        company_name=company_name,
        billing_address=billing_address,
        version=1,
        created_by=created_by,
        created_by_partner_id=partner_id,
    )
    try:
        with session.begin_nested():
            session.add(customer)
            session.flush()
    except IntegrityError:  # someone created it between our check and our insert
        raise CustomerExists(session.scalars(select(Customer).where(Customer.company_id == company_id)).one()) from None
    customer.customer_number = str(FIRST_CUSTOMER_NUMBER + customer.id - 1)
    add_event(session, "licensing.customer.created", _customer_data(customer), producer="licensing")
    return customer


def update_customer(session: Session, customer_number: str, **changes) -> Customer | None:
    """Staff correct the sales master (company name, billing address); others hear of it."""
    customer = session.scalars(
        select(Customer).where(Customer.customer_number == customer_number).with_for_update()
    ).one_or_none()
    if customer is None:
        return None
    for name, value in changes.items():
        setattr(customer, name, value)
    customer.version += 1
    add_event(session, "licensing.customer.updated", _customer_data(customer), producer="licensing")
    return customer


def apply_contacts(session: Session, data: dict) -> None:
    """The customer changed its contacts in identity: invoicing uses the new billing address."""
    customer = session.scalars(
        select(Customer).where(Customer.customer_number == data["customer_number"]).with_for_update()
    ).one_or_none()
    if customer is not None and data["version"] > customer.contacts_version:
        customer.billing_address = data.get("billing_address") or customer.billing_address
        customer.contacts_version = data["version"]


def _customer_data(customer: Customer) -> dict:
    return {
        "customer_number": customer.customer_number,
        "company_id": customer.company_id,
        "company_name": customer.company_name,
        "billing_address": customer.billing_address,
        "version": customer.version,
    }
