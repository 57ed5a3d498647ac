"""Sessions: who is calling. A browser holds the token in an HttpOnly cookie and must send
the session's CSRF token on every state-changing request; an API client sends it as
`Authorization: Bearer <token>`. Tokens come from a CSPRNG and are stored as SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Request
from sqlalchemy import Row, bindparam, delete, select, update

from gateway.models import Session
from shared.auth import Principal
from shared.db import Database, as_utc, utc_now
from shared.problems import Problem

COOKIE = "cc_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FORM_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Writing last_seen_at on every request would turn reads into writes; this much is precise enough.
TOUCH_EVERY = timedelta(seconds=60)
# Every forwarded request looks its session up: one plain SELECT on the unique token hash,
# without the ORM's unit of work (it was a fifth of the gateway's CPU per request).
_SESSIONS = Session.__table__
_FIND = select(_SESSIONS).where(_SESSIONS.c.token_hash == bindparam("token_hash"))
_INSERT = _SESSIONS.insert()
# A session token is `secrets.token_urlsafe(TOKEN_BYTES)`: exactly this shape. Anything else
# (a partner's API key `cc_<id>_<secret>`, a stray cookie) cannot be a session of ours and is
# never looked up, so requests that need no session never touch the gateway's database: the
# partner API and the update check keep working while it is away.
TOKEN_BYTES = 32
_TOKEN_SHAPE = re.compile(rf"[A-Za-z0-9_-]{{{len(secrets.token_urlsafe(TOKEN_BYTES))}}}\Z")


def could_be_session_token(token: str) -> bool:
    """Whether `token` has the shape of the tokens `SessionStore.open` hands out."""
    return _TOKEN_SHAPE.match(token) is not None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    session: Row  # the sessions table's row (id, user_id, email, name, staff, csrf_token, ...)
    via_cookie: bool

    @property
    def principal(self) -> Principal:
        s = self.session
        return Principal(
            subject=s.user_id,
            email=s.email,
            name=s.name,
            staff=s.staff,
            session_id=s.id,
            access_version=s.access_version or 0,
        )


class SessionStore:
    def __init__(self, database: Database, idle_timeout: int, absolute_timeout: int):
        self.database = database
        self.idle = timedelta(seconds=idle_timeout)
        self.absolute = timedelta(seconds=absolute_timeout)

    def open(self, user: dict) -> tuple[str, Session]:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utc_now()
        row = {
            "id": str(uuid.uuid4()),
            "token_hash": token_hash(token),
            "csrf_token": secrets.token_urlsafe(32),
            "user_id": user["id"],
            "email": user["email"],
            "name": user["name"],
            "staff": bool(user.get("staff")),
            "created_at": now,
            "last_seen_at": now,
            "expires_at": now + self.absolute,
            "access_version": int(user.get("access_version") or 0),
        }
        # One plain INSERT, like find(): the ORM's unit of work cost ≈ 0.25 ms CPU, this ≈ 0.1 ms.
        with self.database.engine.begin() as connection:
            connection.execute(_INSERT, row)
        return token, Session(**row)

    def find(self, token: str) -> Row | None:
        """The live session for this token, or None. Read fresh from the database on every
        call (no cache), so a sign-out in any worker takes effect on the next request; a token
        that cannot be one of ours (`could_be_session_token`) is None without asking it."""
        if not could_be_session_token(token):
            return None
        now = utc_now()
        with self.database.engine.connect() as connection:
            row = connection.execute(_FIND, {"token_hash": token_hash(token)}).first()
        if row is None:
            return None
        session = row  # read-only attribute access is all callers need: no ORM instance to build
        last_seen = as_utc(session.last_seen_at)
        if as_utc(session.expires_at) <= now or last_seen + self.idle <= now:
            with self.database.engine.begin() as connection:
                connection.execute(delete(Session).where(Session.id == session.id))
            return None
        if now - last_seen > TOUCH_EVERY:
            with self.database.engine.begin() as connection:
                connection.execute(update(Session).where(Session.id == session.id).values(last_seen_at=now))
        return session

    def refresh_person(self, user_id: str, name: str, email: str) -> None:
        """Identity has the person under another name or e-mail than their sessions remember
        (they renamed themselves since signing in): every session of theirs takes it over, so
        pages greet them by it and services receive it in their token."""
        with self.database.engine.begin() as connection:
            connection.execute(
                update(_SESSIONS)
                .where(_SESSIONS.c.user_id == user_id)
                .where((_SESSIONS.c.name != name) | (_SESSIONS.c.email != email))
                .values(name=name, email=email)
            )

    def raise_access_version(self, user_id: str, access_version: int) -> None:
        """Identity changed the person's memberships or rights: their tokens carry the new number
        from the next request on (a number is never lowered: notices may cross)."""
        with self.database.engine.begin() as connection:
            connection.execute(
                update(_SESSIONS)
                .where(_SESSIONS.c.user_id == user_id, _SESSIONS.c.access_version < access_version)
                .values(access_version=access_version)
            )

    def end_all(self, user_id: str, keep: str | None = None) -> None:
        """End every session of the person (but `keep`): their password changed."""
        condition = _SESSIONS.c.user_id == user_id
        if keep:
            condition &= _SESSIONS.c.id != keep
        with self.database.engine.begin() as connection:
            connection.execute(delete(_SESSIONS).where(condition))

    def close(self, session_id: str) -> None:
        with self.database.unit_of_work() as db:
            db.execute(delete(Session).where(Session.id == session_id))

    def signed_in(self, request: Request, detail: str = "Sign in to use this resource.") -> Caller:
        """The caller, or a 401 problem."""
        caller = self.caller(request)
        if caller is None:
            raise Problem(401, "unauthenticated", "Sign-in required", detail)
        return caller

    def caller(self, request: Request) -> Caller | None:
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            session = self.find(header[7:].strip())
            return Caller(session, via_cookie=False) if session else None
        cookie = request.cookies.get(COOKIE)
        if cookie:
            session = self.find(cookie)
            return Caller(session, via_cookie=True) if session else None
        return None


def csrf_ok(caller: Caller, request: Request) -> bool:
    """A cookie-borne session may only change state with its CSRF token (header or form field)."""
    if not caller.via_cookie or request.method in SAFE_METHODS:
        return True
    sent = request.headers.get(CSRF_HEADER) or (
        request.form.get(CSRF_FORM_FIELD)
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
        else None
    )
    return bool(sent) and hmac.compare_digest(sent, caller.session.csrf_token)


def require_csrf(caller: Caller, request: Request) -> None:
    """`csrf_ok`, or a 403 problem."""
    if not csrf_ok(caller, request):
        raise Problem(403, "csrf-failed", "Forbidden", "The CSRF token is missing or wrong.")


def expires_in(moment: datetime) -> int:
    return max(0, int((as_utc(moment) - utc_now()).total_seconds()))
