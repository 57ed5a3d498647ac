"""Topics and posts: starting, replying, editing, solving, flagging and moderating.

Every function takes the session of the caller's unit of work and the signed-in author, and
raises a `Problem` when the rules say no. Who may do what is decided here, in the forum
service itself: the gateway only passes on who is asking.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forum import markdown, search, subscriptions
from forum.models import Author, Category, Flag, Post, PostRevision, Topic
from shared.db import utc_now
from shared.problems import Problem


def not_found(what: str = "topic") -> Problem:
    return Problem(404, "not-found", "Not found", f"No such {what}.")


def category_or_404(session: Session, category_id: int) -> Category:
    category = session.get(Category, category_id)
    if category is None:
        raise not_found("category")
    return category


def topic_or_404(session: Session, topic_id: int, staff: bool, for_update: bool = False) -> Topic:
    """A topic the caller may see: hidden ones exist only for staff."""
    topic = session.get(Topic, topic_id, with_for_update=for_update)
    if topic is None or (topic.hidden and not staff):
        raise not_found()
    return topic


def post_or_404(session: Session, post_id: int, staff: bool, for_update: bool = False) -> tuple[Post, Topic]:
    """A post the caller may see, and its topic (locked when the caller is about to change them)."""
    post = session.get(Post, post_id)
    if post is None or (post.hidden and not staff):
        raise not_found("post")
    return post, topic_or_404(session, post.topic_id, staff, for_update=for_update)


def _count_replies(session: Session, topic: Topic, change: int, **values) -> None:
    session.execute(
        update(Topic).where(Topic.id == topic.id).values(replies=Topic.replies + change, **values),
        execution_options={"synchronize_session": False},
    )
    session.refresh(topic)


def _first_post_id(session: Session, topic_id: int) -> int:
    return session.scalar(select(func.min(Post.id)).where(Post.topic_id == topic_id))


def _add_post(session: Session, topic: Topic, author: Author, body: str, title: str | None) -> Post:
    now = utc_now()
    post = Post(
        topic_id=topic.id,
        author_id=author.user_id,
        by_staff=author.staff,
        body=body,
        body_html=markdown.render(body),
        created_at=now,
        hidden=False,
    )
    session.add(post)
    session.flush()
    search.index_post(session, post.id, title, markdown.plain_text(post.body_html))
    return post


def start_topic(session: Session, author: Author, category_id: int, title: str, body: str) -> tuple[Topic, Post]:
    category = category_or_404(session, category_id)
    now = utc_now()
    topic = Topic(
        category_id=category.id,
        title=title,
        author_id=author.user_id,
        created_at=now,
        last_activity_at=now,
        replies=0,
        pinned=False,
        locked=False,
        hidden=False,
    )
    session.add(topic)
    session.flush()
    post = _add_post(session, topic, author, body, title)
    subscriptions.watch(session, author.user_id, topic_id=topic.id)
    subscriptions.notify_watchers(session, topic, post)
    return topic, post


def reply(session: Session, author: Author, topic_id: int, body: str) -> Post:
    # Locking the topic row orders concurrent replies' counters and activity times.
    topic = topic_or_404(session, topic_id, author.staff, for_update=True)
    if topic.locked and not author.staff:
        raise Problem(409, "topic-locked", "Topic locked", "This topic is closed to new posts.")
    post = _add_post(session, topic, author, body, None)
    # In SQL, not read-modify-write: on SQLite the row lock above is no lock at all.
    _count_replies(session, topic, +1, last_activity_at=post.created_at)
    subscriptions.watch(session, author.user_id, topic_id=topic.id)
    subscriptions.notify_watchers(session, topic, post)
    return post


def edit_post(session: Session, author: Author, post_id: int, body: str) -> Post:
    """Authors edit their own posts; the body before each edit is kept as a revision."""
    post, topic = post_or_404(session, post_id, author.staff, for_update=True)
    if post.author_id != author.user_id:
        raise Problem(403, "not-your-post", "Not your post", "Only the author can edit a post.")
    if topic.locked and not author.staff:
        raise Problem(409, "topic-locked", "Topic locked", "Posts in a closed topic cannot be edited.")
    if body == post.body:
        return post
    number = (session.scalar(select(func.max(PostRevision.number)).where(PostRevision.post_id == post.id)) or 0) + 1
    session.add(
        PostRevision(
            post_id=post.id,
            number=number,
            body=post.body,
            written_at=post.edited_at or post.created_at,
            replaced_by=author.user_id,
        )
    )
    post.body = body
    post.body_html = markdown.render(body)
    post.edited_at = utc_now()
    is_first = _first_post_id(session, topic.id) == post.id
    search.index_post(session, post.id, topic.title if is_first else None, markdown.plain_text(post.body_html))
    return post


def revisions(session: Session, post: Post) -> list[PostRevision]:
    return list(
        session.scalars(select(PostRevision).where(PostRevision.post_id == post.id).order_by(PostRevision.number))
    )


def mark_solution(session: Session, author: Author, topic_id: int, post_id: int | None) -> Topic:
    """The topic's author (or staff) marks the reply that answered the question, or clears it."""
    topic = topic_or_404(session, topic_id, author.staff, for_update=True)
    if topic.author_id != author.user_id and not author.staff:
        raise Problem(403, "not-your-topic", "Not your topic", "Only the topic's author can mark its solution.")
    if post_id is not None:
        post = session.get(Post, post_id)
        if post is None or post.topic_id != topic.id or post.hidden:
            raise Problem(
                422, "not-in-topic", "Not a post of this topic", "The solution must be a visible post of this topic."
            )
        if post.id == _first_post_id(session, topic.id):
            raise Problem(422, "not-a-reply", "Not a reply", "The question itself cannot be its solution.")
    topic.solution_post_id = post_id
    return topic


