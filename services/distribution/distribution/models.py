"""Distribution's tables."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import utc_now

NEWS_KINDS = ("news", "event", "training")
RELEASE_KINDS = ("full", "update")
CHANNELS = ("stable", "beta")
SHIPMENT_STATUSES = ("pending", "sent")


class Base(DeclarativeBase):
    pass


class Customer(Base):
    """Replica of the customers distribution ships to (from licensing's and identity's events)."""

    __tablename__ = "customers"

    customer_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    company_name: Mapped[str] = mapped_column(String(200))
    # licensing's customer as last applied: its version (0: none seen, or only events from
    # before licensing numbered them) and when that change happened (shared.ordering).
    source_updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # From identity: where DVDs go and whether the customer wants them at all. The billing
    # address (licensing's until the customer edits contacts, then identity's) stands in for a
    # delivery address never set, as the portal tells the customer.
    delivery_address: Mapped[dict | None] = mapped_column(JSON)
    billing_address: Mapped[dict | None] = mapped_column(JSON)
    delivery_method: Mapped[str] = mapped_column(String(10), default="download", server_default="download")
    contacts_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def ship_to(self) -> dict | None:
        """Where a DVD goes: the delivery address, else the billing address."""
        return self.delivery_address or self.billing_address


class NewsItem(Base):
    """A vendor announcement: news, an event, or a training course with its date and city."""

    __tablename__ = "news"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    city: Mapped[str | None] = mapped_column(String(100))
    capacity: Mapped[int | None] = mapped_column(Integer)


class Entitlement(Base):
    """A license as distribution needs it to decide downloads (from licensing's events)."""

    __tablename__ = "entitlements"

    installation_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    customer_number: Mapped[str] = mapped_column(String(20), index=True)
    product: Mapped[str] = mapped_column(String(40))
    edition: Mapped[str] = mapped_column(String(60))
    add_ons: Mapped[list] = mapped_column(JSON, default=list)
    seats: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    support_until: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)


class Release(Base):
    """A new version (`full` installer) or a partial `update` of a product."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("product", "version", "kind", "channel", name="uq_releases_identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(10), default="stable")
    released_on: Mapped[date] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")
    # For an update: the versions it applies to (empty: any older version).
    applies_to: Mapped[list] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ReleaseFile(Base):
    """A file of a release or a document, kept in storage under `storage_key`."""

    __tablename__ = "files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Document(Base):
    """A document for customers (manuals, price lists), with files."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    product: Mapped[str | None] = mapped_column(String(40))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class DownloadRecord(Base):
    """One download started: who, what, when (the customer's history, the vendor's counts)."""

    __tablename__ = "download_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"), index=True)
    customer_number: Mapped[str] = mapped_column(String(20), index=True)
    user_id: Mapped[str | None] = mapped_column(String(36))
    installation_number: Mapped[str | None] = mapped_column(String(20))
    ranged: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, index=True)


class Shipment(Base):
    """A DVD of a full release posted to a customer who chose DVD delivery: one per
    customer and release, to the customer's current address until it is sent."""

    __tablename__ = "shipments"
    __table_args__ = (UniqueConstraint("customer_number", "release_id", name="uq_shipments_once"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_number: Mapped[str] = mapped_column(String(20), index=True)
    company_name: Mapped[str] = mapped_column(String(200))
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    delivery_address: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
