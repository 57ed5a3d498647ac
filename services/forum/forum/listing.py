"""Pages of topics and posts with stable cursors.

Posts in a topic are in the order they were written, so the last post's id is a cursor that
new posts cannot disturb: they only ever come after it.

Topics are newest activity first, and a reply moves its topic to the top. Paging by the live
`last_activity_at` would then show a topic twice or skip one whenever somebody replies while
a reader pages. So the first page fixes a moment (`as_of`) in the cursor, and every later page
is ordered by each topic's activity *as it was then*: a topic replied to since is placed by
its newest post up to `as_of`, and topics started since are left out. The pages of one walk
therefore never repeat or miss a topic; pinned topics come first.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from sqlalchemy import DateTime, and_, case, func, or_, select, type_coerce
from sqlalchemy.orm import Session, aliased

from forum.models import Author, Post, Topic
from shared.db import as_utc, utc_now
from shared.problems import Problem
from shared.web import MAX_ID

# The shapes of the cursors this module gives out; anything else was not made by us.
TOPICS_CURSOR = frozenset({"as_of", "pinned", "at", "id"})
POSTS_CURSOR = frozenset({"after"})


def encode(cursor: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str | None, shape: frozenset[str]) -> dict | None:
    """The position in a cursor of the given shape (its keys), or None for the first page."""
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(value, dict):
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(
            422, "invalid-cursor", "Invalid cursor", "Use the `next` value of the previous page as it was."
        ) from None
    if value.keys() != shape:
        raise _damaged()
    return value


def _damaged() -> Problem:
    return Problem(422, "invalid-cursor", "Invalid cursor", "The cursor is damaged.")


def position_id(value) -> int:
    """An id kept in a cursor, checked like one taken from a path."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise _damaged()
    return value


def _moment(value) -> datetime:
    """A moment kept in a cursor: ISO 8601, in UTC (SQLite compares them as text)."""
    try:
        return as_utc(datetime.fromisoformat(value)).astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        raise _damaged() from None


def topics_page(
    session: Session, category_id: int, cursor: str | None, limit: int, include_hidden: bool
) -> tuple[list[tuple[Topic, Author, datetime]], str | None]:
    """One page of a category's topics: (topic, its author, its activity as of the walk's moment)."""
    position = decode(cursor, TOPICS_CURSOR) or {}
    as_of = _moment(position["as_of"]) if position else utc_now()
    newest_post = aliased(Post)
    activity = type_coerce(
        case(
            (Topic.last_activity_at <= as_of, Topic.last_activity_at),
            else_=select(func.max(newest_post.created_at))
            .where(newest_post.topic_id == Topic.id, newest_post.created_at <= as_of)
            .scalar_subquery(),
        ),
        DateTime(timezone=True),
    ).label("activity")
    query = (
        select(Topic, Author, activity)
        .join(Author, Author.user_id == Topic.author_id)
        .where(Topic.category_id == category_id, Topic.created_at <= as_of)
    )
    if not include_hidden:
        query = query.where(Topic.hidden.is_(False))
    if position:
        if not isinstance(position["pinned"], bool):
            raise _damaged()
        pinned, at, topic_id = position["pinned"], _moment(position["at"]), position_id(position["id"])
        after_in_group = or_(activity < at, and_(activity == at, Topic.id < topic_id))
        query = query.where(
            or_(Topic.pinned.is_(False), and_(Topic.pinned.is_(True), after_in_group))
            if pinned
            else and_(Topic.pinned.is_(False), after_in_group)
        )
    rows = session.execute(query.order_by(Topic.pinned.desc(), activity.desc(), Topic.id.desc()).limit(limit + 1)).all()
    page = [(topic, author, as_utc(at)) for topic, author, at in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last_topic, _, last_at = page[-1]
        next_cursor = encode(
            {"as_of": as_of.isoformat(), "pinned": last_topic.pinned, "at": last_at.isoformat(), "id": last_topic.id}
        )
    return page, next_cursor


def posts_page(
    session: Session, topic_id: int, cursor: str | None, limit: int
) -> tuple[list[tuple[Post, Author]], str | None]:
    """One page of a topic's posts, oldest first (hidden ones too: the caller blanks them)."""
    position = decode(cursor, POSTS_CURSOR) or {}
    after = position_id(position.get("after", 0))
    rows = session.execute(
        select(Post, Author)
        .join(Author, Author.user_id == Post.author_id)
        .where(Post.topic_id == topic_id, Post.id > after)
        .order_by(Post.id)
        .limit(limit + 1)
    ).all()
    page = [(post, author) for post, author in rows[:limit]]
    next_cursor = encode({"after": page[-1][0].id}) if len(rows) > limit else None
    return page, next_cursor
