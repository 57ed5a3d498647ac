"""Pages for one's own account: registering a customer, confirming it, a forgotten password,
accepting an invitation, and "my account" (memberships, the profile switcher, a new password).

The forms before sign-in carry the form token (forms.py); the signed-in ones the session's
CSRF token. Each form posts to its own page and, on an error, shows the same page again with
identity's answer mapped by `calls`: field messages beside the fields, one page message.
"""

from __future__ import annotations

import functools

from flask import Response, redirect, request, url_for
from flask_babel import gettext as _

from gateway.portal import calls, forms
from gateway.portal.views import _error_page, caller, form_page, page, portal, shown_page
from gateway.sessions import csrf_ok
from shared.web import accepts_raw_body, settings

REGISTRATION_FIELDS = ("customer_number", "company_id", "name", "email")
EXPIRED_FORM = 400


def form_values(names: tuple[str, ...]) -> dict[str, str]:
    return {name: request.form.get(name, "").strip() for name in names}


def _failure(answer: calls.Answer) -> dict:
    """What a form page needs from a failed answer: its message and field errors."""
    errors = answer.field_errors
    return {"message": calls.problem_message(answer), "errors": errors}


def _expired_form() -> dict:
    return {"message": _("The form has expired. Please try again."), "errors": {}}


def signed_in_page(view):
    """A page for signed-in people only: others are sent to sign in."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if caller() is None:
            return redirect(url_for("portal.sign_in_form"), 303)
        return view(*args, **kwargs)

    return wrapper


def signed_in_form(view):
    """A form post of a signed-in person: it must carry the session's CSRF token."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        signed_in = caller()
        if signed_in is None:
            return redirect(url_for("portal.sign_in_form"), 303)
        if not csrf_ok(signed_in, request):
            return _error_page(403)
        return view(*args, **kwargs)

    wrapper.accepts_raw_body = True  # an HTML form, not JSON
    return wrapper


def remember_profile(response: Response, customer_number: str) -> Response:
    response.set_cookie(
        calls.PROFILE_COOKIE,
        customer_number,
        max_age=calls.PROFILE_COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=settings().public_url.startswith("https://"),
        path="/",
    )
    return response


# --- registering a customer -----------------------------------------------------------------
@portal.get("/register")
def register_form():
    return _register_page()


@portal.post("/register")
@accepts_raw_body
def register():
    values = form_values(REGISTRATION_FIELDS)
    values["company_id"] = values["company_id"].replace(" ", "")
    if not forms.valid(request):
        return _register_page(values, EXPIRED_FORM, **_expired_form())
    answer = calls.call(
        "POST", "/api/v1/registrations", values | {"password": request.form.get("password", "")}, idempotent=True
    )
    if answer.ok:
        return redirect(url_for("portal.registration_sent"), 303)
    return _register_page(values, answer.status, answer.headers, **_failure(answer))


def _register_page(values=None, status=200, headers=None, message=None, errors=None) -> Response:
    return form_page(
        "portal/register.html",
        "portal.register",
        status,
        headers,
        active="register",
        values=values or {},
        message=message,
        errors=errors or {},
    )


@portal.get("/register/sent")
def registration_sent():
    return page("portal/registration_sent.html", active="register")


# --- confirming a registration (the link in the e-mail) -------------------------------------
@portal.get("/confirm")
def confirm_form():
    token = request.args.get("token", "")
    return _confirm_page(token, "ask" if token else "unknown", 200 if token else 404)


@portal.post("/confirm")
@accepts_raw_body
def confirm():
    token = request.form.get("token", "")
    if not forms.valid(request):
        return _confirm_page(token, "ask", EXPIRED_FORM, message=_expired_form()["message"])
    answer = calls.call("POST", "/api/v1/registrations/confirm", {"token": token})
    if answer.ok:
        return _confirm_page(token, "done")
    if answer.status == 410:
        return _confirm_page(token, "expired", 410)
    if answer.status in (404, 422):
        return _confirm_page(token, "unknown", 404)
    return _confirm_page(token, "ask", answer.status, answer.headers, calls.problem_message(answer))


def _confirm_page(token: str, state: str, status=200, headers=None, message=None) -> Response:
    return form_page(
        "portal/confirm.html", "portal.confirm", status, headers, token=token, state=state, message=message
    )


# --- a forgotten password -------------------------------------------------------------------
@portal.get("/password-reset")
def password_reset_form():
    token = request.args.get("token")
    if token:
        return _reset_page("new-password", token=token)
    return _reset_page("ask")


@portal.post("/password-reset")
@accepts_raw_body
def password_reset():
    token = request.form.get("token")
    if token is not None:
        return _reset_with_token(token)
    email = request.form.get("email", "").strip()
    if not forms.valid(request):
        return _reset_page("ask", EXPIRED_FORM, email=email, **_expired_form())
    answer = calls.call("POST", "/api/v1/password-resets", {"email": email}, idempotent=True)
    if answer.ok:
        return _reset_page("sent", email=email)
    return _reset_page("ask", answer.status, answer.headers, email=email, **_failure(answer))


