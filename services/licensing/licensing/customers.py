"""The sales master's customers: created by staff (direct sales) or by partners' sales."""

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


def create_customer(session: Session, company_id: str, company_name: str, billing_address: dict | None) -> Customer:
    """Add a customer and announce it; one company ID is one customer."""
    existing = session.scalars(select(Customer).where(Customer.company_id == company_id)).one_or_none()
    if existing is not None:
        raise CustomerExists(existing)
    customer = Customer(company_id=company_id, company_name=company_name, billing_address=billing_address)
    try:
        with session.begin_nested():
            session.add(customer)
            session.flush()
    except IntegrityError:  # someone created it between our check and our insert
        raise CustomerExists(session.scalars(select(Customer).where(Customer.company_id == company_id)).one()) from None
    customer.customer_number = str(FIRST_CUSTOMER_NUMBER + customer.id - 1)
    add_event(
        session,
        "licensing.customer.created",
        {
            "customer_number": customer.customer_number,
            "company_id": customer.company_id,
            "company_name": customer.company_name,
            "billing_address": customer.billing_address,
        },
        producer="licensing",
    )
    return customer
