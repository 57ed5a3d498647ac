"""Releases, what a customer is entitled to, and what publishing a release sets off.

Entitlement (rule 10): a customer may download a published release of a product it holds a
registered license for, when the release date is not after that license's support end. A
release that came out while support ran stays downloadable after support ends; a revoked or
unregistered license entitles nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from distribution.models import Customer, Entitlement, NewsItem, Release, ReleaseFile, Shipment
from shared.db import insert_or_skip, utc_now


def entitled_releases(session: Session, customer_number: str, product: str | None = None):
    """Published releases the customer may download, newest first."""
    licensed = (
        select(Entitlement.installation_number)
        .where(
            Entitlement.product == Release.product,
            Entitlement.customer_number == customer_number,
            Entitlement.status == "registered",
            Entitlement.support_until.is_not(None),
            Release.released_on <= Entitlement.support_until,
        )
        .exists()
    )
    entitled = (
        select(Release)
        .where(Release.published_at.is_not(None), licensed)
        .order_by(Release.product, Release.released_on.desc(), Release.id.desc())
    )
    if product is not None:
        entitled = entitled.where(Release.product == product)
    return session.scalars(entitled).all()


def newest_update_for(session: Session, entitlement: Entitlement, current_version: str, channel: str) -> Release | None:
    """The newest published release of the installation's product in its channel, newer than
    `current_version`, released while its support ran."""
    if entitlement.status != "registered" or entitlement.support_until is None:
        return None
    channels = ("stable",) if channel == "stable" else ("stable", "beta")
    candidates = session.scalars(
        select(Release).where(
            Release.product == entitlement.product,
            Release.published_at.is_not(None),
            Release.channel.in_(channels),
            Release.released_on <= entitlement.support_until,
        )
    ).all()
    newer = [r for r in candidates if version_key(r.version) > version_key(current_version)]
    newer = [r for r in newer if r.kind == "full" or not r.applies_to or current_version in r.applies_to] or [
        r for r in newer if r.kind == "full"
    ]
    return max(newer, key=lambda r: (version_key(r.version), r.kind == "full"), default=None)


def version_key(version: str) -> tuple:
    """Compare versions by their numeric parts (12.10 after 12.9); text parts sort after."""
    parts = []
    for part in version.replace("-", ".").split("."):
        parts.append((0, int(part), "") if part.isdigit() else (1, 0, part))
    return tuple(parts)


def publish(session: Session, release: Release) -> bool:
    """Make a release visible, once: publishing again changes nothing. A full release sends
    a DVD to every entitled customer who chose DVD delivery and is announced as news."""
    if release.published_at is not None:
        return False
    release.published_at = utc_now()
    if release.kind == "full":
        _ship_dvds(session, release)
    what = "nová verze" if release.kind == "full" else "aktualizace"
    session.add(
        NewsItem(
            kind="news",
            title=f"{release.product} {release.version}: {what}",
            # A news item always has a body (the API promises one): release notes are optional.
            body=release.notes or f"{what.capitalize()} {release.version} je ke stažení v Zákaznickém centru.",
            published_at=release.published_at,
        )
    )
    return True


def _ship_dvds(session: Session, release: Release) -> None:
    """One shipment per customer and release (a unique constraint, not a check), to the
    address this customer has now: its delivery address, else its billing address."""
    entitled = (
        select(Entitlement.installation_number)
        .where(
            Entitlement.customer_number == Customer.customer_number,
            Entitlement.product == release.product,
            Entitlement.status == "registered",
            Entitlement.support_until >= release.released_on,
        )
        .exists()
    )
    # Locked, so that an address change committing meanwhile either comes first (and is read
    # here) or waits for this publish and then readdresses the shipments made here.
    dvd_customers = select(Customer).where(Customer.delivery_method == "dvd", entitled).with_for_update(of=Customer)
    customers = session.execute(dvd_customers).scalars().all()
    if not customers:
        return
    session.execute(
        insert_or_skip(
            session.get_bind().dialect.name, Shipment, index_elements=["customer_number", "release_id"]
        ).values(
            [
                {
                    "customer_number": c.customer_number,
                    "company_name": c.company_name,
                    "release_id": release.id,
                    "delivery_address": c.ship_to,
                    "status": "pending",
                    "created_at": utc_now(),
                }
                for c in customers
            ]
        )
    )


def files_of(session: Session, release_ids: list[int]) -> dict[int, list[ReleaseFile]]:
    files: dict[int, list[ReleaseFile]] = {}
    if release_ids:
        for file in session.scalars(
            select(ReleaseFile).where(ReleaseFile.release_id.in_(release_ids)).order_by(ReleaseFile.name)
        ):
            files.setdefault(file.release_id, []).append(file)
    return files


def may_download(session: Session, customer_number: str, file: ReleaseFile) -> bool:
    """Whether the customer is entitled to this file (documents: any customer)."""
    if file.document_id is not None:
        return True
    release = session.get(Release, file.release_id)
    return release is not None and release in entitled_releases(session, customer_number, release.product)
