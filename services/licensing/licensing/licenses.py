"""Licenses: direct sales by staff, partners' sales, product registration, support (SERVIS).

Every change of a license bumps its version and is announced with the whole new state
(`licensing.license.issued|registered|support_changed|revoked`), which is what distribution
needs to decide entitlement to downloads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from licensing import installation_numbers
from licensing.customers import CustomerExists, create_customer
from licensing.models import Customer, License, Partner, Product
from licensing.partners import record_answer
from shared.db import insert_or_skip, utc_now
from shared.outbox import add_event

# A partner-sold license's support (SERVIS) starts when the customer registers it.
SUPPORT_AFTER_REGISTRATION = timedelta(days=365)


class UnknownProduct(ValueError):
    pass


class UnknownCustomer(LookupError):
    pass


class RegistrationRefused(Exception):
    """Unknown number, or not this customer's sale: one answer for both."""


class AlreadyRegistered(Exception):
    pass


class UnknownLicense(LookupError):
    pass


@dataclass(frozen=True)
class Sale:
    """What a partner reports, over REST or RabbitMQ (already validated at the edge)."""

    partner_sale_id: str
    company_id: str
    company_name: str
    billing_address: dict | None
    customer_number: str | None
    product: str
    edition: str
    add_ons: list[str]
    seats: int
    sold_on: date


@dataclass(frozen=True)
class RecordedSale:
    """A partner's sale as recorded: its license, the customer's number, and whether this
    call made the license (False: the same sale was recorded before)."""

    license: License
    customer_number: str
    created: bool

    def answer(self) -> dict:
        """What the partner is told, the first time and on every replay: the customer number
        only if the partner knew the customer already (api.md), never one a sale fished for."""
        return {
            "installation_number": self.license.installation_number,
            "customer_number": None if self.license.matched_existing_customer else self.customer_number,
            "status": self.license.status,
        }


def check_product(session: Session, code: str, edition: str, add_ons: list[str]) -> Product:
    product = session.get(Product, code)
    if product is None:
        raise UnknownProduct(f"There is no product {code!r}.")
    if edition not in product.editions:
        raise UnknownProduct(f"{product.name} has no edition {edition!r} (it has {', '.join(product.editions)}).")
    unknown = [a for a in add_ons if a not in product.add_ons]
    if unknown:
        raise UnknownProduct(f"{product.name} has no add-on {', '.join(map(repr, unknown))}.")
    return product


def issue_direct(
    session: Session,
    customer_number: str,
    product: str,
    edition: str,
    add_ons: list[str],
    seats: int,
    support_until: date | None,
) -> License:
    """A direct sale by the vendor's staff: registered at once."""
    customer = session.scalars(select(Customer).where(Customer.customer_number == customer_number)).one_or_none()
    if customer is None:
        raise UnknownCustomer(customer_number)
    check_product(session, product, edition, add_ons)
    license_ = _new_license(
        session,
        customer=customer,
        product_code=product,
        edition=edition,
        add_ons=add_ons,
        seats=seats,
        channel="direct",
        status="registered",
        sold_on=utc_now().date(),
        support_until=support_until,
        registered_at=utc_now(),
    )
    announce(session, license_, "licensing.license.issued")
    return license_


def accept_partner_sale(session: Session, partner: Partner, channel: str, key: str, sale: Sale) -> RecordedSale:
    """A partner's sale under the idempotency key of `channel` the caller claimed (REST's
    Idempotency-Key, the broker's message id): the license, its event and the answer kept for
    replays of the key, in the caller's transaction. Raises UnknownProduct."""
    recorded = record_partner_sale(session, partner, sale)
    record_answer(session, partner.id, channel, key, 201, json.dumps(recorded.answer()))
    return recorded


def record_partner_sale(session: Session, partner: Partner, sale: Sale) -> RecordedSale:
    """A partner's sale becomes an unregistered license, once: the same partner_sale_id again
    returns the license it made the first time. A sale to a company that is a customer
    already lands on that customer; unless the partner knew it (`_known_to`), the license is
    marked `matched_existing_customer` and the partner is not told the customer number."""
    known = _recorded_sale(session, partner, sale)
    if known is not None:
        return known
    check_product(session, sale.product, sale.edition, sale.add_ons)
    customer, created = _customer_for_sale(session, partner, sale)
    matched_existing = not created and not _known_to(session, partner, customer)
    for _ in range(INSTALLATION_NUMBER_DRAWS):
        license_ = _insert_license(
            session,
            customer=customer,
            product_code=sale.product,
            edition=sale.edition,
            add_ons=sale.add_ons,
            seats=sale.seats,
            channel="partner",
            partner_id=partner.id,
            partner_sale_id=sale.partner_sale_id,
            status="unregistered",
            sold_on=sale.sold_on,
            support_until=None,
            matched_existing_customer=matched_existing,
        )
        if license_ is not None:
            announce(session, license_, "licensing.license.issued", customer)
            return RecordedSale(license_, customer.customer_number, created=True)
        # Skipped: either the same sale arrived by another path at the same moment (its
        # transaction has committed by now), or the installation number was taken.
        known = _recorded_sale(session, partner, sale)
        if known is not None:
            return known
    raise RuntimeError("could not draw a free installation number")


