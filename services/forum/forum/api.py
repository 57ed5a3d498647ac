"""Forum's HTTP API."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from forum.models import Category
from shared.auth import signed_in, staff_only
from shared.problems import Problem
from shared.web import database

categories = Blueprint("categories", __name__, url_prefix="/api/v1", description="Forum categories")


class CategorySchema(Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    description = fields.String(load_default="", validate=validate.Length(max=500))
    position = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10000))


class CategoryListSchema(Schema):
    items = fields.List(fields.Nested(CategorySchema))


@categories.route("/forum/categories")
class Categories(MethodView):
    @signed_in
    @categories.response(200, CategoryListSchema)
    def get(self):
        with database().unit_of_work() as session:
            return {"items": session.scalars(select(Category).order_by(Category.position, Category.name)).all()}


@categories.route("/admin/forum/categories")
class AdminCategories(MethodView):
    @staff_only
    @categories.arguments(CategorySchema)
    @categories.response(201, CategorySchema)
    def post(self, body):
        try:
            with database().unit_of_work() as session:
                category = Category(**body)
                session.add(category)
                session.flush()
                return category
        except IntegrityError:
            raise Problem(
                409, "category-exists", "Category exists", f"A category named {body['name']} exists."
            ) from None
