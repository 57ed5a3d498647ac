"""Demo accounts for `make run`: an administrator and a colleague with limited rights in a
demo customer's profile, made through the same domain functions as the API (so the same
events are announced), with the e-mail steps taken on the newcomer's behalf."""

from __future__ import annotations

import time

from sqlalchemy import select

from identity import accounts, memberships, registration, tokens
from identity.models import CustomerProfile, Membership
from shared.config import Settings
from shared.db import Database

COLLEAGUE_RIGHTS = ["downloads", "news"]


def ensure_demo_accounts(
    settings: Settings,
    customer_number: str,
    admin: tuple[str, str, str],
    colleague: tuple[str, str, str],
    wait: float = 30,
) -> None:
    """`admin` and `colleague` are (e-mail, name, password); does nothing for accounts that exist."""
    database = Database(settings.database_url)
    company_id = _wait_for_profile(database, customer_number, wait)
    admin_email, admin_name, admin_password = admin
    with database.unit_of_work() as session:
        if accounts.find_user(session, admin_email) is None:
            registration.register(
                session,
                customer_number=customer_number,
                company_id=company_id,
                email=admin_email,
                password=admin_password,
                name=admin_name,
                public_url=settings.public_url,
                ttl_seconds=settings.registration_confirm_ttl,
            )
            user = accounts.find_user(session, admin_email)
            raw, _ = tokens.issue(session, tokens.CONFIRM, user.id, 60, customer_number)
            registration.confirm(session, raw)
    email, name, password = colleague
    with database.unit_of_work() as session:
        inviter = accounts.find_user(session, admin_email)
        user = accounts.find_user(session, email)
        membership = session.get(Membership, (user.id, customer_number)) if user is not None else None
        if membership is None:
            membership, user = memberships.add_member(
                session,
                customer_number=customer_number,
                email=email,
                name=name,
                rights=COLLEAGUE_RIGHTS,
                inviter=inviter.name,
                public_url=settings.public_url,
                invitation_ttl=60,
            )
        if membership.status == "invited":
            raw, _ = tokens.issue(session, tokens.INVITATION, user.id, 60, customer_number)
            accounts.accept_invitation(session, raw, password)
    database.dispose()


def _wait_for_profile(database: Database, customer_number: str, wait: float) -> str:
    """The profile arrives by event from licensing; give it a moment on a fresh start."""
    deadline = time.monotonic() + wait
    while True:
        with database.unit_of_work() as session:
            company_id = session.scalar(
                select(CustomerProfile.company_id).where(CustomerProfile.customer_number == customer_number)
            )
        if company_id:
            return company_id
        if time.monotonic() > deadline:
            raise SystemExit(f"customer {customer_number} has not reached identity; is its consumer running?")
        time.sleep(0.2)