def _recorded_sale(session: Session, partner: Partner, sale: Sale) -> RecordedSale | None:
    row = session.execute(
        select(License, Customer.customer_number)
        .join(Customer, Customer.id == License.customer_id)
        .where(License.partner_id == partner.id, License.partner_sale_id == sale.partner_sale_id)
    ).one_or_none()
    return RecordedSale(row[0], row[1], created=False) if row is not None else None


def _customer_for_sale(session: Session, partner: Partner, sale: Sale) -> tuple[Customer, bool]:
    """The sale's customer by company ID, and whether this sale made it: a company that is not
    a customer yet becomes one, made by this partner."""
    customer = session.scalars(select(Customer).where(Customer.company_id == sale.company_id)).one_or_none()
    if customer is not None:
        return customer, False
    try:
        address = sale.billing_address
        made = create_customer(
            session, sale.company_id, sale.company_name, address, created_by="partner", partner_id=partner.id
        )
        return made, True
    except CustomerExists:  # created by a concurrent sale (perhaps this partner's: see _known_to)
        return session.scalars(select(Customer).where(Customer.company_id == sale.company_id)).one(), False


def _known_to(session: Session, partner: Partner, customer: Customer) -> bool:
    """Whether the partner has sold to the customer before: one of its sales made the customer,
    or an earlier sale of its was answered with the number or registered by the customer (a
    second invented sale proves no more than the first)."""
    if customer.created_by_partner_id == partner.id:
        return True
    earlier = session.scalar(
        select(License.id)
        .where(
            License.partner_id == partner.id,
            License.customer_id == customer.id,
            or_(License.matched_existing_customer.is_(False), License.registered_at.is_not(None)),
        )
        .limit(1)
    )
    return earlier is not None


def register_product(session: Session, customer_number: str, typed_number: str) -> License:
    """Rule 9: the customer registers a partner-sold license with its installation number."""
    number = installation_numbers.normalise(typed_number)  # raises InvalidInstallationNumber first
    row = session.execute(
        select(License, Customer.customer_number)
        .join(Customer, Customer.id == License.customer_id)
        .where(License.installation_number == number)
        .with_for_update(of=License)
    ).one_or_none()
    if row is None or row[1] != customer_number or row[0].status == "revoked":
        raise RegistrationRefused()
    license_ = row[0]
    if license_.status == "registered":
        raise AlreadyRegistered()
    now = utc_now()
    license_.status = "registered"
    license_.registered_at = now
    license_.support_until = (now + SUPPORT_AFTER_REGISTRATION).date()
    license_.version += 1
    announce(session, license_, "licensing.license.registered")
    return license_


def change_support(session: Session, number: str, support_until: date | None, revoke: bool = False) -> License:
    license_ = session.scalars(
        select(License).where(License.installation_number == number).with_for_update()
    ).one_or_none()
    if license_ is None:
        raise UnknownLicense(number)
    license_.version += 1
    if revoke:
        license_.status = "revoked"
        license_.support_until = None
        announce(session, license_, "licensing.license.revoked")
    else:
        license_.support_until = support_until
        announce(session, license_, "licensing.license.support_changed")
    return license_


# 83 random bits: a collision is practically impossible, but the unique index decides.
INSTALLATION_NUMBER_DRAWS = 5


def _new_license(session: Session, customer: Customer, **fields) -> License:
    for _ in range(INSTALLATION_NUMBER_DRAWS):
        license_ = _insert_license(session, customer, **fields)
        if license_ is not None:
            return license_
    raise RuntimeError("could not draw a free installation number")


def _insert_license(session: Session, customer: Customer, **fields) -> License | None:
    """A license with a freshly drawn installation number; None when a unique key was taken
    (the number, or the partner's sale id)."""
    return session.scalars(
        insert_or_skip(session.get_bind().dialect.name, License)
        .values(installation_number=installation_numbers.new(), customer_id=customer.id, version=1, **fields)
        .returning(License)
    ).one_or_none()


def announce(session: Session, license_: License, event_type: str, customer: Customer | None = None) -> None:
    customer = customer or session.get(Customer, license_.customer_id)
    add_event(
        session,
        event_type,
        {
            "installation_number": license_.installation_number,
            "customer_number": customer.customer_number,
            "product": license_.product_code,
            "edition": license_.edition,
            "add_ons": list(license_.add_ons or []),
            "seats": license_.seats,
            "channel": license_.channel,
            "status": license_.status,
            "support_until": license_.support_until.isoformat() if license_.support_until else None,
            "version": license_.version,
        },
        producer="licensing",
    )
