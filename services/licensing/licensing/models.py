"""Licensing's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import utc_now

# Customer numbers are the vendor's, printed on invoices: digits, counted from here.
FIRST_CUSTOMER_NUMBER = 100001


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
