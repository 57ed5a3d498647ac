"""Identity's tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import utc_now


class Base(DeclarativeBase):
    pass


class CustomerProfile(Base):
    """A customer company as identity knows it: the keys for registration plus contacts."""

    __tablename__ = "customer_profiles"

    customer_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    company_id: Mapped[str] = mapped_column(String(8), index=True)
    company_name: Mapped[str] = mapped_column(String(200))
    billing_address: Mapped[dict | None] = mapped_column(JSON)
    delivery_address: Mapped[dict | None] = mapped_column(JSON)
    delivery_method: Mapped[str] = mapped_column(String(10), default="download")
    # When licensing's sales master last spoke about this customer: older events lose.
    source_updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    # Stored lower-cased: one person, one address, however they type it.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    staff: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, server_default=func.now())
