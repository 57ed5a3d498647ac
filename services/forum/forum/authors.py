"""Authors: people as the forum shows them, kept from identity's `identity.user.changed`.

Identity's event is the truth and carries a growing `version`. Until the first event for a
person arrives (it may lag behind their first post), the forum takes the name, e-mail and
staff flag from their own signed sign-in token and marks the row version 0, so any event wins.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from forum.models import Author
from shared.auth import Principal
from shared.events import Event


def ensure_author(session: Session, principal: Principal) -> Author:
    """The signed-in person's author row, created from their token when identity is behind."""
    author = session.get(Author, principal.subject)
    if author is None:
        author = Author(
            user_id=principal.subject,
            name=principal.name or principal.email or "?",
            email=principal.email,
            company_name=None,
            staff=principal.staff,
            active=True,
            version=0,
        )
        session.add(author)
        session.flush()
    elif author.version == 0:
        author.name = principal.name or author.name
        author.email = principal.email or author.email
        author.staff = principal.staff
    return author


def on_user_changed(session: Session, event: Event) -> None:
    """Keep the newest state; an older version arriving late changes nothing."""
    data = event.data
    author = session.get(Author, data["user_id"], with_for_update=True)
    if author is None:
        author = Author(user_id=data["user_id"], version=-1)
        session.add(author)
    if data["version"] <= author.version:
        return
    author.name = data["name"]
    author.email = data["email"]
    author.company_name = data.get("company_name")
    author.staff = data["staff"]
    author.active = data["active"]
    author.version = data["version"]


def view(author: Author, by_staff: bool) -> dict:
    """An author as api.md shows one; `staff` is how they wrote this post."""
    return {
        "id": author.user_id,
        "name": author.name,
        "company_name": author.company_name,
        "staff": by_staff,
        "active": author.active,
    }
