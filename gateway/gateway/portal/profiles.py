"""Pages of one customer profile, `/customers/<customer_number>/...`: its users and their
rights (the `users` right) and its addresses and delivery method (the `contacts` right).

The customer number in the URL is the profile the page is about, and opening such a page
makes it the remembered profile (`cc_profile`) for the pages whose URL names none. Identity
checks membership and rights on every call; the portal asks first only to answer a page it
cannot show with the right error page (404 for someone else's profile, 403 without the right).
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, redirect, request, url_for

from gateway.portal import calls
from gateway.portal.accounts import _failure, form_values, remember_profile, signed_in_form, signed_in_page
from gateway.portal.views import page, portal
from shared.problems import Problem

ADDRESS_PARTS = ("street", "city", "postal_code", "country")
ADDRESSES = ("billing_address", "delivery_address")
# Offered in the country list; a profile with another country keeps it (it is added).
COUNTRIES = ("CZ", "SK", "AT", "DE", "PL", "HU")


def _api(customer_number: str, rest: str) -> str:
    return f"/api/v1/customers/{quote(customer_number, safe='')}/{rest}"


def _membership_with(customer_number: str, right: str) -> dict:
    """The caller's membership in this profile, refusing as identity would: not a member 404,
    without the right 403 (identity says so again when it is asked)."""
    person = calls.me()
    if person is None:
        calls.fetch("/api/v1/me")  # identity down or the account gone: its error page
    membership = calls.membership(person, customer_number)
    if membership is None:
        raise Problem(404)
    if not calls.has_right(membership, right):
        raise Problem(403)
    return membership


# --- users and rights -----------------------------------------------------------------------
@portal.get("/customers/<customer_number>/users")
@signed_in_page
def users(customer_number: str):
    return _users_page(customer_number, done=request.args.get("done"))


@portal.post("/customers/<customer_number>/users")
@signed_in_form
def invite_user(customer_number: str):
    _membership_with(customer_number, "users")
    values = form_values(("name", "email"))
    rights = _rights_from_form()
    answer = calls.call("POST", _api(customer_number, "users"), values | {"rights": rights}, idempotent=True)
    if answer.ok:
        return redirect(url_for("portal.users", customer_number=customer_number, done="invited"), 303)
    return _users_page(
        customer_number, answer.status, answer.headers, invite=values | {"rights": rights}, **_failure(answer)
    )


@portal.post("/customers/<customer_number>/users/<user_id>/rights")
@signed_in_form
def change_rights(customer_number: str, user_id: str):
    return _change_member(customer_number, user_id, {"rights": _rights_from_form()}, "rights")


@portal.post("/customers/<customer_number>/users/<user_id>/administrator")
@signed_in_form
def change_administrator(customer_number: str, user_id: str):
    administrator = request.form.get("administrator") == "1"
    return _change_member(customer_number, user_id, {"administrator": administrator}, "administrator")


@portal.post("/customers/<customer_number>/users/<user_id>/remove")
@signed_in_form
def remove_user(customer_number: str, user_id: str):
    _membership_with(customer_number, "users")
    answer = calls.call("DELETE", _api(customer_number, f"users/{quote(user_id, safe='')}"))
    return _after_member_change(customer_number, user_id, answer, "removed")


def _change_member(customer_number: str, user_id: str, change: dict, done: str) -> Response:
    _membership_with(customer_number, "users")
    answer = calls.call("PATCH", _api(customer_number, f"users/{quote(user_id, safe='')}"), change)
    return _after_member_change(customer_number, user_id, answer, done)


def _after_member_change(customer_number: str, user_id: str, answer: calls.Answer, done: str) -> Response:
    if not answer.ok:
        return _users_page(customer_number, answer.status, answer.headers, message=calls.problem_message(answer))
    person = calls.me() or {}
    if user_id == person.get("id") and done in ("administrator", "removed"):
        # Stepped down or left: this page may no longer be theirs to see.
        return redirect(url_for("portal.home"), 303)
    return redirect(url_for("portal.users", customer_number=customer_number, done=done), 303)


def _rights_from_form() -> list[str]:
    chosen = set(request.form.getlist("rights"))
    return [right for right in calls.RIGHTS if right in chosen]


def _users_page(customer_number, status=200, headers=None, message=None, errors=None, invite=None, done=None):
    membership = _membership_with(customer_number, "users")
    listing = calls.fetch(_api(customer_number, "users"))
    response = page(
        "portal/users.html",
        status,
        headers,
        active="users",
        membership=membership,
        customer_number=customer_number,
        users=listing.get("items") or [],
        rights=calls.RIGHTS,
        invite=invite or {"rights": []},
        message=message,
        errors=errors or {},
        done=done,
    )
    return remember_profile(response, customer_number)


# --- addresses and delivery method ----------------------------------------------------------
@portal.get("/customers/<customer_number>/contacts")
@signed_in_page
def contacts(customer_number: str):
    return _contacts_page(customer_number, done=request.args.get("done"))


@portal.post("/customers/<customer_number>/contacts/addresses")
@signed_in_form
def save_addresses(customer_number: str):
    _membership_with(customer_number, "contacts")
    fields = form_values(tuple(f"{kind}.{part}" for kind in ADDRESSES for part in ADDRESS_PARTS))
    body = {kind: {part: fields[f"{kind}.{part}"] for part in ADDRESS_PARTS} for kind in ADDRESSES}
    answer = calls.call("PUT", _api(customer_number, "addresses"), body)
    if answer.ok:
        return redirect(url_for("portal.contacts", customer_number=customer_number, done="addresses"), 303)
    return _contacts_page(customer_number, answer.status, answer.headers, addresses=body, **_failure(answer))


@portal.post("/customers/<customer_number>/contacts/delivery-method")
@signed_in_form
def save_delivery_method(customer_number: str):
    _membership_with(customer_number, "contacts")
    method = request.form.get("delivery_method", "")
    answer = calls.call("PUT", _api(customer_number, "delivery-method"), {"delivery_method": method})
    if answer.ok:
        return redirect(url_for("portal.contacts", customer_number=customer_number, done="delivery"), 303)
    return _contacts_page(customer_number, answer.status, answer.headers, **_failure(answer))


def _contacts_page(customer_number, status=200, headers=None, message=None, errors=None, addresses=None, done=None):
    membership = _membership_with(customer_number, "contacts")
    profile = calls.fetch(_api(customer_number, "profile"))
    billing = profile.get("billing_address") or {}
    shown = addresses or {
        "billing_address": billing,
        # Until a delivery address is set, goods go to the billing one: start from it.
        "delivery_address": profile.get("delivery_address") or billing,
    }
    used = {(shown.get(kind) or {}).get("country") for kind in ADDRESSES} - {None, ""}
    response = page(
        "portal/contacts.html",
        status,
        headers,
        active="contacts",
        membership=membership,
        customer_number=customer_number,
        company=profile,
        addresses=shown,
        countries=list(COUNTRIES) + sorted(used - set(COUNTRIES)),
        message=message,
        errors=errors or {},
        done=done,
    )
    return remember_profile(response, customer_number)
