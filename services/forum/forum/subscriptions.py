"""Watching topics and categories, and the e-mails that tell watchers about new posts.

A new post leaves a `pending_notifications` row for each watcher of its topic or category
(never for its author) in the transaction that writes the post. The notifier
(`python -m forum.notifier`) turns a watcher's rows into one digest e-mail once the oldest
has waited `FORUM_DIGEST_DELAY` seconds, and deletes them in the same transaction that
queues the mail (shared.mail): each post reaches each watcher exactly once, and a busy topic
sends a watcher at most one mail per delay instead of one per post.

Every digest carries, per topic, a link that ends the watch that caused it. The link is
signed (itsdangerous, salted for this one use) so it works without signing in and cannot be
forged for somebody else's watch.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forum.models import Author, Category, PendingNotification, Post, Topic, Watch
from shared import mail
from shared.db import utc_now

_SALT = "forum-unsubscribe"


def watch(session: Session, user_id: str, *, topic_id: int | None = None, category_id: int | None = None) -> Watch:
    """Start watching (watching twice is watching)."""
    found = _find(session, user_id, topic_id, category_id)
    if found is not None:
        return found
    try:
        with session.begin_nested():
            found = Watch(user_id=user_id, topic_id=topic_id, category_id=category_id, created_at=utc_now())
            session.add(found)
    except IntegrityError:  # a concurrent request of the same person won
        found = _find(session, user_id, topic_id, category_id)
    return found


def unwatch(session: Session, user_id: str, *, topic_id: int | None = None, category_id: int | None = None) -> None:
    session.execute(
        delete(Watch).where(Watch.user_id == user_id, Watch.topic_id == topic_id, Watch.category_id == category_id)
    )


def _find(session: Session, user_id: str, topic_id: int | None, category_id: int | None) -> Watch | None:
    return session.scalar(
        select(Watch).where(Watch.user_id == user_id, Watch.topic_id == topic_id, Watch.category_id == category_id)
    )


def watching(session: Session, user_id: str, topic: Topic) -> tuple[bool, bool]:
    """Whether the person watches the topic itself, and whether its whole category."""
    found = session.execute(
        select(Watch.topic_id, Watch.category_id).where(
            Watch.user_id == user_id,
            or_(Watch.topic_id == topic.id, Watch.category_id == topic.category_id),
        )
    ).all()
    return any(t is not None for t, _ in found), any(c is not None for _, c in found)


def of(session: Session, user_id: str) -> list[dict]:
    """What a person watches, for the "my subscriptions" page."""
    rows = session.execute(
        select(Watch, Topic.title, Category.name)
        .outerjoin(Topic, Topic.id == Watch.topic_id)
        .outerjoin(Category, Category.id == Watch.category_id)
        .where(Watch.user_id == user_id, or_(Watch.topic_id.is_(None), Topic.hidden.is_(False)))
        .order_by(Watch.created_at.desc(), Watch.id.desc())
    )
    return [
        {
            "kind": "topic" if w.topic_id is not None else "category",
            "id": w.topic_id if w.topic_id is not None else w.category_id,
            "title": title if w.topic_id is not None else name,
            "since": w.created_at,
        }
        for w, title, name in rows
    ]


def notify_watchers(session: Session, topic: Topic, post: Post) -> None:
    """Leave a note for every watcher of the topic or its category except the post's author."""
    watchers = select(Watch.user_id).where(
        or_(Watch.topic_id == topic.id, Watch.category_id == topic.category_id),
        Watch.user_id != post.author_id,
    )
    user_ids = set(session.scalars(watchers))
    if user_ids:
        now = utc_now()
        session.execute(
            insert(PendingNotification),
            [{"user_id": user_id, "post_id": post.id, "created_at": now} for user_id in sorted(user_ids)],
        )


# --- unsubscribe links ---------------------------------------------------------------------------


