"""Pages of what a customer gets from us (rule 10), each with its own right:
`/customers/<n>/downloads` (releases and updates it is entitled to, grouped by product,
with sizes and SHA-256 checksums) and `/customers/<n>/download-history` (`downloads`),
`/customers/<n>/documents` (`documents`) and `/customers/<n>/news` (`news`: news, events
and training courses, the upcoming ones first).

Distribution answers all of them. The file links it gives are signed and absolute: they are
plain links, so the browser's own download manager fetches the file and resumes an
interrupted download with HTTP Range. The portal adds what a person reads: sizes in MB/GB
in the page's language, dates, release notes as safe minimal Markdown (`markdown.py`).
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from flask_babel import format_decimal

from gateway.portal import calls
from gateway.portal.accounts import remember_profile, signed_in_page
from gateway.portal.dates import _datetime, date_only, date_time
from gateway.portal.markdown import render as markdown
from gateway.portal.profiles import _api, _membership_with
from gateway.portal.views import page, portal

UPCOMING_KINDS = ("training", "event")
# The route table sends `/customers/<n>/downloads|documents|news` to distribution, but not
# `download-history`: name the service rather than fall through to identity.
SERVICE = "distribution"


@portal.get("/customers/<customer_number>/downloads")
@signed_in_page
def downloads(customer_number: str):
    membership = _membership_with(customer_number, "downloads")
    body = calls.fetch(_api(customer_number, "downloads"), service=SERVICE)
    products = group_by_product([_release(item) for item in body.get("items") or []])
    response = page(
        "portal/downloads.html",
        active="downloads",
        membership=membership,
        customer_number=customer_number,
        products=products,
    )
    return remember_profile(response, customer_number)


@portal.get("/customers/<customer_number>/download-history")
@signed_in_page
def download_history(customer_number: str):
    membership = _membership_with(customer_number, "downloads")
    body = calls.fetch(_api(customer_number, "download-history"), service=SERVICE)
    items = sorted(body.get("items") or [], key=lambda item: str(item.get("at") or ""), reverse=True)
    response = page(
        "portal/download_history.html",
        active="downloads",
        membership=membership,
        customer_number=customer_number,
        items=[item | {"when": date_time(item.get("at"))} for item in items],
    )
    return remember_profile(response, customer_number)


@portal.get("/customers/<customer_number>/documents")
@signed_in_page
def documents(customer_number: str):
    membership = _membership_with(customer_number, "documents")
    body = calls.fetch(_api(customer_number, "documents"), service=SERVICE)
    items = [
        item
        | {
            "description_html": markdown(item.get("description")),
            "published": date_only(item.get("published_at")),
            "files": [_file(file) for file in item.get("files") or []],
        }
        for item in body.get("items") or []
    ]
    response = page(
        "portal/documents.html",
        active="documents",
        membership=membership,
        customer_number=customer_number,
        documents=items,
    )
    return remember_profile(response, customer_number)


@portal.get("/customers/<customer_number>/news")
@signed_in_page
def news(customer_number: str):
    membership = _membership_with(customer_number, "news")
    body = calls.fetch(_api(customer_number, "news"), service=SERVICE)
    upcoming, articles, past = split_news(body.get("items") or [], datetime.now(UTC))
    response = page(
        "portal/news.html",
        active="news",
        membership=membership,
        customer_number=customer_number,
        upcoming=upcoming,
        articles=articles,
        past=past,
    )
    return remember_profile(response, customer_number)


# --- what the pages show ------------------------------------------------------------------
def group_by_product(releases: list[dict]) -> list[dict]:
    """Releases by product (in alphabetical order), each product's newest first."""
    products: dict[str, list[dict]] = {}
    for release in releases:
        products.setdefault(str(release.get("product") or ""), []).append(release)
    return [
        {"product": product, "releases": sorted(items, key=_newest_first, reverse=True)}
        for product, items in sorted(products.items(), key=lambda pair: _sort_key(pair[0]))
    ]


def _sort_key(name: str) -> tuple[str, str]:
    """Alphabetical as people expect it: Účetnictví before Zakázky (accents second)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return plain.casefold(), name.casefold()


def _newest_first(release: dict) -> tuple:
    version = tuple(int(part) if part.isdigit() else 0 for part in str(release.get("version") or "").split("."))
    return (str(release.get("released_on") or ""), version)


def _release(item: dict) -> dict:
    return item | {
        "released": date_only(item.get("released_on")),
        "notes_html": markdown(item.get("notes")),
        "files": [_file(file) for file in item.get("files") or []],
    }


def _file(file: dict) -> dict:
    return file | {"human_size": human_size(file.get("size"))}


def split_news(items: list[dict], now: datetime) -> tuple[list[dict], list[dict], list[dict]]:
    """Upcoming training courses and events (soonest first), news (newest first), and past
    training courses and events (latest first)."""
    upcoming, articles, past = [], [], []
    for item in items:
        starts = _datetime(item.get("starts_at"))
        shown = item | {
            "body_html": markdown(item.get("body")),
            "published": date_only(item.get("published_at")),
            "starts": date_time(starts) if starts else None,
            "starts_iso": starts.isoformat() if starts else None,
        }
        if item.get("kind") in UPCOMING_KINDS and starts is not None:
            (upcoming if starts > now else past).append(shown | {"_starts": starts})
        else:
            articles.append(shown)
    upcoming.sort(key=lambda item: item["_starts"])
    past.sort(key=lambda item: item["_starts"], reverse=True)
    articles.sort(key=lambda item: str(item.get("published_at") or ""), reverse=True)
    return upcoming, articles, past


def human_size(size) -> str:
    """Bytes as people read them, in the page's language: 512 B, 4,1 kB, 1,5 GB (binary units,
    as Windows shows them); a non-breaking space between number and unit."""
    try:
        value = float(size)
    except (TypeError, ValueError):
        return ""
    if value < 1024:
        return f"{int(value)}\u00a0B"
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{format_decimal(value, format='#,##0.#' if value < 100 else '#,##0')}\u00a0{unit}"
