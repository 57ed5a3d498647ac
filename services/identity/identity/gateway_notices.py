"""What identity tells the gateway in its answer, for the gateway to do before the caller hears it.

The gateway holds the sessions and signs each request's identity token, so two kinds of change
made here count only once it knows them:
- `X-Access-Versions: <user id>=<version>, ...`: these people's memberships or rights changed;
  their sessions' tokens carry the new number from the next request on, and a service whose
  copy is older asks identity before it decides (`shared.memberships`);
- `X-End-Sessions: <user id>[;keep=<session id>], ...`: end these people's sessions (a password
  changed or reset), but the one that changed it.

Domain code notes them on the database session during the change (`access_changed`,
`end_sessions`); they are taken over only when that transaction commits (a rolled-back change
tells nothing) and written onto the answer. The gateway applies them to its sessions before it
passes the answer on (`gateway.identity_notices`), so the next request after a `2xx` already
counts the change, with the broker up or down.
"""

from __future__ import annotations

from flask import Flask, g, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

ACCESS_HEADER = "X-Access-Versions"
END_SESSIONS_HEADER = "X-End-Sessions"
_PENDING = "gateway_notices"


def access_changed(session: Session, user_id: str, access_version: int) -> None:
    _pending(session)["access"][user_id] = access_version


def end_sessions(session: Session, user_id: str, keep: str | None = None) -> None:
    _pending(session)["end"][user_id] = keep


def _pending(session: Session) -> dict:
    return session.info.setdefault(_PENDING, {"access": {}, "end": {}})


def register(app: Flask) -> None:
    """Carry committed notices from identity's database sessions onto the answer."""
    sessions = app.extensions["database"].sessions

    @event.listens_for(sessions, "after_commit")
    def _committed(session: Session) -> None:
        pending = session.info.pop(_PENDING, None)
        if pending and has_request_context():
            notices = g.setdefault(_PENDING, {"access": {}, "end": {}})
            for user_id, version in pending["access"].items():
                notices["access"][user_id] = max(version, notices["access"].get(user_id, 0))
            notices["end"].update(pending["end"])

    @event.listens_for(sessions, "after_rollback")
    def _rolled_back(session: Session) -> None:
        session.info.pop(_PENDING, None)

    @app.after_request
    def _tell_the_gateway(response):
        notices = g.get(_PENDING)
        if notices:
            if notices["access"]:
                response.headers[ACCESS_HEADER] = ", ".join(f"{u}={v}" for u, v in notices["access"].items())
            if notices["end"]:
                response.headers[END_SESSIONS_HEADER] = ", ".join(
                    u if keep is None else f"{u};keep={keep}" for u, keep in notices["end"].items()
                )
        return response
