"""Distribution's HTTP API."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from distribution.models import NEWS_KINDS, NewsItem
from shared import memberships
from shared.auth import signed_in, signed_in_user, staff_only
from shared.db import utc_now
from shared.idempotency import idempotent
from shared.names import Name
from shared.web import database, list_of

# Where the vendor's training centres are (and online courses).
TRAINING_CITIES = ("Praha", "Brno", "Ostrava", "Hradec Králové", "Plzeň", "Olomouc", "online")

news = Blueprint("news", __name__, url_prefix="/api/v1", description="News, events and training courses")


class NewsItemSchema(Schema):
    id = fields.Integer(dump_only=True)
    kind = fields.String(required=True, validate=validate.OneOf(NEWS_KINDS))
    title = Name(required=True)
    body = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    published_at = fields.AwareDateTime(load_default=None)
    starts_at = fields.AwareDateTime(load_default=None)
    city = Name(100, min_length=0, load_default=None)
    # strict: a JSON integer (marshmallow would otherwise take 2.5 as 2)
    capacity = fields.Integer(load_default=None, strict=True, validate=validate.Range(min=1, max=10000))

    @validates_schema
    def _events_have_a_date(self, data, **_kwargs):
        if data.get("kind") in ("event", "training") and not data.get("starts_at"):
            raise ValidationError("Events and training courses need a start.", "starts_at")
        if data.get("kind") == "training" and data.get("city") not in TRAINING_CITIES:
            raise ValidationError(f"Training courses take place in {', '.join(TRAINING_CITIES)}.", "city")


NewsListSchema = list_of(NewsItemSchema, "NewsList")


# The newest this many are listed; events and courses still to come are listed however long ago
# they were announced (a course announced months ahead must not drop off behind release news).
NEWEST = 50


def published_news(session) -> list[NewsItem]:
    """Published items, newest first: the newest NEWEST and every event or course to come."""
    now = utc_now()
    published = NewsItem.published_at <= now
    newest = session.scalars(select(NewsItem).where(published).order_by(NewsItem.published_at.desc()).limit(NEWEST))
    items = {item.id: item for item in newest}
    for item in session.scalars(select(NewsItem).where(published, NewsItem.starts_at >= now)):
        items.setdefault(item.id, item)
    return sorted(items.values(), key=lambda item: (item.published_at, item.id), reverse=True)


@news.route("/news")
class News(MethodView):
    @signed_in
    @news.response(200, NewsListSchema)
    def get(self):
        """The vendor's news, events and training courses, for a holder of the news right."""
        with database().unit_of_work() as session:
            # Not one profile's: the news right in any of the caller's profiles (rule 4), or staff.
            memberships.require_anywhere(session, signed_in_user(), "news")
            return {"items": published_news(session), "next": None}


@news.route("/customers/<customer_number>/news")
class CustomerNews(MethodView):
    @signed_in
    @news.response(200, NewsListSchema)
    def get(self, customer_number):
        """News, events and upcoming training courses for a member with the news right."""
        from distribution.downloads_api import member_check

        with database().unit_of_work() as session:
            member_check(session, customer_number, "news")
            return {"items": published_news(session), "next": None}


@news.route("/admin/news")
class AdminNews(MethodView):
    @idempotent
    @staff_only
    @news.arguments(NewsItemSchema)
    @news.response(201, NewsItemSchema)
    def post(self, body):
        body["published_at"] = body["published_at"] or utc_now()
        with database().unit_of_work() as session:
            item = NewsItem(**body)
            session.add(item)
            session.flush()
            return item
