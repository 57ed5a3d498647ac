"""Forum's HTTP API for signed-in users (api.md, "Forum"); staff moderation is in admin_api.

Views are thin: they check who is asking, open a unit of work and call forum.discussions or
forum.subscriptions, then shape the answer.
"""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from markupsafe import escape
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from forum import authors, discussions, listing, search, subscriptions
from forum.models import Author, Category, Post, Topic, Watch
from shared import throttle
from shared.auth import signed_in, signed_in_user
from shared.db import as_utc
from shared.idempotency import idempotent
from shared.names import Name
from shared.problems import Problem
from shared.web import MAX_ID, database, list_of

forum = Blueprint("forum", __name__, url_prefix="/api/v1/forum", description="Forum: categories, topics, posts")

MAX_BODY = 20_000  # characters of Markdown: a long how-to fits, a pasted log file does not


# --- schemas -------------------------------------------------------------------------------------


class Moment(fields.DateTime):
    """A point in time, always with its UTC offset (SQLite hands datetimes back naive)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(as_utc(value) if value is not None else None, attr, obj, **kwargs)


class AuthorSchema(Schema):
    id = fields.String()
    name = fields.String()
    company_name = fields.String(allow_none=True)
    staff = fields.Boolean()
    active = fields.Boolean()


class ForumCategorySchema(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    position = fields.Integer()
    product = fields.String(allow_none=True)
    topics = fields.Integer()
    last_activity_at = Moment(allow_none=True)
    watching = fields.Boolean()


class PostSchema(Schema):
    id = fields.Integer()
    topic_id = fields.Integer()
    author = fields.Nested(AuthorSchema)
    body = fields.String(metadata={"description": "the Markdown as written (empty when hidden)"})
    body_html = fields.String(metadata={"description": "rendered and sanitised"})
    created_at = Moment()
    edited_at = Moment(allow_none=True)
    hidden = fields.Boolean()
    solution = fields.Boolean()
    can_edit = fields.Boolean()


class TopicSummarySchema(Schema):
    id = fields.Integer()
    title = fields.String()
    category_id = fields.Integer()
    author = fields.Nested(AuthorSchema)
    replies = fields.Integer()
    created_at = Moment()
    last_activity_at = Moment()
    pinned = fields.Boolean()
    locked = fields.Boolean()
    hidden = fields.Boolean()
    solved = fields.Boolean()


class RecentTopicSchema(TopicSummarySchema):
    category_name = fields.String()


class RecentArgs(Schema):
    limit = fields.Integer(load_default=5, validate=validate.Range(min=1, max=20))


class TopicSchema(TopicSummarySchema):
    category_name = fields.String()
    solution_post_id = fields.Integer(allow_none=True)
    solution = fields.Nested(PostSchema, allow_none=True, metadata={"description": "the answer, shown first"})
    watching = fields.Boolean(metadata={"description": "the person watches this topic"})
    watching_category = fields.Boolean(metadata={"description": "the person watches its whole category"})
    posts = fields.List(fields.Nested(PostSchema))
    next = fields.String(allow_none=True)


class PageArgs(Schema):
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class NewTopicSchema(Schema):
    category_id = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=MAX_ID))
    title = Name(200, min_length=3, required=True)
    body = fields.String(required=True, validate=validate.Length(min=1, max=MAX_BODY))


class BodySchema(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=MAX_BODY))


class RevisionSchema(Schema):
    number = fields.Integer()
    body = fields.String()
    written_at = Moment()
    replaced_at = Moment()


class FlagRequestSchema(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


class FlagSchema(Schema):
    id = fields.Integer()
    post_id = fields.Integer()
    status = fields.String()
    created_at = Moment()


class SolutionSchema(Schema):
    post_id = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=MAX_ID))


class SubscriptionSchema(Schema):
    kind = fields.String(metadata={"description": "topic or category"})
    id = fields.Integer()
    title = fields.String()
    since = Moment()


class UnsubscribeSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=500))


class SearchArgs(Schema):
    q = fields.String(required=True, validate=validate.Length(min=1, max=200))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))


class HitSchema(Schema):
    topic_id = fields.Integer()
    post_id = fields.Integer()
    title = fields.String()
    excerpt = fields.String(metadata={"description": "plain text"})
    excerpt_html = fields.String(metadata={"description": "the excerpt, escaped, matches in <mark>"})


class HitListSchema(Schema):
    items = fields.List(fields.Nested(HitSchema))


# --- shaping -------------------------------------------------------------------------------------


def post_view(post: Post, author: Author, reader: Author, topic: Topic) -> dict:
    """A post as the reader may see it: a hidden one keeps its place but not its words."""
    blank = post.hidden and not reader.staff
    return {
        "id": post.id,
        "topic_id": post.topic_id,
        "author": authors.view(author, post.by_staff),
        "body": "" if blank else post.body,
        "body_html": "" if blank else post.body_html,
        "created_at": post.created_at,
        "edited_at": post.edited_at,
        "hidden": post.hidden,
        "solution": topic.solution_post_id == post.id,
        "can_edit": post.author_id == reader.user_id and not post.hidden and (not topic.locked or reader.staff),
    }


def topic_summary(topic: Topic, author: Author, last_activity_at=None, by_staff: bool | None = None) -> dict:
    """`by_staff`: how the opening post was written, when known; else the author's status now."""
    return {
        "id": topic.id,
        "title": topic.title,
        "category_id": topic.category_id,
        "author": authors.view(author, author.staff if by_staff is None else by_staff),
        "replies": topic.replies,
        "created_at": topic.created_at,
        "last_activity_at": last_activity_at or topic.last_activity_at,
        "pinned": topic.pinned,
        "locked": topic.locked,
        "hidden": topic.hidden,
        "solved": topic.solution_post_id is not None,
    }


