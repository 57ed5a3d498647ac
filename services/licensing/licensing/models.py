"""Licensing's tables."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import utc_now

# Customer numbers are the vendor's, printed on invoices: digits, counted from here.
FIRST_CUSTOMER_NUMBER = 100001
CHANNELS = ("direct", "partner")
# "unregistered": sold by a partner, not yet registered by the customer (no support, not listed)
LICENSE_STATUSES = ("registered", "unregistered", "revoked")
# Who made a customer: staff (the API), a partner's sale (which partner: created_by_partner_id)
# or the CSV importer. None: made before this was recorded (licensing migration 0005).
CUSTOMER_ORIGINS = ("staff", "partner", "import")
# How a partner's write came, each with idempotency keys of its own: the REST API's
# Idempotency-Key, or the message_id of a sale published to the broker (licensing.partner_inbox).
REQUEST_CHANNELS = ("rest", "amqp")


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    company_id: Mapped[str] = mapped_column(String(8), unique=True)
    company_name: Mapped[str] = mapped_column(String(200))
    billing_address: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    # The newest contacts version identity announced (the customer edits them there).
    contacts_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Counts every change of what the customer events carry (1 when created); identity and
    # distribution keep the highest version they saw (shared.ordering), never the latest clock.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_by: Mapped[str | None] = mapped_column(String(10))  # one of CUSTOMER_ORIGINS
    created_by_partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))


class Product(Base):
    """A product of the catalogue with its editions and add-ons (codes and names)."""

    __tablename__ = "products"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    editions: Mapped[list] = mapped_column(JSON, default=list)
    add_ons: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    name: Mapped[str] = mapped_column(String(200))
    # The RabbitMQ user this partner publishes sales as (the broker vouches for it).
    broker_user: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class PartnerKey(Base):
    """An API key of a partner: shown once, stored as SHA-256, revocable."""

    __tablename__ = "partner_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(36), ForeignKey("partners.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class License(Base):
    __tablename__ = "licenses"
    __table_args__ = (
        UniqueConstraint("partner_id", "partner_sale_id", name="uq_licenses_partner_sale"),
        # A customer's license list in each of its orders, from the index alone: a customer
        # with 10,000 licenses is sorted without reading 10,000 rows of the table.
        Index("ix_licenses_list_by_product", "customer_id", "status", "product_code", "edition", "installation_number"),
        Index("ix_licenses_list_by_support", "customer_id", "status", "support_until", "installation_number"),
        # Has this partner sold to this customer before? (what a partner's sale is told)
        Index("ix_licenses_partner_customer", "partner_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    installation_number: Mapped[str] = mapped_column(String(20), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    product_code: Mapped[str] = mapped_column(ForeignKey("products.code"))
    edition: Mapped[str] = mapped_column(String(60))
    add_ons: Mapped[list] = mapped_column(JSON, default=list)
    seats: Mapped[int] = mapped_column(Integer, default=1)
    channel: Mapped[str] = mapped_column(String(10))
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))
    partner_sale_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    sold_on: Mapped[date] = mapped_column(Date)
    support_until: Mapped[date | None] = mapped_column(Date, index=True)
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A partner's sale that landed on a customer which existed already and which this partner
    # had not sold to before: the partner was not told the customer number, and staff review it.
    matched_existing_customer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Counts every change; consumers keep the highest version they saw.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class IdempotentRequest(Base):
    """A partner's write by idempotency key: the same key and body get the same answer. Each
    channel has keys of its own (REQUEST_CHANNELS): a REST `Idempotency-Key` never meets a
    broker message's `message_id`, whatever the two spell."""

    __tablename__ = "idempotent_requests"

    partner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)  # one of REQUEST_CHANNELS
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