def _reset_with_token(token: str) -> Response:
    if not forms.valid(request):
        return _reset_page("new-password", EXPIRED_FORM, token=token, **_expired_form())
    answer = calls.call(
        "POST", "/api/v1/password-resets/confirm", {"token": token, "password": request.form.get("password", "")}
    )
    if answer.ok:
        return _reset_page("done")
    if answer.status == 410:
        return _reset_page("expired", 410)
    if answer.status == 404 or "token" in answer.field_errors:
        return _reset_page("unknown", 404)
    return _reset_page("new-password", answer.status, answer.headers, token=token, **_failure(answer))


def _reset_page(state: str, status=200, headers=None, *, token="", email="", message=None, errors=None):
    return _state_page(
        "portal/password_reset.html",
        "portal.password_reset",
        state in ("ask", "new-password"),
        status,
        headers,
        state=state,
        token=token,
        email=email,
        message=message,
        errors=errors or {},
    )


# --- accepting an invitation (the link in the e-mail) ---------------------------------------
@portal.get("/invitation")
def invitation_form():
    """A new account chooses its password here; a person with an account just accepts. Looking
    at the link uses nothing up (mail scanners open links too)."""
    token = request.args.get("token", "")
    if not token:
        return _invitation_page("unknown", 404)
    answer = calls.call("POST", "/api/v1/invitations/lookup", {"token": token})
    if answer.status == 410:
        return _invitation_page("expired", 410)
    if answer.status == 404 or "token" in answer.field_errors:
        return _invitation_page("unknown", 404)
    # Not known (identity unreachable): the password form, which works for both kinds of account.
    existing = answer.ok and answer.body.get("password_needed") is False
    return _invitation_page("join" if existing else "ask", token=token, company=answer.body.get("company_name"))


@portal.post("/invitation")
@accepts_raw_body
def invitation():
    token = request.form.get("token", "")
    with_password = "password" in request.form  # the join form has none: the token alone
    state = "ask" if with_password else "join"
    if not forms.valid(request):
        return _invitation_page(state, EXPIRED_FORM, token=token, **_expired_form())
    body = {"token": token} | ({"password": request.form.get("password", "")} if with_password else {})
    answer = calls.call("POST", "/api/v1/invitations/accept", body, idempotent=True)
    if answer.ok:
        return _invitation_page("joined" if answer.body.get("status") == "joined" else "done")
    if answer.status == 410:
        return _invitation_page("expired", 410)
    if answer.status == 404 or "token" in answer.field_errors:
        return _invitation_page("unknown", 404)
    if "password" in answer.field_errors:
        state = "ask"  # a new account after all: it chooses a password
    return _invitation_page(state, answer.status, answer.headers, token=token, **_failure(answer))


def _invitation_page(state: str, status=200, headers=None, *, token="", company=None, message=None, errors=None):
    return _state_page(
        "portal/invitation.html",
        "portal.invitation",
        state in ("ask", "join"),
        status,
        headers,
        state=state,
        token=token,
        company=company,
        message=message,
        errors=errors or {},
    )


def _state_page(template: str, endpoint: str, with_form: bool, status, headers, **context) -> Response:
    """A page of states, some with a form: only those pair a new form token with its cookie. One
    without (the answer to a sent form) leaves the cookie as it is, so the same form sent again
    (a double click, a reload) is still valid and gets the same answer (its idempotency key)."""
    if with_form:
        return form_page(template, endpoint, status, headers, **context)
    return page(template, status, headers, **context)


# --- my account -----------------------------------------------------------------------------
@portal.get("/account")
@signed_in_page
def account():
    return _account_page(done=request.args.get("done"))


@portal.post("/account/password")
@signed_in_form
def change_password():
    answer = calls.call(
        "PUT",
        "/api/v1/me/password",
        {
            "current_password": request.form.get("current_password", ""),
            "new_password": request.form.get("new_password", ""),
        },
    )
    if answer.ok:
        return redirect(url_for("portal.account", done="password"), 303)
    return _account_page(answer.status, answer.headers, **_failure(answer))


@portal.post("/account/name")
@signed_in_form
def change_name():
    """The display name others see (e.g. with forum posts)."""
    name = request.form.get("name", "").strip()
    answer = calls.call("PATCH", "/api/v1/me", {"name": name})
    if answer.ok:
        return redirect(url_for("portal.account", done="name"), 303)
    return _account_page(answer.status, answer.headers, failed="name", name=name, **_failure(answer))


def _account_page(
    status=200, headers=None, message=None, errors=None, done=None, failed="password", name=None
) -> Response:
    """`failed` names the form the message and errors belong to; `name` is what was typed."""
    if calls.me() is None:
        calls.fetch("/api/v1/me")  # identity could not say who this is: its error page
    shown_page("portal.account")
    return page(
        "portal/account.html",
        status,
        headers,
        active="account",
        message=message,
        errors=errors or {},
        done=done,
        failed=failed,
        typed_name=name,
    )


@portal.post("/profile")
@signed_in_form
def switch_profile():
    """The profile switcher: remember which profile the navigation is about."""
    customer_number = request.form.get("customer_number", "")
    response = redirect(url_for("portal.home"), 303)
    if calls.membership(calls.me(), customer_number) is not None:
        remember_profile(response, customer_number)
    return response