def topic_view(session, topic: Topic, reader: Author, cursor: str | None, limit: int) -> dict:
    page, next_cursor = listing.posts_page(session, topic.id, cursor, limit)
    first = session.execute(select(Post).where(Post.topic_id == topic.id).order_by(Post.id).limit(1)).scalar_one()
    solution = None
    if topic.solution_post_id is not None:
        post = session.get(Post, topic.solution_post_id)
        if post is not None and not post.hidden:
            solution = post_view(post, session.get(Author, post.author_id), reader, topic)
    watching_topic, watching_category = subscriptions.watching(session, reader.user_id, topic)
    return {
        **topic_summary(topic, session.get(Author, topic.author_id), by_staff=first.by_staff),
        "category_name": session.get(Category, topic.category_id).name,
        "solution_post_id": topic.solution_post_id,
        "solution": solution,
        "watching": watching_topic,
        "watching_category": watching_category,
        "posts": [post_view(post, author, reader, topic) for post, author in page],
        "next": next_cursor,
    }


def _me(session) -> Author:
    return authors.ensure_author(session, signed_in_user())


def _excerpt_html(excerpt: str) -> str:
    return str(escape(excerpt)).replace(search.MARK_START, "<mark>").replace(search.MARK_END, "</mark>")


# --- categories ----------------------------------------------------------------------------------


@forum.route("/categories")
class Categories(MethodView):
    @signed_in
    @forum.response(200, list_of(ForumCategorySchema, "ForumCategoryList"))
    def get(self):
        with database().unit_of_work() as session:
            reader = signed_in_user()
            activity = {
                category_id: (topics, latest)
                for category_id, topics, latest in session.execute(
                    select(Topic.category_id, func.count(), func.max(Topic.last_activity_at))
                    .where(Topic.hidden.is_(False))
                    .group_by(Topic.category_id)
                )
            }
            watched = set(
                session.scalars(
                    select(Watch.category_id).where(Watch.user_id == reader.subject, Watch.category_id.is_not(None))
                )
            )
            items = [
                {
                    **_category(category),
                    "topics": activity.get(category.id, (0, None))[0],
                    "last_activity_at": activity.get(category.id, (0, None))[1],
                    "watching": category.id in watched,
                }
                for category in session.scalars(select(Category).order_by(Category.position, Category.name))
            ]
            return {"items": items, "next": None}


def _category(category: Category) -> dict:
    return {
        "id": category.id,
        "name": category.name,
        "description": category.description,
        "position": category.position,
        "product": category.product,
    }


@forum.route("/categories/<int:category_id>")
class OneCategory(MethodView):
    @signed_in
    @forum.response(200, ForumCategorySchema)
    def get(self, category_id):
        with database().unit_of_work() as session:
            category = discussions.category_or_404(session, category_id)
            watching = session.scalar(
                select(Watch.id).where(Watch.user_id == signed_in_user().subject, Watch.category_id == category.id)
            )
            return {**_category(category), "watching": watching is not None}


