"""Licensing's HTTP API."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from licensing.customers import CustomerExists, create_customer
from licensing.models import Customer
from shared.auth import staff_only
from shared.company_id import CompanyId
from shared.problems import Problem
from shared.web import database

admin = Blueprint("admin-customers", __name__, url_prefix="/api/v1/admin", description="Vendor staff: customers")


class AddressSchema(Schema):
    street = fields.String(required=True, validate=validate.Length(min=1, max=200))
    city = fields.String(required=True, validate=validate.Length(min=1, max=100))
    postal_code = fields.String(required=True, validate=validate.Length(min=1, max=20))
    country = fields.String(load_default="CZ", validate=validate.Regexp(r"^[A-Z]{2}$"))


class NewCustomerSchema(Schema):
    company_id = CompanyId(required=True)
    company_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    billing_address = fields.Nested(AddressSchema, required=True)


class CustomerSchema(Schema):
    customer_number = fields.String()
    company_id = fields.String()
    company_name = fields.String()
    billing_address = fields.Nested(AddressSchema)
    created_at = fields.DateTime()


@admin.route("/customers")
class Customers(MethodView):
    @staff_only
    @admin.arguments(NewCustomerSchema)
    @admin.response(201, CustomerSchema)
    def post(self, body):
        try:
            with database().unit_of_work() as session:
                return create_customer(session, body["company_id"], body["company_name"], body["billing_address"])
        except CustomerExists as exists:
            raise Problem(
                409,
                "customer-exists",
                "Customer exists",
                f"Company ID {exists.company_id} already belongs to customer {exists.customer_number}.",
                customer_number=exists.customer_number,
            ) from None


@admin.route("/customers/<customer_number>")
class CustomerByNumber(MethodView):
    @staff_only
    @admin.response(200, CustomerSchema)
    def get(self, customer_number):
        with database().unit_of_work() as session:
            customer = session.scalars(
                select(Customer).where(Customer.customer_number == customer_number)
            ).one_or_none()
            if customer is None:
                raise Problem(404, "not-found", "Not found", "No such customer.")
            return customer
