"""Distribution's tables."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, DateTime, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import utc_now

NEWS_KINDS = ("news", "event", "training")


class Base(DeclarativeBase):
    pass


class Customer(Base):
    """Replica of the customers distribution ships to (from licensing's and identity's events)."""

    __tablename__ = "customers"

    customer_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    company_name: Mapped[str] = mapped_column(String(200))
    source_updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # From identity: where DVDs go and whether the customer wants them at all.
    delivery_address: Mapped[dict | None] = mapped_column(JSON)
    delivery_method: Mapped[str] = mapped_column(String(10), default="download", server_default="download")
    contacts_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


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
