"""Memberships as the services that own profile data keep them: who may act for which
customer with which rights, learnt from identity's `identity.membership.changed` events.

Each service checks membership and rights itself, in its own database, on every request
(never only the gateway): another customer's data is a `404`, a missing right a `403`.
Services create the tables with `create_table(op)` and `add_access_versions(op)` in their
migrations and subscribe `apply`.

A change counts at once (product rule 4), with the broker up or down: identity numbers every
change of a person's memberships (`access_version`, one counter per person), the gateway puts
the person's current number into the signed identity token, and a service whose copy is older
than the token asks identity for the person's memberships before it decides (`refresh`). So
the events keep the copy current for everything else, and the request right after an
administrator's change never meets a stale copy. A token without a number (anonymous,
another service, a session older than this mechanism) is checked against the copy alone.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import urllib3
from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.orm import Session

from shared import auth
from shared.auth import Principal
from shared.config import Settings
from shared.db import insert_or_skip
from shared.events import Event
from shared.ordering import supersedes
from shared.problems import Problem

metadata = MetaData()

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("customer_number", String(20), primary_key=True),
    Column("rights", JSON, nullable=False),
    Column("active", Boolean, nullable=False),
    # When identity made the change: orders events that carry no access_version (older ones).
    Column("changed_at", DateTime(timezone=True), nullable=False),
    # The person's access_version this row reflects: a newer one wins, an older one is ignored.
    Column("access_version", Integer, nullable=False, server_default="0"),
)

# Per person: the access_version up to which this copy is known complete (set by `refresh`).
access_versions = Table(
    "access_versions",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("version", Integer, nullable=False),
)


def create_table(op) -> None:
    """The memberships table as the first migrations made it (access versions came later)."""
    import sqlalchemy as sa

    op.create_table(
        "memberships",
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("customer_number", sa.String(20), primary_key=True),
        sa.Column("rights", sa.JSON, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )


def add_access_versions(op) -> None:
    import sqlalchemy as sa

    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("access_version", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "access_versions",
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def drop_access_versions(op) -> None:
    op.drop_table("access_versions")
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("access_version")


class NotAMember(Problem):
    """Answered as 404: other profiles' existence is not disclosed."""

    def __init__(self, customer_number: str = ""):
        super().__init__(404, "not-found", "Not found", "No such customer profile.")
        self.customer_number = customer_number


class MissingRight(Problem):
    def __init__(self, right: str):
        super().__init__(403, "missing-right", "Forbidden", f"This needs the right '{right}'.", right=right)
        self.right = right


def require(session: Session, principal: Principal, customer_number: str, right: str, *, customer_exists) -> None:
    """Raises NotAMember (a 404 problem) or MissingRight (403). Staff may read any existing customer's data
    (`customer_exists(session, customer_number)` says whether it exists)."""
    if principal.staff:
        if customer_exists(session, customer_number):
            return
        raise NotAMember(customer_number)
    refresh_if_stale(session, principal)
    row = session.execute(
        select(memberships.c.rights, memberships.c.active).where(
            memberships.c.user_id == principal.user_id, memberships.c.customer_number == customer_number
        )
    ).one_or_none()
    if row is None or not row.active:
        raise NotAMember(customer_number)
    if right not in (row.rights or []):
        raise MissingRight(right)


def require_anywhere(session: Session, principal: Principal, right: str) -> None:
    """For what no one profile owns (e.g. the vendor's news): staff, or `right` in at least one
    of the caller's active memberships; MissingRight (403) otherwise."""
    if principal.staff:
        return
    refresh_if_stale(session, principal)
    rows = session.execute(
        select(memberships.c.rights).where(memberships.c.user_id == principal.user_id, memberships.c.active)
    ).all()
    if not any(right in (row.rights or []) for row in rows):
        raise MissingRight(right)


def holds(session: Session, user_id: str, customer_number: str, right: str) -> bool:
    """Whether the person holds `right` in the profile as identity says now (asked, not the
    copy): for what has no signed caller to compare with, such as a download link in use."""
    snapshot = identity_access().fetch(user_id)
    store(session, snapshot)
    return any(m.customer_number == customer_number and right in m.rights for m in snapshot.memberships)


def refresh_if_stale(session: Session, principal: Principal) -> None:
    """Bring the copy of the caller's memberships up to the version their token carries."""
    if not principal.access_version or principal.user_id is None:
        return
    known = session.execute(
        select(access_versions.c.version).where(access_versions.c.user_id == principal.user_id)
    ).scalar_one_or_none()
    if known is not None and known >= principal.access_version:
        return
    store(session, identity_access().fetch(principal.user_id), at_least=principal.access_version)


@dataclass(frozen=True)
class Granted:
    customer_number: str
    rights: tuple[str, ...]


@dataclass(frozen=True)
class Snapshot:
    """A person's memberships that give access, as identity answered, at its access_version."""

    user_id: str
    access_version: int
    memberships: tuple[Granted, ...]
    as_of: datetime