def flag_post(session: Session, author: Author, post_id: int, reason: str) -> Flag:
    """Ask staff to look at a post; flagging the same post again changes nothing."""
    post, _ = post_or_404(session, post_id, author.staff)
    existing = session.scalar(select(Flag).where(Flag.post_id == post.id, Flag.user_id == author.user_id))
    if existing is not None:
        return existing
    flag = Flag(post_id=post.id, user_id=author.user_id, reason=reason, status="open", created_at=utc_now())
    try:
        with session.begin_nested():
            session.add(flag)
    except IntegrityError:  # the same person flagged it at the same moment
        return session.scalar(select(Flag).where(Flag.post_id == post.id, Flag.user_id == author.user_id))
    return flag


# --- moderation (staff) -----------------------------------------------------------------------


def moderate_topic(session: Session, topic_id: int, changes: dict) -> Topic:
    """Pin, lock, hide, rename or move a topic."""
    topic = topic_or_404(session, topic_id, staff=True, for_update=True)
    if "category_id" in changes:
        topic.category_id = category_or_404(session, changes["category_id"]).id
    for field in ("pinned", "locked", "hidden"):
        if field in changes:
            setattr(topic, field, changes[field])
    if "title" in changes and changes["title"] != topic.title:
        topic.title = changes["title"]
        first = session.get(Post, _first_post_id(session, topic.id))
        search.index_post(session, first.id, topic.title, markdown.plain_text(first.body_html))
    return topic


def hide_post(session: Session, staff: Author, post_id: int, hidden: bool) -> Post:
    """Hide or show a post again. Hiding the opening post hides the whole topic."""
    post, topic = post_or_404(session, post_id, staff=True, for_update=True)
    if post.hidden == hidden:
        return post
    post.hidden = hidden
    if post.id == _first_post_id(session, topic.id):
        topic.hidden = hidden
    else:
        _count_replies(session, topic, -1 if hidden else +1)
        if hidden and topic.solution_post_id == post.id:
            topic.solution_post_id = None
    if hidden:  # whoever flagged it has been heard
        session.execute(
            update(Flag)
            .where(Flag.post_id == post.id, Flag.status == "open")
            .values(status="hidden", resolved_by=staff.user_id, resolved_at=utc_now())
        )
    return post


def resolve_flag(session: Session, staff: Author, flag_id: int, action: str) -> Flag:
    """`hide` the flagged post (resolving every open flag on it) or `dismiss` this flag."""
    flag = session.get(Flag, flag_id, with_for_update=True)
    if flag is None:
        raise not_found("flag")
    if action == "hide":
        hide_post(session, staff, flag.post_id, True)
        session.refresh(flag)
    elif flag.status == "open":
        flag.status, flag.resolved_by, flag.resolved_at = "dismissed", staff.user_id, utc_now()
    return flag
