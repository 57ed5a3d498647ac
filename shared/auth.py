"""The identity the gateway passes to services: a short-lived signed token (JWT, HS256).

The gateway authenticates the caller (session cookie or bearer token) and sends the service
`X-Identity: <token>` signed with `INTERNAL_AUTH_SECRET`, addressed to that one service
(`aud`) and valid for seconds. A service trusts nothing else: a request without a valid
token for it is anonymous, whatever other headers say.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import jwt
from flask import current_app, g, request

from shared.problems import Problem

HEADER = "X-Identity"
TOKEN_TTL = 60  # seconds; long enough for a slow request, short enough to be useless if leaked
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a signed-in user, another component acting for itself, or an
    anonymous caller the gateway vouches for (kind "anonymous", with its address)."""

    subject: str
    kind: str = "user"  # "user", "service" or "anonymous"
    email: str | None = None
    name: str | None = None
    staff: bool = False
    session_id: str | None = None
    # The caller's network address as the gateway saw it (throttling "per client").
    client: str | None = None
    # How many times identity has changed this person's memberships or rights (as of the
    # caller's session): a service whose copy is older asks identity first (shared.memberships).
    access_version: int = 0
    claims: dict = field(default_factory=dict, compare=False)

    @property
    def user_id(self) -> str | None:
        return self.subject if self.kind == "user" else None


def issue(secret: str, audience: str, principal: Principal, ttl: int = TOKEN_TTL) -> str:
    now = int(time.time())
    claims = {
        "sub": principal.subject,
        "kind": principal.kind,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
        "staff": principal.staff,
    }
    for key in ("email", "name", "session_id", "client"):
        value = getattr(principal, key)
        if value is not None:
            claims[key] = value
    if principal.access_version:
        claims["access_version"] = principal.access_version
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(secret: str, audience: str, token: str) -> Principal:
    """Raises jwt.InvalidTokenError for anything but a valid, unexpired token for `audience`."""
    claims = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        audience=audience,
        options={"require": ["sub", "aud", "exp", "iat"]},
    )
    return Principal(
        subject=str(claims["sub"]),
        kind=claims.get("kind", "user"),
        email=claims.get("email"),
        name=claims.get("name"),
        staff=bool(claims.get("staff")),
        session_id=claims.get("session_id"),
        client=claims.get("client"),
        access_version=_whole_number(claims.get("access_version")),
        claims=claims,
    )


def _whole_number(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def current_principal() -> Principal | None:
    """The verified caller of this request, or None (cached on `g`)."""
    if "principal" not in g:
        g.principal = None
        token = request.headers.get(HEADER)
        if token:
            settings = current_app.extensions["settings"]
            try:
                g.principal = verify(settings.require_secret(), settings.service, token)
            except jwt.InvalidTokenError:
                g.principal = None
    return g.principal


def client_address() -> str:
    """Who is asking, for throttling: the address the gateway signed, else the peer's."""
    principal = current_principal()
    return (principal.client if principal and principal.client else None) or request.remote_addr or "unknown"


def signed_in_user() -> Principal:
    """The signed-in user of this request, or a 401 problem."""
    principal = current_principal()
    if principal is None or principal.kind != "user":
        raise Problem(401, "unauthenticated", "Sign-in required", "Sign in to use this resource.")
    return principal


def signed_in(view):
    """The view needs a signed-in user (401 otherwise)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        signed_in_user()
        return view(*args, **kwargs)

    return wrapper


def staff_only(view):
    """The view is for vendor staff (401 anonymous, 403 signed in without staff)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not signed_in_user().staff:
            raise Problem(403, "forbidden", "Forbidden", "This resource is for the vendor's staff.")
        return view(*args, **kwargs)

    return wrapper


def service_only(*callers: str):
    """The view is an internal call from one of `callers` (e.g. the gateway)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_principal()
            if principal is None or principal.kind != "service" or principal.subject not in callers:
                raise Problem(401, "unauthenticated", "Unauthenticated", "An internal call needs a service token.")
            return view(*args, **kwargs)

        return wrapper

    return decorate
