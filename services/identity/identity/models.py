"""Identity's tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import utc_now

RIGHTS = ("licenses", "downloads", "documents", "news", "contacts", "users")
DELIVERY_METHODS = ("dvd", "download")


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
    # licensing's customer as last applied: its version (0: none seen, or only events from
    # before licensing numbered them) and when that change happened. An event with a lower
    # version changes nothing (shared.ordering; versionless events go by the time).
    source_updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Counts every change of contacts made here; consumers keep the highest they saw.
    contacts_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    # Stored lower-cased: one person, one address, however they type it.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    staff: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # "pending" (registered, not confirmed), "invited" (no password yet), "active", "disabled"
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, server_default=func.now())
    # The person as last announced to other services (`identity.user.changed`, see people.py),
    # without its version; NULL while never announced. The version counts the announcements.
    announced: Mapped[dict | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Counts every change of this person's memberships and rights. The gateway signs it into
    # the person's identity token; a service whose copy is older asks identity (rule 4: at once).
    access_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Membership(Base):
    """A person's place in one customer profile, with the rights they hold there."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("customer_number", "invitation_id", name="uq_memberships_invitation_id"),)

    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    customer_number: Mapped[str] = mapped_column(
        String(20), ForeignKey("customer_profiles.customer_number"), primary_key=True, index=True
    )
    administrator: Mapped[bool] = mapped_column(Boolean, default=False)
    rights: Mapped[list] = mapped_column(JSON, default=list)
    # Counts every change, so other services can ignore an older event that arrives late.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # When the person joined (for an invitation: accepted it).
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    # "invited" until the person accepts: no access anywhere, not announced as active; shown
    # with the name the administrator typed, never the account's own.
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    # The member's id in the profile's list while invited (kept afterwards as an alias): the
    # account's own id would tell whose account the address is (the forum shows authors' ids).
    invitation_id: Mapped[str | None] = mapped_column(String(36))
    invited_name: Mapped[str | None] = mapped_column(String(200))
    invited_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def effective_rights(self) -> list[str]:
        # "users" is the administrator's right: it comes and goes with the role.
        if self.administrator:
            return list(RIGHTS)
        return [r for r in RIGHTS if r in (self.rights or []) and r != "users"]


class ProfileClaim(Base):
    """The registration that holds a profile: pending until confirmed, then for good.

    The primary key is the customer number, so of any number of people registering one
    profile at once the database lets exactly one in."""

    __tablename__ = "profile_claims"

    customer_number: Mapped[str] = mapped_column(
        String(20), ForeignKey("customer_profiles.customer_number"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # "pending" or "confirmed"
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class Token(Base):
    """A one-time token sent by e-mail (confirm, invitation, password-reset), stored hashed."""

    __tablename__ = "tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    customer_number: Mapped[str | None] = mapped_column(String(20))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
