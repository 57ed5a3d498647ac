"""Staff's forum API: categories, and moderating topics, posts and flags.

Every view is `staff_only` here in the forum service, whatever the gateway did before.
"""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from forum import authors, discussions, listing
from forum.api import AuthorSchema, Moment, PageArgs, PostSchema, TopicSummarySchema, post_view, topic_summary
from forum.models import Author, Category, Flag, Post, Topic
from shared.auth import signed_in_user, staff_only
from shared.idempotency import idempotent
from shared.names import Name
from shared.problems import Problem
from shared.web import MAX_ID, database, list_of

admin = Blueprint("forum-admin", __name__, url_prefix="/api/v1/admin/forum", description="Forum moderation")


class AdminCategorySchema(Schema):
    id = fields.Integer(dump_only=True)
    name = Name(100, required=True)
    description = fields.String(load_default="", validate=validate.Length(max=500))
    position = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=10000))
    product = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=40))


class AdminCategoryChangeSchema(AdminCategorySchema):
    name = Name(100)
    description = fields.String(validate=validate.Length(max=500))
    position = fields.Integer(strict=True, validate=validate.Range(min=0, max=10000))
    product = fields.String(allow_none=True, validate=validate.Length(min=1, max=40))


class TopicModerationSchema(Schema):
    pinned = fields.Boolean()
    locked = fields.Boolean()
    hidden = fields.Boolean()
    category_id = fields.Integer(
        strict=True, validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "move it there"}
    )
    title = Name(200, min_length=3)


class PostModerationSchema(Schema):
    hidden = fields.Boolean(required=True)


class FlagArgs(PageArgs):
    status = fields.String(load_default="open", validate=validate.OneOf(["open", "hidden", "dismissed"]))


class FlagViewSchema(Schema):
    id = fields.Integer()
    post_id = fields.Integer()
    topic_id = fields.Integer()
    topic_title = fields.String()
    reason = fields.String()
    status = fields.String()
    created_at = Moment()
    flagged_by = fields.Nested(AuthorSchema)
    post = fields.Nested(PostSchema)


class ResolveSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(["hide", "dismiss"]))


def _staff(session) -> Author:
    return authors.ensure_author(session, signed_in_user())


def _name_taken(name: str) -> Problem:
    return Problem(409, "category-exists", "Category exists", f"A category named {name} exists.")


@admin.route("/categories")
class AdminCategories(MethodView):
    @idempotent
    @staff_only
    @admin.arguments(AdminCategorySchema)
    @admin.response(201, AdminCategorySchema)
    def post(self, body):
        try:
            with database().unit_of_work() as session:
                category = Category(**body)
                session.add(category)
                session.flush()
                return category
        except IntegrityError:
            raise _name_taken(body["name"]) from None


@admin.route("/categories/<int:category_id>")
class AdminOneCategory(MethodView):
    @staff_only
    @admin.arguments(AdminCategoryChangeSchema)
    @admin.response(200, AdminCategorySchema)
    def patch(self, body, category_id):
        try:
            with database().unit_of_work() as session:
                category = discussions.category_or_404(session, category_id)
                for field, value in body.items():
                    setattr(category, field, value)
                session.flush()
                return category
        except IntegrityError:
            raise _name_taken(body.get("name", "")) from None


@admin.route("/topics/<int:topic_id>")
class AdminTopic(MethodView):
    @staff_only
    @admin.arguments(TopicModerationSchema)
    @admin.response(200, TopicSummarySchema)
    def patch(self, body, topic_id):
        """Pin, lock, hide, rename or move a topic."""
        with database().unit_of_work() as session:
            topic = discussions.moderate_topic(session, topic_id, body)
            return topic_summary(topic, session.get(Author, topic.author_id))


@admin.route("/posts/<int:post_id>")
class AdminPost(MethodView):
    @staff_only
    @admin.arguments(PostModerationSchema)
    @admin.response(200, PostSchema)
    def patch(self, body, post_id):
        """Hide a post (its place stays, its words go) or show it again."""
        with database().unit_of_work() as session:
            me = _staff(session)
            post = discussions.hide_post(session, me, post_id, body["hidden"])
            return post_view(post, session.get(Author, post.author_id), me, session.get(Topic, post.topic_id))


@admin.route("/flags")
class AdminFlags(MethodView):
    @staff_only
    @admin.arguments(FlagArgs, location="query")
    @admin.response(200, list_of(FlagViewSchema, "ForumFlagList"))
    def get(self, args):
        """Flags oldest first, so the longest-waiting is handled first."""
        with database().unit_of_work() as session:
            me = _staff(session)
            after = listing.position_id((listing.decode(args["cursor"], listing.POSTS_CURSOR) or {}).get("after", 0))
            rows = session.execute(
                select(Flag, Post, Topic)
                .join(Post, Post.id == Flag.post_id)
                .join(Topic, Topic.id == Post.topic_id)
                .where(Flag.status == args["status"], Flag.id > after)
                .order_by(Flag.id)
                .limit(args["limit"] + 1)
            ).all()
            page = rows[: args["limit"]]
            items = []
            for flag, post, topic in page:
                flagger = session.get(Author, flag.user_id)
                items.append(
                    {
                        "id": flag.id,
                        "post_id": post.id,
                        "topic_id": topic.id,
                        "topic_title": topic.title,
                        "reason": flag.reason,
                        "status": flag.status,
                        "created_at": flag.created_at,
                        "flagged_by": authors.view(flagger, False) if flagger else None,
                        "post": post_view(post, session.get(Author, post.author_id), me, topic),
                    }
                )
            next_cursor = listing.encode({"after": page[-1][0].id}) if len(rows) > args["limit"] else None
            return {"items": items, "next": next_cursor}


@admin.route("/flags/<int:flag_id>/resolve")
class AdminResolveFlag(MethodView):
    @staff_only
    @admin.arguments(ResolveSchema)
    @admin.response(200, FlagViewSchema)
    def post(self, body, flag_id):
        """`hide` the post (every open flag on it is then resolved) or `dismiss` this flag."""
        with database().unit_of_work() as session:
            flag = discussions.resolve_flag(session, _staff(session), flag_id, body["action"])
            return {
                "id": flag.id,
                "post_id": flag.post_id,
                "reason": flag.reason,
                "status": flag.status,
                "created_at": flag.created_at,
            }