@forum.route("/categories/<int:category_id>/topics")
class CategoryTopics(MethodView):
    @signed_in
    @forum.arguments(PageArgs, location="query")
    @forum.response(200, list_of(TopicSummarySchema, "ForumTopicList"))
    def get(self, args, category_id):
        with database().unit_of_work() as session:
            discussions.category_or_404(session, category_id)
            page, next_cursor = listing.topics_page(
                session, category_id, args["cursor"], args["limit"], include_hidden=signed_in_user().staff
            )
            return {"items": [topic_summary(t, a, at) for t, a, at in page], "next": next_cursor}


@forum.route("/categories/<int:category_id>/watch")
class CategoryWatch(MethodView):
    @signed_in
    @forum.response(204)
    def put(self, category_id):
        with database().unit_of_work() as session:
            me = _me(session)
            discussions.category_or_404(session, category_id)
            subscriptions.watch(session, me.user_id, category_id=category_id)

    @signed_in
    @forum.response(204)
    def delete(self, category_id):
        with database().unit_of_work() as session:
            subscriptions.unwatch(session, signed_in_user().subject, category_id=category_id)


# --- topics and posts ----------------------------------------------------------------------------


def _throttle_posting(session, me: Author) -> None:
    """At most FORUM_POST_LIMIT posts (topics and replies) per person, as "posts/seconds"."""
    limit = throttle.limit_from_env("FORUM_POST_LIMIT", "10/60")
    key = f"forum-post:{me.user_id}"
    throttle.refuse_if_throttled(session, [(key, limit)])
    throttle.hit(session, key, limit)


@forum.route("/topics")
class Topics(MethodView):
    @signed_in
    @forum.arguments(RecentArgs, location="query")
    @forum.response(200, list_of(RecentTopicSchema, "ForumRecentTopicList"))
    def get(self, args):
        """The most recently active topics of the whole forum (the profile view shows them)."""
        with database().unit_of_work() as session:
            rows = session.execute(
                select(Topic, Author, Category.name)
                .join(Author, Author.user_id == Topic.author_id)
                .join(Category, Category.id == Topic.category_id)
                .where(Topic.hidden.is_(False))
                .order_by(Topic.last_activity_at.desc(), Topic.id.desc())
                .limit(args["limit"])
            ).all()
            return {
                "items": [topic_summary(topic, author) | {"category_name": name} for topic, author, name in rows],
                "next": None,
            }

    @idempotent
    @signed_in
    @forum.arguments(NewTopicSchema)
    @forum.response(201, TopicSchema)
    def post(self, body):
        with database().unit_of_work() as session:
            me = _me(session)
            _throttle_posting(session, me)
            topic, _ = discussions.start_topic(session, me, body["category_id"], body["title"].strip(), body["body"])
            return topic_view(session, topic, me, None, 20)


@forum.route("/topics/<int:topic_id>")
class OneTopic(MethodView):
    @signed_in
    @forum.arguments(PageArgs, location="query")
    @forum.response(200, TopicSchema)
    def get(self, args, topic_id):
        with database().unit_of_work() as session:
            me = _me(session)
            topic = discussions.topic_or_404(session, topic_id, me.staff)
            return topic_view(session, topic, me, args["cursor"], args["limit"])


@forum.route("/topics/<int:topic_id>/posts")
class TopicPosts(MethodView):
    @idempotent
    @signed_in
    @forum.arguments(BodySchema)
    @forum.response(201, PostSchema)
    def post(self, body, topic_id):
        with database().unit_of_work() as session:
            me = _me(session)
            _throttle_posting(session, me)
            post = discussions.reply(session, me, topic_id, body["body"])
            return post_view(post, me, me, session.get(Topic, topic_id))


@forum.route("/topics/<int:topic_id>/solution")
class TopicSolution(MethodView):
    @signed_in
    @forum.arguments(SolutionSchema)
    @forum.response(200, TopicSummarySchema)
    def put(self, body, topic_id):
        with database().unit_of_work() as session:
            topic = discussions.mark_solution(session, _me(session), topic_id, body["post_id"])
            return topic_summary(topic, session.get(Author, topic.author_id))

    @signed_in
    @forum.response(200, TopicSummarySchema)
    def delete(self, topic_id):
        with database().unit_of_work() as session:
            topic = discussions.mark_solution(session, _me(session), topic_id, None)
            return topic_summary(topic, session.get(Author, topic.author_id))


