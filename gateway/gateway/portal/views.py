"""The portal's pages and what every page gets: security headers, the language cookie, and
errors as HTML pages in the chosen language (API paths keep problem+json)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from marshmallow import ValidationError

from gateway import api, overview
from gateway.portal import calls, forms, i18n
from gateway.portal.dates import date_only, date_time
from gateway.sessions import CSRF_FORM_FIELD, csrf_ok
from shared.logs import current_correlation_id
from shared.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from shared.problems import Problem
from shared.web import accepts_raw_body, settings

portal = Blueprint("portal", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")

# No inline scripts or styles anywhere: everything comes from our own /assets.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    # Pages may greet a signed-in person by name: never keep them in a shared cache.
    "Cache-Control": "no-store",
}
# Headers of an error answer that still mean something on its HTML page.
KEPT_ERROR_HEADERS = ("Retry-After", "Allow")


caller = calls.caller


def page(template: str, status: int = 200, headers=None, **context) -> Response:
    """Render a page with what every page knows: who is signed in, their memberships (from
    identity, once per request) and the profile the navigation is about."""
    person = calls.me() if caller() is not None else None
    response = Response(
        render_template(
            template,
            caller=caller(),
            me=person,
            profile=calls.current_profile(person),
            has_right=calls.has_right,
            **context,
        ),
        status=status,
        mimetype="text/html",
    )
    response.headers.update(PAGE_HEADERS)
    for name in KEPT_ERROR_HEADERS:
        if headers and name in headers:
            response.headers[name] = headers[name]
    return response


def form_page(template: str, endpoint: str, status: int = 200, headers=None, **context) -> Response:
    """A page with a form sent before there is a session (sign in, register, links from
    e-mails): the form token in a hidden field and its paired cookie for the form's path."""
    token = forms.new_token()
    response = page(template, status, headers, form_token=token, form_token_field=forms.FIELD, **context)
    forms.set_cookie(response, token, url_for(endpoint))
    return response


def shown_page(endpoint: str, **arguments) -> None:
    """Name the page being shown, for a page that a form posted elsewhere shows again: its
    language links then lead to that page rather than to the form's POST-only address."""
    g.portal_page = (endpoint, arguments)


@portal.app_context_processor
def _language_context() -> dict:
    def language_url(language: str) -> str:
        # A form's page shown again after its POST to another path: link to the page itself.
        if request.method != "GET" and "portal_page" in g:
            endpoint, arguments = g.portal_page
            return url_for(endpoint, **arguments, lang=language)
        # Only our own routes: a link built from the raw path could point off-site ("//host").
        if request.blueprint == "portal" and request.endpoint and request.endpoint != "portal.static":
            return url_for(request.endpoint, **(request.view_args or {}), lang=language)
        return url_for("portal.home", lang=language)

    return {"current_language": str(get_locale() or i18n.DEFAULT_LANGUAGE), "language_url": language_url}


@portal.get("/")
def home():
    """Anonymous visitors: what the Customer Center offers. Signed in: the profile view of the
    current profile (its company, licenses, newest releases, news and the forum), then the
    person's profiles with the switcher."""
    person = calls.me() if caller() is not None else None
    profile = calls.current_profile(person)
    shown = profile_overview(str(profile["customer_number"])) if profile is not None else None
    return page("portal/home.html", active="home", overview=shown)


# --- the profile view on the home page -------------------------------------------------------
# What the home page lists of each part; the part's own page has the rest.
HOME_LICENSES = 5
HOME_NEWS = 3
HOME_TRAININGS = 3
# The parts in the order the page shows them.
OVERVIEW_PARTS = ("profile", "licenses", "downloads", "news", "forum")


def profile_overview(customer_number: str) -> dict | None:
    """The profile view (`gateway.overview.gather`: every service asked in parallel, as this
    person, each with its own timeout) shaped for the home page; None when no service knows
    the profile as this person's (a membership just ended)."""

    try:
        view = overview.gather(api.upstream(), customer_number, calls.principal(), current_correlation_id())
    except Problem:
        return None
    restricted = set(view["restricted"])
    # A part nobody refused but that came back empty (the service has not heard of the new
    # membership yet, a 404) cannot be shown either: it will be there in a moment.
    unavailable = {part for part in OVERVIEW_PARTS if part not in restricted and view.get(part) is None}
    shown = [part for part in OVERVIEW_PARTS if part not in restricted and part not in unavailable]
    licenses = view.get("licenses") or []
    # Product codes to names, from the licenses (the releases carry codes only).
    names = {item.get("product"): item.get("product_name") for item in licenses if item.get("product_name")}
    news = view.get("news") or {}
    latest, upcoming = (news.get("news") or [])[:HOME_NEWS], (news.get("trainings") or [])[:HOME_TRAININGS]
    profile = view.get("profile")
    return {
        "customer_number": customer_number,
        "restricted": restricted,
        "unavailable": unavailable,
        "nothing_shown": bool(unavailable) and not shown,
        # Until a delivery address is set, goods go to the billing one (as the contacts page says).
        "company": profile and profile | {"delivery_same": not profile.get("delivery_address")},
        "licenses": [_license(item) for item in licenses[:HOME_LICENSES]],
        "licenses_total": len(licenses),
        "downloads": [
            item
            | {
                "product_label": names.get(item.get("product")) or item.get("product"),
                "released": date_only(item.get("released_on")),
            }
            for item in view.get("downloads") or []
        ],
        "news": [item | {"published": date_only(item.get("published_at"))} for item in latest],
        "trainings": [item | {"starts": date_time(item.get("starts_at"))} for item in upcoming],
        "topics": [
            item | {"last_activity": date_time(item.get("last_activity_at"))} for item in view.get("forum") or []
        ],
    }


