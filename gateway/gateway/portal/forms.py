"""CSRF protection for forms sent before there is a session (signing in).

Once signed in, a form carries the session's own CSRF token (`sessions.csrf_ok`). Before
that there is no session to bind a token to, yet a forged cross-site sign-in could still
sign a victim in to the attacker's account. So each form gets a random token twice: in a
hidden field and in a short-lived cookie. A POST must bring both and they must match; a
page on another site can neither read the cookie nor the page, so it cannot fill in the
field. The cookie is signed (itsdangerous, keyed by our secret with a purpose of its own)
so that it expires and so that a cookie planted from elsewhere is not accepted.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from shared.web import settings

COOKIE = "cc_form"
FIELD = "form_token"
MAX_AGE = 3600


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings().internal_auth_secret, salt="portal-form-token")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def set_cookie(response: Response, token: str, path: str) -> None:
    """Pair the form on `response`, whose hidden field holds `token`, with its cookie."""
    response.set_cookie(
        COOKIE,
        _serializer().dumps(token),
        max_age=MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=settings().public_url.startswith("https://"),
        path=path,
    )


def valid(request: Request) -> bool:
    sent = request.form.get(FIELD, "")
    try:
        expected = _serializer().loads(request.cookies.get(COOKIE, ""), max_age=MAX_AGE)
    except BadSignature:  # also covers an expired or missing cookie
        return False
    return bool(sent) and isinstance(expected, str) and hmac.compare_digest(sent, expected)
