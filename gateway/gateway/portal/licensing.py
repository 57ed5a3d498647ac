"""Pages of a customer's licenses (rules 8 and 9), both with the `licenses` right:
`/customers/<customer_number>/licenses`, the registered licenses with their installation
numbers and support (SERVIS), sorted and paged by licensing; and
`/customers/<customer_number>/product-registration`, registering a product bought from a
partner with its installation number, which is what makes it listed and supported.

Licensing answers both (calls.py sends each path to the service that owns it); the portal
adds only what a person reads: support in words and colour, the licenses whose support ends
soon highlighted, and licensing's problems as messages.
"""

from __future__ import annotations

from datetime import date

from flask import redirect, request, url_for
from flask_babel import format_date, ngettext
from flask_babel import gettext as _

from gateway.portal import calls
from gateway.portal.accounts import _failure, remember_profile, signed_in_form, signed_in_page
from gateway.portal.profiles import _api, _membership_with
from gateway.portal.views import page, portal

SORTS = ("product", "support_until")
PAGE_SIZE = 50
SOON_DAYS = 60  # rule: support ending within 60 days is worth a warning


@portal.get("/customers/<customer_number>/licenses")
@signed_in_page
def licenses(customer_number: str):
    membership = _membership_with(customer_number, "licenses")
    sort = request.args.get("sort") if request.args.get("sort") in SORTS else SORTS[0]
    cursor = request.args.get("cursor") or None
    query = {"sort": sort, "limit": PAGE_SIZE} | ({"cursor": cursor} if cursor else {})
    answer = calls.call("GET", _api(customer_number, "licenses"), query=query)
    if answer.status in (400, 422) and cursor:
        # A cursor from an old link (or edited by hand): start again from the first page.
        return redirect(url_for("portal.licenses", customer_number=customer_number, sort=sort), 303)
    if not answer.ok:
        raise calls.page_error(answer)
    today = date.today()
    items = [_shown(item, today) for item in answer.body.get("items") or []]
    response = page(
        "portal/licenses.html",
        active="licenses",
        membership=membership,
        customer_number=customer_number,
        licenses=items,
        sort=sort,
        cursor=cursor,
        next_cursor=answer.body.get("next"),
        registered=request.args.get("registered"),
        csv_url=_api(customer_number, "licenses.csv") + f"?sort={sort}",
    )
    return remember_profile(response, customer_number)


@portal.get("/customers/<customer_number>/product-registration")
@signed_in_page
def product_registration(customer_number: str):
    return _registration_page(customer_number)


@portal.post("/customers/<customer_number>/product-registration")
@signed_in_form
def register_product(customer_number: str):
    _membership_with(customer_number, "licenses")
    typed = request.form.get("installation_number", "").strip()
    answer = calls.call(
        "POST", _api(customer_number, "product-registrations"), {"installation_number": typed}, idempotent=True
    )
    if answer.ok:
        number = answer.body.get("installation_number") or typed
        return redirect(url_for("portal.licenses", customer_number=customer_number, registered=number), 303)
    return _registration_page(customer_number, answer.status, answer.headers, typed, **_failure(answer))


def _registration_page(customer_number, status=200, headers=None, typed="", message=None, errors=None):
    membership = _membership_with(customer_number, "licenses")
    response = page(
        "portal/product_registration.html",
        status,
        headers,
        active="product_registration",
        membership=membership,
        customer_number=customer_number,
        typed=typed,
        message=message,
        errors=errors or {},
        already=(status == 409),
    )
    return remember_profile(response, customer_number)


def _shown(item: dict, today: date) -> dict:
    """A license as the list shows it: its support in words, and whether to highlight it."""
    until = _date(item.get("support_until"))
    status = item.get("support_status") or ("none" if until is None else "active")
    days = (until - today).days if until else None
    return item | {
        "support_state": status if status in ("active", "expiring", "expired", "none") else "none",
        "support_text": support_text(status, until, days),
        "support_date": format_date(until, "medium") if until else None,
        "ends_soon": status == "expiring" or (until is not None and 0 <= (days or 0) <= SOON_DAYS),
    }


def support_text(status: str, until: date | None, days: int | None) -> str:
    """Support (SERVIS) in words, as it stands today."""
    if until is None or status == "none":
        return _("no support")
    if status == "expired" or (days is not None and days < 0):
        return _("expired on %(date)s", date=format_date(until, "medium"))
    if status == "expiring" or (days is not None and days <= SOON_DAYS):
        days = max(0, days or 0)
        if days == 0:
            return _("expires today")
        return ngettext("expires in %(num)d day", "expires in %(num)d days", days)
    return _("valid until %(date)s", date=format_date(until, "medium"))


def _date(value) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