def store(session: Session, snapshot: Snapshot, at_least: int = 0) -> None:
    """Make the copy what identity answered: its memberships active with their rights, every
    other one of the person's inactive; rows that a newer event already set stay as they are.
    The copy is then complete up to the snapshot's version, or `at_least` (the token's: identity
    answered after that change was committed, or rolled back)."""
    version = snapshot.access_version
    dialect = session.get_bind().dialect.name
    granted = {m.customer_number: list(m.rights) for m in snapshot.memberships}
    known = {
        row.customer_number: row.access_version
        for row in session.execute(
            select(memberships.c.customer_number, memberships.c.access_version)
            .where(memberships.c.user_id == snapshot.user_id)
            .with_for_update()
        )
    }
    for customer_number in granted.keys() - known.keys():
        session.execute(
            insert_or_skip(dialect, memberships).values(
                user_id=snapshot.user_id,
                customer_number=customer_number,
                rights=granted[customer_number],
                active=True,
                changed_at=snapshot.as_of,
                access_version=version,
            )
        )
    for customer_number, row_version in known.items():
        if row_version >= version:
            continue
        session.execute(
            update(memberships)
            .where(
                memberships.c.user_id == snapshot.user_id,
                memberships.c.customer_number == customer_number,
                memberships.c.access_version < version,
            )
            .values(
                rights=granted.get(customer_number, []),
                active=customer_number in granted,
                changed_at=snapshot.as_of,
                access_version=version,
            )
        )
    complete = max(version, at_least)
    session.execute(insert_or_skip(dialect, access_versions).values(user_id=snapshot.user_id, version=complete))
    session.execute(
        update(access_versions)
        .where(access_versions.c.user_id == snapshot.user_id, access_versions.c.version < complete)
        .values(version=complete)
    )


def apply(session: Session, event: Event) -> None:
    """The handler for `identity.membership.changed`: keep the newest state; an older event
    arriving late changes nothing. Events carry the person's access_version (newer wins);
    those from before it was counted are ordered by when the change was made
    (`shared.ordering.supersedes`)."""
    data, changed_at = event.data, event.occurred_at
    version = data.get("access_version") or 0
    key = (memberships.c.user_id == data["user_id"]) & (memberships.c.customer_number == data["customer_number"])
    current = session.execute(
        select(memberships.c.changed_at, memberships.c.access_version).where(key).with_for_update()
    ).one_or_none()
    values = {"rights": list(data["rights"]), "active": data["active"], "changed_at": changed_at}
    if current is None:
        session.execute(
            insert(memberships).values(
                user_id=data["user_id"], customer_number=data["customer_number"], access_version=version, **values
            )
        )
    elif supersedes(version, changed_at, current.access_version, current.changed_at):
        if version:
            values["access_version"] = version
        session.execute(update(memberships).where(key).values(**values))


# --- asking identity ------------------------------------------------------------------------
class IdentityAccess:
    """The client of identity's `GET /internal/v1/people/{id}/access`, one per process."""

    PATH = "/internal/v1/people/{user_id}/access"

    def __init__(self, settings: Settings, timeout: float = 3.0):
        self.settings = settings
        self.pool = urllib3.connection_from_url(
            settings.service_urls["identity"],
            maxsize=16,
            block=False,
            retries=False,
            timeout=urllib3.Timeout(connect=1.0, read=timeout),
        )
        self.caller = Principal(subject=settings.service, kind="service")

    def fetch(self, user_id: str) -> Snapshot:
        token = auth.issue(self.settings.require_secret(), "identity", self.caller)
        try:
            answer = self.pool.request(
                "GET",
                self.PATH.format(user_id=user_id),
                headers={auth.HEADER: token, "Accept": "application/json"},
            )
            if answer.status != 200:
                raise ValueError(f"identity answered {answer.status}")
            body = json.loads(answer.data)
            return Snapshot(
                user_id=user_id,
                access_version=int(body["access_version"]),
                memberships=tuple(
                    Granted(m["customer_number"], tuple(m["rights"])) for m in body["memberships"] if m["active"]
                ),
                as_of=datetime.fromisoformat(body["as_of"]).astimezone(UTC),
            )
        except (urllib3.exceptions.HTTPError, ValueError, KeyError, TypeError) as error:
            raise Problem(
                503,
                "service-unavailable",
                "Temporarily unavailable",
                "Your rights in this profile could not be confirmed just now. Try again shortly.",
                headers={"Retry-After": "5"},
            ) from error


_clients_lock = threading.Lock()


def identity_access() -> IdentityAccess:
    """The current app's client of identity (made once per app, from its settings)."""
    from flask import current_app

    client = current_app.extensions.get("identity_access")
    if client is None:
        with _clients_lock:
            client = current_app.extensions.get("identity_access")
            if client is None:
                client = current_app.extensions["identity_access"] = IdentityAccess(current_app.extensions["settings"])
    return client
