"""The portal's way of asking a service (identity, licensing, ...: whichever owns the path in
the route table) for something on the caller's behalf, and of turning its problem+json
answers into what a page shows: messages next to the fields (422) and one message for the
page (409, 410, 429, 503, ...), in the page's language.

Also who the signed-in person is in which customer profile (`me()`, `current_profile()`):
the navigation shows only what their rights in the current profile allow.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from flask import g, request
from flask_babel import gettext as _

from gateway import api
from gateway.routes import service_for
from gateway.sessions import Caller
from shared.auth import Principal
from shared.problems import TYPE_PREFIX, Problem

# The current profile on pages whose URL names none (home, my account): the last one the
# person switched to or opened. Only a preference: every request still asks identity for
# the person's memberships, and identity checks the rights again on every call.
PROFILE_COOKIE = "cc_profile"
PROFILE_COOKIE_MAX_AGE = 365 * 24 * 3600
RIGHTS = ("licenses", "downloads", "documents", "news", "contacts", "users")
# Every form that creates something carries a random key per rendering in this hidden field;
# its POST sends it on as `Idempotency-Key` (api.md, "Retries"): the service answers a second
# sending of the same form with its first answer (`Idempotent-Replayed: true`), creating nothing.
IDEMPOTENCY_FIELD = "idempotency_key"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Answer:
    """A service's answer, read whole: status, JSON body, the problem's slug and field errors."""

    status: int
    body: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def problem(self) -> str | None:
        """The problem's slug (`profile-claimed`, `expired`, ...), or None for a success."""
        if self.ok:
            return None
        kind = str(self.body.get("type") or "")
        return kind.removeprefix(TYPE_PREFIX) or None

    @property
    def field_errors(self) -> dict[str, str]:
        """Field name (as the API names it, e.g. `billing_address.city`) → message to show."""
        errors = {}
        for error in self.body.get("errors") or []:
            name = str(error.get("field") or "_body")
            errors.setdefault(name, field_message(name, str(error.get("message") or "")))
        return errors


def caller() -> Caller | None:
    """Who is signed in on this browser (looked up once per request)."""
    if "portal_caller" not in g:
        g.portal_caller = api.store().caller(request)
    return g.portal_caller


def principal() -> Principal:
    """The caller's principal (or an anonymous one), with the address identity throttles by."""
    signed_in = caller()
    return replace(signed_in.principal if signed_in else api.ANONYMOUS, client=request.remote_addr)


def call(
    method: str,
    path: str,
    body: dict | None = None,
    query: dict | None = None,
    service: str | None = None,
    idempotent: bool = False,
) -> Answer:
    """Call the service that owns `path` (routes.py, unless `service` names it) as the caller.
    A service that is down is an `Answer(503)`, not an error: a form shows it as its message.
    `idempotent`: a form that creates something sends its rendering's key (`sent_idempotency_key`)
    as `Idempotency-Key`, so the same form sent twice creates one thing and answers alike."""
    service = service or service_for(path) or "identity"
    arguments = {"query": urlencode(query)} if query else {}
    key = sent_idempotency_key() if idempotent else None
    if key:
        arguments["headers"] = {IDEMPOTENCY_HEADER: key}
    answer = _call(service, method, path, body, arguments)
    if key and answer.status >= 500:
        # Refused (503) or unanswered (504: it may have been made): the form shown again keeps
        # its key, so sending it again is safe either way (api.md, "Retries").
        g.portal_kept_idempotency_key = (request.path, key)
    return answer


def _call(service: str, method: str, path: str, body: dict | None, arguments: dict) -> Answer:
    try:
        response = api.upstream().call(service, method, path, body, principal=principal(), **arguments)
    except Problem as problem:
        return Answer(problem.status, problem.to_dict(), dict(problem.headers))
    data = response.data if hasattr(response, "data") else None
    try:
        parsed = response.json() if data is None or data else {}
    except ValueError:
        parsed = {}
    headers = {name: response.headers[name] for name in ("Retry-After",) if name in response.headers}
    return Answer(response.status, parsed if isinstance(parsed, dict) else {}, headers)


def new_idempotency_key() -> str:
    """A fresh key for one rendering of a form that creates something (its hidden field)."""
    return str(uuid.uuid4())


def idempotency_key(action: str) -> str:
    """The key for the form posting to `action` on this page: the one just sent, when this is
    that form shown again after the service refused or did not answer (the outcome may be
    unknown: sending it again must not make a second); otherwise a fresh one. After any other
    failure nothing was made, and the form, perhaps changed, is sent anew."""
    kept = g.get("portal_kept_idempotency_key")
    if kept is not None and kept[0] == action:
        return kept[1]
    return new_idempotency_key()


def sent_idempotency_key() -> str | None:
    """The key the posted form carries, if it is one we could have made: a double click or a
    resent form brings the same one again. None without one (a form from an older page)."""
    key = request.form.get(IDEMPOTENCY_FIELD, "")
    return key if _IDEMPOTENCY_KEY.fullmatch(key) else None


def fetch(path: str, service: str | None = None) -> dict:
    """GET something a page cannot do without: any failure becomes that page's error page
    (403 without the right, 404 for another profile, 503 when the service is down)."""
    answer = call("GET", path, service=service)
    if not answer.ok:
        raise page_error(answer)
    return answer.body


def page_error(answer: Answer) -> Problem:
    """The error page for a failed answer a page cannot do without: a service refusing what
    the page asked for on the visitor's behalf (a link with a bad query) is a bad request."""
    if answer.status in (400, 422):
        return Problem(400, headers=answer.headers)
    return Problem(answer.status if answer.status in (401, 403, 404, 429, 503) else 502, headers=answer.headers)