def unsubscribe_token(secret: str, watch: Watch) -> str:
    target = {"t": watch.topic_id} if watch.topic_id is not None else {"c": watch.category_id}
    return URLSafeSerializer(secret, salt=_SALT).dumps({"u": watch.user_id, **target})


def unsubscribe(session: Session, secret: str, token: str) -> dict | None:
    """End the watch a link names; None when the token is not one we signed."""
    try:
        claims = URLSafeSerializer(secret, salt=_SALT).loads(token)
        user_id, topic_id, category_id = str(claims["u"]), claims.get("t"), claims.get("c")
    except (BadSignature, KeyError, TypeError, AttributeError):
        return None
    unwatch(session, user_id, topic_id=topic_id, category_id=category_id)
    if topic_id is not None:
        topic = session.get(Topic, topic_id)
        return {"kind": "topic", "id": topic_id, "title": topic.title if topic else ""}
    category = session.get(Category, category_id)
    return {"kind": "category", "id": category_id, "title": category.name if category else ""}


# --- digests -------------------------------------------------------------------------------------


def due_watchers(session: Session, older_than: datetime, limit: int = 100) -> list[str]:
    """Watchers whose oldest note has waited long enough."""
    return list(
        session.scalars(
            select(PendingNotification.user_id)
            .group_by(PendingNotification.user_id)
            .having(func.min(PendingNotification.created_at) <= older_than)
            .limit(limit)
        )
    )


def send_digest(session: Session, user_id: str, secret: str, public_url: str) -> int:
    """Turn one watcher's notes into one queued mail; returns how many posts it names.

    The notes are locked (SKIP LOCKED: another notifier takes other watchers) and deleted in
    the transaction that queues the mail, so a post is mailed to a watcher exactly once.
    """
    notes_query = select(PendingNotification).where(PendingNotification.user_id == user_id)
    if session.get_bind().dialect.name == "postgresql":
        notes_query = notes_query.with_for_update(skip_locked=True)
    notes = list(session.scalars(notes_query))
    if not notes:
        return 0
    session.execute(delete(PendingNotification).where(PendingNotification.id.in_([n.id for n in notes])))
    reader = session.get(Author, user_id)
    if reader is None or not reader.active or not reader.email:
        return 0
    rows = session.execute(
        select(Post, Topic, Author)
        .join(Topic, Topic.id == Post.topic_id)
        .join(Author, Author.user_id == Post.author_id)
        .where(Post.id.in_([n.post_id for n in notes]), Post.hidden.is_(False), Topic.hidden.is_(False))
        .order_by(Post.id)
    ).all()
    if not rows:
        return 0
    by_topic: dict[int, list[tuple[Post, Author]]] = defaultdict(list)
    topics: dict[int, Topic] = {}
    for post, topic, author in rows:
        by_topic[topic.id].append((post, author))
        topics[topic.id] = topic
    sections = []
    for topic_id, posts in by_topic.items():
        topic = topics[topic_id]
        cause = _find(session, user_id, topic_id, None) or _find(session, user_id, None, topic.category_id)
        names = ", ".join(sorted({author.name for _, author in posts}))
        lines = [
            f"• {topic.title}",
            f"  {len(posts)} × ({names})",
            f"  {public_url}/forum/topics/{topic_id}#post-{posts[0][0].id}",
        ]
        if cause is not None:
            token = unsubscribe_token(secret, cause)
            lines.append(f"  Odhlásit / Unsubscribe: {public_url}/forum/unsubscribe?token={token}")
        sections.append("\n".join(lines))
    count = len(rows)
    mail.queue(
        session,
        reader.email,
        f"Nové příspěvky ve fóru ({count}) / New forum posts ({count})",
        f"""Dobrý den, {reader.name},

ve sledovaných diskusích Zákaznického centra přibyly nové příspěvky.
New posts were written in the Customer Center discussions you watch.

{chr(10).join(sections)}

Sledování změníte na / Manage what you watch: {public_url}/forum/subscriptions

Zákaznické centrum / Customer Center
""",
    )
    return count