@forum.route("/topics/<int:topic_id>/watch")
class TopicWatch(MethodView):
    @signed_in
    @forum.response(204)
    def put(self, topic_id):
        with database().unit_of_work() as session:
            me = _me(session)
            discussions.topic_or_404(session, topic_id, me.staff)
            subscriptions.watch(session, me.user_id, topic_id=topic_id)

    @signed_in
    @forum.response(204)
    def delete(self, topic_id):
        with database().unit_of_work() as session:
            subscriptions.unwatch(session, signed_in_user().subject, topic_id=topic_id)


@forum.route("/posts/<int:post_id>")
class OnePost(MethodView):
    @signed_in
    @forum.response(200, PostSchema)
    def get(self, post_id):
        with database().unit_of_work() as session:
            me = _me(session)
            post, topic = discussions.post_or_404(session, post_id, me.staff)
            return post_view(post, session.get(Author, post.author_id), me, topic)

    @signed_in
    @forum.arguments(BodySchema)
    @forum.response(200, PostSchema)
    def patch(self, body, post_id):
        with database().unit_of_work() as session:
            me = _me(session)
            post = discussions.edit_post(session, me, post_id, body["body"])
            return post_view(post, me, me, session.get(Topic, post.topic_id))


@forum.route("/posts/<int:post_id>/revisions")
class PostRevisions(MethodView):
    @signed_in
    @forum.response(200, list_of(RevisionSchema, "ForumRevisionList"))
    def get(self, post_id):
        """Earlier versions of a post, oldest first: for its author and staff."""
        with database().unit_of_work() as session:
            me = _me(session)
            post, _ = discussions.post_or_404(session, post_id, me.staff)
            if post.author_id != me.user_id and not me.staff:
                raise Problem(403, "not-your-post", "Not your post", "Only the author and staff see a post's history.")
            return {"items": discussions.revisions(session, post), "next": None}


@forum.route("/posts/<int:post_id>/flags")
class PostFlags(MethodView):
    @idempotent
    @signed_in
    @forum.arguments(FlagRequestSchema)
    @forum.response(201, FlagSchema)
    def post(self, body, post_id):
        with database().unit_of_work() as session:
            return discussions.flag_post(session, _me(session), post_id, body["reason"].strip())


# --- subscriptions and search --------------------------------------------------------------------


@forum.route("/subscriptions")
class Subscriptions(MethodView):
    @signed_in
    @forum.response(200, list_of(SubscriptionSchema, "ForumSubscriptionList"))
    def get(self):
        with database().unit_of_work() as session:
            return {"items": subscriptions.of(session, signed_in_user().subject), "next": None}


@forum.route("/unsubscribe")
class Unsubscribe(MethodView):
    @forum.arguments(UnsubscribeSchema)
    @forum.response(200, SubscriptionSchema)
    def post(self, body):
        """The link in a notification e-mail: works without signing in, for that one watch."""
        with database().unit_of_work() as session:
            secret = current_app.extensions["settings"].require_secret()
            ended = subscriptions.unsubscribe(session, secret, body["token"])
        if ended is None:
            raise Problem(404, "unknown-link", "Unknown link", "This unsubscribe link is not valid.")
        return ended


@forum.route("/search")
class Search(MethodView):
    @signed_in
    @forum.arguments(SearchArgs, location="query")
    @forum.response(200, HitListSchema)
    def get(self, args):
        """Titles and bodies, best match first; accents optional; each word may be a prefix."""
        with database().unit_of_work() as session:
            hits = search.search(session, args["q"], args["limit"], include_hidden=signed_in_user().staff)
        return {
            "items": [
                {
                    "topic_id": hit.topic_id,
                    "post_id": hit.post_id,
                    "title": hit.title,
                    "excerpt": hit.excerpt.replace(search.MARK_START, "").replace(search.MARK_END, ""),
                    "excerpt_html": _excerpt_html(hit.excerpt),
                }
                for hit in hits
            ]
        }