# --- messages -----------------------------------------------------------------------------
def field_message(name: str, message: str) -> str:
    """A field error from the API in the page's language. The API speaks English; the kinds
    of message it gives are few and known, anything else gets a general sentence."""
    text = message.lower()
    if name in ("password", "new_password"):
        if text.startswith("use at least"):
            return _("Use at least 8 characters (12 or more is better).")
        if text.startswith("use at most"):
            return _("Use at most 128 characters.")
        if "common" in text:
            return _("This password is too common. Choose another one.")
    if name == "current_password" and "not right" in text:
        return _("The current password is not right.")
    if "missing data" in text or "may not be null" in text or "shorter than minimum length 1." in text:
        return _("Fill this in.")
    if name == "installation_number":
        return _installation_number_message(text)
    if name == "company_id":
        return _("This is not a valid company ID: 8 digits with a correct check digit.")
    if name == "customer_number":
        return _("Use digits only.")
    if name == "email" or "email" in text:
        return _("Enter a valid e-mail address.")
    if "longer than maximum length" in text:
        return _("This is too long.")
    if name.endswith(".country"):
        return _("Choose a country.")
    return _("This value is not valid.")


def _installation_number_message(text: str) -> str:
    """Licensing checks the format and the check character before it looks anything up."""
    if "check character" in text or "typo" in text:
        return _("This installation number has a typo. Check it against the document you got with the product.")
    if "do not occur" in text:
        return _(
            "An installation number consists of the digits 2–9 and the letters A–Z without I, L, O and U. "
            "Check it against the document you got with the product."
        )
    return _("An installation number has 18 characters in three groups of six, e.g. ABCDEF-GHJKMN-PQRST7.")


# One sentence per problem the API can answer with; per page where the sentence differs.
def problem_message(answer: Answer) -> str:
    kind, status = answer.problem, answer.status
    messages = {
        "registration-mismatch": _(
            "The customer number and company ID do not match any of our customers. Check both on your invoice."
        ),
        "profile-has-administrator": _(
            "This customer profile already has an administrator. Ask them to create an account for you."
        ),
        "profile-claimed": _(
            "Someone has registered this customer profile and has not confirmed it yet. "
            "If it is not confirmed within 2 days, you can register again."
        ),
        "member-exists": _("This person already has access to the profile."),
        "last-administrator": _("A profile keeps at least one administrator. Appoint another one first."),
        "missing-right": _("You do not have the right to do this in this profile."),
        "csrf-failed": _("The form has expired. Please try again."),
        # Never which part was wrong: unknown number and another customer's sale look alike.
        "registration-refused": _(
            "We cannot register this installation number to your customer profile. Check the number "
            "against the document you got with the product; if it is right, contact the partner who sold it to you."
        ),
        "already-registered": _("This product is registered already: you will find it in your license list."),
        # The same rendering of a form sent again with other values after it was handled once
        # (changed after going back): nothing was changed; the form shown now sends anew.
        "idempotency-key-reused": _(
            "This form was already sent once, with other details. Nothing was changed now. "
            "To send the changed details, send the form again."
        ),
    }
    if kind in messages:
        return messages[kind]
    if status == 429:
        minutes = _retry_minutes(answer.headers.get("Retry-After"))
        if minutes:
            return _("Too many attempts. Try again in %(minutes)s min.", minutes=minutes)
        return _("Too many attempts. Wait a while before trying again.")
    if status == 503:
        return _("This part of the Customer Center is not available right now. Try again shortly.")
    if status == 504 or kind == "upstream-timeout":
        return _(
            "We did not get an answer in time, so we cannot say whether it went through. "
            "Send the form again: nothing will be saved twice."
        )
    if status == 403:
        return _("You do not have the right to do this in this profile.")
    if status == 404:
        return _("We could not find what you asked for. Reload the page and try again.")
    if status == 422:
        return _("Check the highlighted fields.")
    return _("We could not handle your request.")


def _retry_minutes(value: str | None) -> int | None:
    if value and re.fullmatch(r"\d+", value.strip()):
        return max(1, -(-int(value) // 60))
    return None


# --- who is signed in, in which profile ---------------------------------------------------
def me() -> dict | None:
    """The signed-in person with their memberships (once per request), or None when nobody
    is signed in or identity cannot say right now (pages then show less, not an error)."""
    if "portal_me" not in g:
        g.portal_me = None
        signed_in = caller()
        if signed_in is not None:
            answer = call("GET", "/api/v1/me")
            if answer.ok:
                g.portal_me = answer.body
                _follow_renames(signed_in, answer.body)
    return g.portal_me


def _follow_renames(signed_in: Caller, person: dict) -> None:
    """The session holds the name and e-mail the person had when they signed in; identity's
    answer is the truth. A changed one is written to their sessions and read again."""
    name, email = person.get("name"), person.get("email")
    session = signed_in.session
    if not (isinstance(name, str) and isinstance(email, str)) or (name, email) == (session.name, session.email):
        return
    api.store().refresh_person(session.user_id, name, email)
    g.portal_caller = api.store().caller(request)


def membership(person: dict | None, customer_number: str | None) -> dict | None:
    for item in (person or {}).get("memberships") or []:
        if customer_number is not None and str(item.get("customer_number")) == str(customer_number):
            return item
    return None


def current_profile(person: dict | None) -> dict | None:
    """The profile the navigation is about: the one in the URL, else the remembered one,
    else the person's first."""
    memberships = (person or {}).get("memberships") or []
    if not memberships:
        return None
    in_url = (request.view_args or {}).get("customer_number")
    return membership(person, in_url) or membership(person, request.cookies.get(PROFILE_COOKIE)) or memberships[0]


def has_right(profile: dict | None, right: str) -> bool:
    return bool(profile) and (bool(profile.get("administrator")) or right in (profile.get("rights") or []))