def _license(item: dict) -> dict:
    """A license with its support in words: when it ends within 60 days, in how many days."""

    state = item.get("support_status") or "none"
    until = item.get("support_until")
    text = _("no support")
    if state == "expiring":
        days = max(0, (date.fromisoformat(str(until)[:10]) - date.today()).days)
        text = (
            _("Support ends today")
            if days == 0
            else ngettext("Support ends in %(num)d day", "Support ends in %(num)d days", days)
        )
    elif state == "expired":
        text = _("Support ended on %(date)s", date=date_only(until))
    elif state == "active":
        text = _("Support until %(date)s", date=date_only(until))
    return item | {
        "product_label": item.get("product_name") or item.get("product"),
        "support_state": state if state in ("active", "expiring", "expired") else "none",
        "support_text": text,
        "support_date": date_only(until) if state == "expiring" else None,
    }


@portal.get("/sign-in")
def sign_in_form():
    if caller() is not None:
        return redirect(url_for("portal.home"), 303)
    return _sign_in_page()


@portal.post("/sign-in")
@accepts_raw_body  # an HTML form, not JSON
def sign_in():
    email = request.form.get("email", "").strip()
    if not forms.valid(request):
        return _sign_in_page(_("The form has expired. Please try again."), 400, email)
    try:
        credentials = api.SignInSchema().load({"email": email, "password": request.form.get("password", "")})
    except ValidationError:
        return _sign_in_page(_("Enter your e-mail address and password."), 422, email)
    try:
        token, session = api.sign_in(credentials)
    except Problem as problem:
        return _sign_in_page(_sign_in_failure(problem.status), problem.status, email, problem.headers)
    response = redirect(url_for("portal.home"), 303)
    api.set_session_cookie(response, token, session.expires_at)
    response.delete_cookie(forms.COOKIE, path=url_for("portal.sign_in"))
    return response


@portal.post("/sign-out")
@accepts_raw_body
def sign_out():
    response = redirect(url_for("portal.home"), 303)
    signed_in = caller()
    # Signing out of a session that is gone already is fine; a forged request is not.
    if signed_in is not None:
        if not csrf_ok(signed_in, request):
            return _error_page(403)
        api.sign_out(signed_in, response)
    return response


def _sign_in_failure(status: int) -> str:
    if status == 429:
        return _("Too many attempts. Wait a while before trying again.")
    if status >= 500:
        return _("Signing in is not available right now. Try again in a moment.")
    return _("The e-mail address or password is not right.")


def _sign_in_page(error: str | None = None, status: int = 200, email: str = "", headers=None) -> Response:
    return form_page(
        "portal/sign_in.html", "portal.sign_in", status, headers, active="sign_in", error=error, email=email
    )


@portal.app_template_global()
def session_csrf_field() -> str:
    return CSRF_FORM_FIELD


@portal.app_template_global()
def idempotency_field() -> str:
    return calls.IDEMPOTENCY_FIELD


@portal.app_template_global()
def idempotency_key(action: str) -> str:
    return calls.idempotency_key(action)


def _error_texts(status: int) -> tuple[str, str]:
    """Title and explanation of an error page, in the page's language."""
    if status == 403:
        return _("Access denied"), _("You cannot do this here.")
    if status == 404:
        return _("Page not found"), _("The page you are looking for does not exist or has moved.")
    if status == 405:
        return _("Not allowed"), _("This page cannot be used this way.")
    if status == 429:
        return _("Too many requests"), _("Wait a while before trying again.")
    if status == 503:
        return _("Temporarily unavailable"), _(
            "This part of the Customer Center is not available right now. Try again shortly."
        )
    if status >= 500:
        return _("Something went wrong"), _("Something went wrong on our side. Try again shortly.")
    return _("Something went wrong"), _("We could not handle your request.")


def _error_page(status: int, original: Response | None = None) -> Response:
    title, text = _error_texts(status)
    try:
        caller()
    except Exception:  # the session store may be what failed; the error page must still show
        g.portal_caller = None
    return page(
        "portal/error.html",
        status,
        original.headers if original is not None else None,
        error_status=status,
        error_title=title,
        error_text=text,
    )


@portal.after_app_request
def _pages(response: Response) -> Response:
    if request.path.startswith("/api/"):
        return response
    # The app answers every error as problem+json; a browser asking for a page gets a page.
    if response.mimetype == PROBLEM_MEDIA_TYPE:
        response = _error_page(response.status_code, response)
    language = i18n.asked_language()
    if language and request.cookies.get(i18n.COOKIE) != language:
        response.set_cookie(
            i18n.COOKIE,
            language,
            max_age=i18n.COOKIE_MAX_AGE,
            samesite="Lax",
            httponly=True,
            secure=settings().public_url.startswith("https://"),
            path="/",
        )
    return response
