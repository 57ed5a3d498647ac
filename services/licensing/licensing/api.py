"""Licensing's HTTP API: staff's catalogue, customers, licenses and partners; partners' sales;
customers' license lists and product registration."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace
from datetime import date, timedelta

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from licensing import installation_numbers, licenses, partners
from licensing.broker_users import BrokerUnavailable, BrokerUserRefused, BrokerUsers
from licensing.customers import CustomerExists, create_customer, update_customer
from licensing.models import Customer, License, Partner, Product
from shared import memberships, spreadsheet, throttle
from shared.auth import client_address, signed_in, signed_in_user, staff_only
from shared.company_id import CompanyId
from shared.idempotency import idempotent
from shared.names import Name
from shared.problems import Problem
from shared.web import MAX_ID, database, list_of, settings

admin = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Vendor staff")
partner_api = Blueprint("partner", __name__, url_prefix="/api/v1/partner", description="Partners' systems")
customer_api = Blueprint(
    "customer-licenses", __name__, url_prefix="/api/v1/customers", description="A customer's licenses"
)

EXPIRING_WITHIN = timedelta(days=60)


# Failed product registrations (unknown or foreign numbers) per client and per customer.
REGISTRATION_PER_CLIENT = throttle.limit_from_env("PRODUCT_REGISTRATION_CLIENT_LIMIT", "10/900")
REGISTRATION_PER_CUSTOMER = throttle.limit_from_env("PRODUCT_REGISTRATION_CUSTOMER_LIMIT", "20/900")


# --- schemas ------------------------------------------------------------------------------


class AddressSchema(Schema):
    street = Name(required=True)
    city = Name(100, required=True)
    postal_code = Name(20, required=True)
    country = fields.String(load_default="CZ", validate=validate.Regexp(r"^[A-Z]{2}$"))


class NewCustomerSchema(Schema):
    company_id = CompanyId(required=True)
    company_name = Name(required=True)
    billing_address = fields.Nested(AddressSchema, required=True)


class CustomerSchema(Schema):
    customer_number = fields.String()
    company_id = fields.String()
    company_name = fields.String()
    billing_address = fields.Nested(AddressSchema)
    created_at = fields.DateTime()
    created_by = fields.String(
        allow_none=True,
        metadata={
            "description": "staff, partner (a partner's sale: created_by_partner_id) or import; null: before 2026-12"
        },
    )
    created_by_partner_id = fields.String(allow_none=True)


class ProductSchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,39}$", error="Lowercase letters, digits and dashes."),
    )
    name = Name(required=True)
    editions = fields.List(Name(60), required=True, validate=validate.Length(min=1, max=50))
    add_ons = fields.List(Name(60), load_default=list, validate=validate.Length(max=50))


ProductListSchema = list_of(ProductSchema, "ProductList")


class NewLicenseSchema(Schema):
    customer_number = fields.String(required=True, validate=validate.Regexp(r"^\d{1,20}$"))
    product = fields.String(required=True, validate=validate.Length(min=1, max=40))
    edition = fields.String(required=True, validate=validate.Length(min=1, max=60))
    add_ons = fields.List(
        fields.String(validate=validate.Length(max=60)), load_default=list, validate=validate.Length(max=50)
    )
    seats = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=10000))
    support_until = fields.Date(load_default=None, allow_none=True)


class LicenseChangeSchema(Schema):
    support_until = fields.Date(allow_none=True)
    status = fields.String(validate=validate.OneOf(["revoked"]))


class LicenseSchema(Schema):
    installation_number = fields.String()
    customer_number = fields.String()
    product = fields.String()
    product_name = fields.String()
    edition = fields.String()
    add_ons = fields.List(fields.String())
    seats = fields.Integer()
    channel = fields.String()
    partner = fields.String(allow_none=True)
    status = fields.String()
    sold_on = fields.Date()
    support_until = fields.Date(allow_none=True)
    support_status = fields.String()


LicenseListSchema = list_of(LicenseSchema, "LicenseList")


class StaffLicenseSchema(LicenseSchema):
    company_name = fields.String()
    partner_id = fields.String(allow_none=True)
    partner_sale_id = fields.String(allow_none=True)
    matched_existing_customer = fields.Boolean(
        metadata={
            "description": "a partner's sale that landed on a customer which existed already and which this partner "
            "had not sold to before: the partner was not told the customer number; worth a look by sales staff"
        }
    )


StaffLicenseListSchema = list_of(StaffLicenseSchema, "StaffLicenseList")


class LicenseQuerySchema(Schema):
    sort = fields.String(load_default="product", validate=validate.OneOf(["product", "support_until"]))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Length(max=100))


class AdminLicenseQuerySchema(Schema):
    customer_number = fields.String(load_default=None, validate=validate.Regexp(r"^\d{1,20}$"))
    partner_id = fields.String(load_default=None, validate=validate.Length(max=36))
    matched_existing_customer = fields.Boolean(load_default=None)
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Length(max=100))


BROKER_USER = validate.Regexp(r"^[A-Za-z0-9_.-]{1,100}$")


class NewPartnerSchema(Schema):
    name = Name(required=True)
    broker_user = fields.String(
        load_default=None,
        allow_none=True,
        validate=BROKER_USER,
        metadata={"description": "a RabbitMQ user that may only write to the partner-sales exchange (README)"},
    )


class PartnerChangeSchema(Schema):
    name = Name()
    broker_user = fields.String(allow_none=True, validate=BROKER_USER, metadata={"description": "null: none"})


class PartnerCreatedSchema(Schema):
    partner_id = fields.String()
    name = fields.String()
    broker_user = fields.String(allow_none=True)
    api_key = fields.String()


class SaleCustomerSchema(Schema):
    company_id = CompanyId(required=True)
    company_name = Name(required=True)
    customer_number = fields.String(load_default=None, validate=validate.Regexp(r"^\d{1,20}$"))
    billing_address = fields.Nested(AddressSchema, required=True)


class SaleSchema(Schema):
    partner_sale_id = Name(100, required=True)
    customer = fields.Nested(SaleCustomerSchema, required=True)
    product = fields.String(required=True, validate=validate.Length(min=1, max=40))
    edition = fields.String(required=True, validate=validate.Length(min=1, max=60))
    add_ons = fields.List(
        fields.String(validate=validate.Length(max=60)), load_default=list, validate=validate.Length(max=50)
    )
    # strict: a JSON integer (marshmallow would otherwise take 2.5 as 2 seats, or "3" as 3)
    seats = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10000))
    sold_on = fields.Date(required=True)

    @validates("sold_on")
    def _not_in_the_future(self, value, **_kwargs):
        if value > date.today() + timedelta(days=1):
            raise ValidationError("A sale cannot be dated in the future.")


# One instance for every sale, as flask-smorest keeps one per @arguments: loading keeps no
# state in it, and its nested schemas are built on the first load instead of on every one.
SALE_SCHEMA = SaleSchema()


class SaleAnswerSchema(Schema):
    installation_number = fields.String()
    customer_number = fields.String(
        allow_none=True,
        metadata={"description": "null unless this sale made the customer or this partner has sold to it before"},
    )
    status = fields.String()


class ProductRegistrationSchema(Schema):
    installation_number = fields.String(required=True, validate=validate.Length(min=1, max=60))


# --- helpers ------------------------------------------------------------------------------
def support_status(support_until: date | None, today: date | None = None) -> str:
    today = today or date.today()
    if support_until is None:
        return "none"
    if support_until < today:
        return "expired"
    return "expiring" if support_until - today <= EXPIRING_WITHIN else "active"


def license_view(license_: License, customer_number: str, product_name: str, partner_name: str | None) -> dict:
    return {
        "installation_number": license_.installation_number,
        "customer_number": customer_number,
        "product": license_.product_code,
        "product_name": product_name,
        "edition": license_.edition,
        "add_ons": list(license_.add_ons or []),
        "seats": license_.seats,
        "channel": license_.channel,
        "partner": partner_name,
        "status": license_.status,
        "sold_on": license_.sold_on,
        "support_until": license_.support_until,
        "support_status": support_status(license_.support_until),
    }


def _staff_view(license_: License, customer_number: str, product_name: str, partner_name, company_name: str) -> dict:
    return license_view(license_, customer_number, product_name, partner_name) | {
        "company_name": company_name,
        "partner_id": license_.partner_id,
        "partner_sale_id": license_.partner_sale_id,
        "matched_existing_customer": license_.matched_existing_customer,
    }


def _licenses_query():
    return (
        select(License, Customer.customer_number, Product.name, Partner.name)
        .join(Customer, Customer.id == License.customer_id)
        .join(Product, Product.code == License.product_code)
        .outerjoin(Partner, Partner.id == License.partner_id)
    )


def _one_license(session, number: str) -> dict:
    row = session.execute(_licenses_query().where(License.installation_number == number)).one()
    return license_view(*row)


def _customer_exists(session, customer_number: str) -> bool:
    return session.scalar(select(Customer.id).where(Customer.customer_number == customer_number)) is not None


def _member_check(session, customer_number: str, right: str, write: bool = False) -> None:
    principal = signed_in_user()
    if write and principal.staff:  # staff see every customer's licenses, but act for none
        principal = replace(principal, staff=False)
    memberships.require(session, principal, customer_number, right, customer_exists=_customer_exists)


def _product_problem(error: licenses.UnknownProduct) -> Problem:
    return Problem(
        422, "validation-failed", "Validation failed", str(error), errors=[{"field": "product", "message": str(error)}]
    )


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _offset(cursor: str | None) -> int:
    """The offset in a cursor we gave out: digits only, at most what a database integer holds."""
    if not cursor:
        return 0
    try:
        text = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True).decode("ascii")
    except (ValueError, UnicodeError):
        text = ""
    if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > MAX_ID:
        raise Problem(400, "bad-cursor", "Bad cursor", "The paging cursor is not one we gave out.")
    return int(text)


# --- staff --------------------------------------------------------------------------------
@admin.route("/products")
class Products(MethodView):
    @staff_only
    @admin.response(200, ProductListSchema)
    def get(self):
        with database().unit_of_work() as session:
            return {"items": session.scalars(select(Product).order_by(Product.name)).all(), "next": None}

    @idempotent
    @staff_only
    @admin.arguments(ProductSchema)
    @admin.response(201, ProductSchema)
    def post(self, body):
        try:
            with database().unit_of_work() as session:
                product = Product(**body)
                session.add(product)
                session.flush()
                return product
        except IntegrityError:
            raise Problem(
                409, "product-exists", "Product exists", f"A product with code {body['code']!r} exists."
            ) from None


@admin.route("/customers")
class Customers(MethodView):
    @idempotent
    @staff_only
    @admin.arguments(NewCustomerSchema)
    @admin.response(201, CustomerSchema)
    def post(self, body):
        try:
            with database().unit_of_work() as session:
                return create_customer(
                    session, body["company_id"], body["company_name"], body["billing_address"], created_by="staff"
                )
        except CustomerExists as exists:
            raise Problem(
                409,
                "customer-exists",
                "Customer exists",
                f"Company ID {exists.company_id} already belongs to customer {exists.customer_number}.",
                customer_number=exists.customer_number,
            ) from None


class CustomerChangeSchema(Schema):
    company_name = Name()
    billing_address = fields.Nested(AddressSchema)


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

    @staff_only
    @admin.arguments(CustomerChangeSchema)
    @admin.response(200, CustomerSchema)
    def patch(self, body, customer_number):
        """Correct the company name or billing address; identity and distribution follow."""
        with database().unit_of_work() as session:
            customer = update_customer(session, customer_number, **body)
            if customer is None:
                raise Problem(404, "not-found", "Not found", "No such customer.")
            return customer


@admin.route("/licenses")
class AdminLicenses(MethodView):
    @staff_only
    @admin.arguments(AdminLicenseQuerySchema, location="query")
    @admin.response(200, StaffLicenseListSchema)
    def get(self, query):
        """Licenses, registered or not, oldest first (staff's view): a customer's
        (`customer_number`), a partner's (`partner_id`), or the partners' sales that landed on
        a customer they had not sold to before (`matched_existing_customer=true`), to review."""
        offset = _offset(query["cursor"])
        listed = _licenses_query().add_columns(Customer.company_name)
        if query["customer_number"] is not None:
            listed = listed.where(Customer.customer_number == query["customer_number"])
        if query["partner_id"] is not None:
            listed = listed.where(License.partner_id == query["partner_id"])
        if query["matched_existing_customer"] is not None:
            listed = listed.where(License.matched_existing_customer.is_(query["matched_existing_customer"]))
        with database().unit_of_work() as session:
            rows = session.execute(listed.order_by(License.id).offset(offset).limit(query["limit"] + 1)).all()
        items = [_staff_view(*row) for row in rows[: query["limit"]]]
        return {"items": items, "next": _cursor(offset + query["limit"]) if len(rows) > query["limit"] else None}

    @idempotent
    @staff_only
    @admin.arguments(NewLicenseSchema)
    @admin.response(201, LicenseSchema)
    def post(self, body):
        try:
            with database().unit_of_work() as session:
                license_ = licenses.issue_direct(session, **body)
                return _one_license(session, license_.installation_number)
        except licenses.UnknownCustomer:
            message = "No such customer."
            raise Problem(
                422,
                "validation-failed",
                "Validation failed",
                message,
                errors=[{"field": "customer_number", "message": message}],
            ) from None
        except licenses.UnknownProduct as error:
            raise _product_problem(error) from None


@admin.route("/licenses/<installation_number>")
class AdminLicense(MethodView):
    @staff_only
    @admin.arguments(LicenseChangeSchema)
    @admin.response(200, LicenseSchema)
    def patch(self, body, installation_number):
        """Extend or end support (`support_until`), or revoke the license (`status: revoked`)."""
        if not body:
            raise Problem(
                422,
                "validation-failed",
                "Validation failed",
                "Send support_until or status.",
                errors=[{"field": "_body", "message": "Nothing to change."}],
            )
        try:
            number = installation_numbers.normalise(installation_number)
            with database().unit_of_work() as session:
                licenses.change_support(
                    session, number, body.get("support_until"), revoke=body.get("status") == "revoked"
                )
                return _one_license(session, number)
        except (installation_numbers.InvalidInstallationNumber, licenses.UnknownLicense):
            raise Problem(404, "not-found", "Not found", "No such license.") from None


class PartnerSchema(Schema):
    partner_id = fields.String(attribute="id")
    name = fields.String()
    broker_user = fields.String(allow_none=True)
    created_at = fields.DateTime()


PartnerListSchema = list_of(PartnerSchema, "PartnerList")


@admin.route("/partners")
class Partners(MethodView):
    @staff_only
    @admin.response(200, PartnerListSchema)
    def get(self):
        with database().unit_of_work() as session:
            return {"items": session.scalars(select(Partner).order_by(Partner.name)).all(), "next": None}

    @idempotent
    @staff_only
    @admin.arguments(NewPartnerSchema)
    @admin.response(201, PartnerCreatedSchema)
    def post(self, body):
        """A partner and its first API key (shown only in this answer). A `broker_user` is
        asked about at the broker first: `422` for the application's own user, an unknown one
        or one with more rights than a partner's, `503` when the broker cannot be asked."""
        _check_broker_user(body["broker_user"])
        try:
            with database().unit_of_work() as session:
                partner, api_key = partners.create_partner(session, body["name"], body["broker_user"])
                return {
                    "partner_id": partner.id,
                    "name": partner.name,
                    "broker_user": partner.broker_user,
                    "api_key": api_key,
                }
        except IntegrityError:
            raise Problem(
                409, "broker-user-taken", "Broker user taken", "Another partner publishes as this broker user."
            ) from None


@admin.route("/partners/<partner_id>")
class PartnerById(MethodView):
    @staff_only
    @admin.arguments(PartnerChangeSchema)
    @admin.response(200, PartnerSchema)
    def patch(self, body, partner_id):
        """Rename the partner, or set or remove (null) the broker user it publishes as,
        checked at the broker like a new partner's."""
        if body.get("broker_user") is not None:
            _check_broker_user(body["broker_user"])
        try:
            with database().unit_of_work() as session:
                partner = session.get(Partner, partner_id)
                if partner is None:
                    raise Problem(404, "not-found", "Not found", "No such partner.")
                for name, value in body.items():
                    setattr(partner, name, value)
                session.flush()
                return partner
        except IntegrityError:
            raise Problem(
                409, "broker-user-taken", "Broker user taken", "Another partner publishes as this broker user."
            ) from None


def _check_broker_user(name: str | None) -> None:
    if name is None:
        return
    checker = current_app.extensions.get("broker_users")
    if checker is None:
        checker = current_app.extensions["broker_users"] = BrokerUsers.from_settings(settings())
    try:
        checker.check_partner_user(name)
    except BrokerUserRefused as refused:
        raise Problem(
            422,
            "broker-user-refused",
            "Broker user refused",
            str(refused),
            errors=[{"field": "broker_user", "message": str(refused)}],
        ) from None
    except BrokerUnavailable:
        raise Problem(
            503,
            "broker-unavailable",
            "Broker cannot be asked",
            "We could not ask the broker about this user; nothing was changed. Try again shortly.",
            headers={"Retry-After": "10"},
        ) from None


@admin.route("/partners/<partner_id>/keys")
class PartnerKeys(MethodView):
    @idempotent
    @staff_only
    @admin.response(201, PartnerCreatedSchema)
    def post(self, partner_id):
        """A new API key for the partner (the old ones keep working until revoked)."""
        with database().unit_of_work() as session:
            partner = session.get(Partner, partner_id)
            if partner is None:
                raise Problem(404, "not-found", "Not found", "No such partner.")
            return {
                "partner_id": partner.id,
                "name": partner.name,
                "broker_user": partner.broker_user,
                "api_key": partners.new_key(session, partner),
            }

    @staff_only
    @admin.response(204)
    def delete(self, partner_id):
        """Revoke every API key of the partner, at once."""
        with database().unit_of_work() as session:
            if session.get(Partner, partner_id) is None:
                raise Problem(404, "not-found", "Not found", "No such partner.")
            partners.revoke_keys(session, partner_id)
        return Response(status=204)


# --- partners' systems --------------------------------------------------------------------
def _partner(session) -> Partner:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        raise Problem(401, "unauthenticated", "API key required", "Send your API key as Authorization: Bearer <key>.")
    partner = partners.authenticate(session, header[7:].strip())
    if partner is None:
        raise Problem(401, "invalid-api-key", "Invalid API key", "This API key is unknown or revoked.")
    return partner


def sale_from(body: dict) -> licenses.Sale:
    customer = body["customer"]
    return licenses.Sale(
        partner_sale_id=body["partner_sale_id"],
        company_id=customer["company_id"],
        company_name=customer["company_name"],
        billing_address=customer["billing_address"],
        customer_number=customer["customer_number"],
        product=body["product"],
        edition=body["edition"],
        add_ons=body["add_ons"],
        seats=body["seats"],
        sold_on=body["sold_on"],
    )


@partner_api.route("/sales")
class PartnerSales(MethodView):
    # The body is read by hand (the API key and Idempotency-Key are checked first), so the
    # document is told about it and about the answer here.
    @partner_api.doc(
        parameters=[
            {"in": "header", "name": "Idempotency-Key", "required": True, "schema": {"type": "string"}},
        ],
        requestBody={"required": True, "content": {"application/json": {"schema": SaleSchema}}},
    )
    @partner_api.response(201, SaleAnswerSchema)
    def post(self):
        """A sale by a partner: an unregistered license, once per Idempotency-Key and per sale.

        One transaction: the API key, the key's claim, the license, its event and the answer
        kept for replays are committed together (a refusal rolls all of it back)."""
        with database().unit_of_work() as session:
            partner = _partner(session)
            key = request.headers.get("Idempotency-Key", "").strip()
            if not key or len(key) > 200:
                raise Problem(
                    400,
                    "idempotency-key-missing",
                    "Idempotency-Key required",
                    "Send a unique Idempotency-Key (at most 200 characters) with every sale.",
                )
            body = SALE_SCHEMA.load(request.get_json())
            fingerprint = hashlib.sha256(
                json.dumps(request.get_json(), sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest()
            earlier = partners.claim_request_key(session, partner.id, partners.REST, key, fingerprint)
            if earlier is not None:
                if earlier.request_hash != fingerprint:
                    raise Problem(
                        422,
                        "idempotency-key-reused",
                        "Idempotency-Key reused",
                        "This Idempotency-Key was used with another body.",
                    )
                return Response(earlier.response, status=earlier.status, mimetype="application/json")
            try:
                recorded = licenses.accept_partner_sale(session, partner, partners.REST, key, sale_from(body))
            except licenses.UnknownProduct as error:
                raise _product_problem(error) from None
            answer = json.dumps(recorded.answer())
        return Response(answer, status=201, mimetype="application/json")


# --- a customer's licenses ----------------------------------------------------------------
def _order(sort: str, license_=License, product=Product) -> tuple:
    if sort == "product":
        return (product.name, license_.edition, license_.installation_number)
    return (license_.support_until.is_(None), license_.support_until, license_.installation_number)


def _registered(customer_number: str, sort: str):
    return (
        _licenses_query()
        .where(Customer.customer_number == customer_number, License.status == "registered")
        .order_by(*_order(sort))
    )


def _registered_page(customer_number: str, sort: str, offset: int, limit: int):
    """`limit` rows of `_registered` from `offset`, in two steps so that a customer with
    thousands of licenses costs little more than one with ten: the page's installation
    numbers first, sorted from one of licenses' list indexes alone (no table row read, see
    models.License), then only those rows with their customer, product and partner."""
    listed, product = aliased(License), aliased(Product)
    numbers = select(listed.installation_number).join(Customer, Customer.id == listed.customer_id)
    if sort == "product":
        numbers = numbers.join(product, product.code == listed.product_code)
    numbers = (
        numbers.where(Customer.customer_number == customer_number, listed.status == "registered")
        .order_by(*_order(sort, listed, product))
        .offset(offset)
        .limit(limit)
        .subquery()
    )
    return (
        _licenses_query()
        .join(numbers, numbers.c.installation_number == License.installation_number)
        .order_by(*_order(sort))
    )


@customer_api.route("/<customer_number>/licenses")
class CustomerLicenses(MethodView):
    @signed_in
    @customer_api.arguments(LicenseQuerySchema, location="query")
    @customer_api.response(200, LicenseListSchema)
    def get(self, query, customer_number):
        offset = _offset(query["cursor"])
        with database().unit_of_work() as session:
            _member_check(session, customer_number, "licenses")
            rows = session.execute(_registered_page(customer_number, query["sort"], offset, query["limit"] + 1)).all()
        items = [license_view(*row) for row in rows[: query["limit"]]]
        return {"items": items, "next": _cursor(offset + query["limit"]) if len(rows) > query["limit"] else None}


CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}
CSV_COLUMNS = (
    "installation_number",
    "product_name",
    "edition",
    "add_ons",
    "seats",
    "channel",
    "partner",
    "support_until",
    "support_status",
)


@customer_api.route("/<customer_number>/licenses.csv")
class CustomerLicensesCsv(MethodView):
    @signed_in
    @customer_api.arguments(LicenseQuerySchema, location="query")
    @customer_api.doc(responses={200: {"description": "The licenses as CSV", "content": CSV_CONTENT}})
    def get(self, query, customer_number):
        with database().unit_of_work() as session:
            _member_check(session, customer_number, "licenses")
            rows = session.execute(_registered(customer_number, query["sort"])).all()
        lines = []
        for row in rows:
            view = license_view(*row)
            view["add_ons"] = " ".join(view["add_ons"])
            lines.append([view[column] for column in CSV_COLUMNS])
        return Response(
            spreadsheet.document(CSV_COLUMNS, lines),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="licenses-{customer_number}.csv"'},
        )


@customer_api.route("/<customer_number>/product-registrations")
class ProductRegistrations(MethodView):
    @idempotent
    @signed_in
    @customer_api.arguments(ProductRegistrationSchema)
    @customer_api.response(201, LicenseSchema)
    def post(self, body, customer_number):
        """Register a partner-sold license: from now on it is listed and has support."""
        try:
            number = installation_numbers.normalise(body["installation_number"])
        except installation_numbers.InvalidInstallationNumber as error:
            raise Problem(
                422,
                "validation-failed",
                "Validation failed",
                str(error),
                errors=[{"field": "installation_number", "message": str(error)}],
            ) from None
        keys = (
            (f"product-registration-client:{client_address()}", REGISTRATION_PER_CLIENT),
            (f"product-registration-customer:{customer_number}", REGISTRATION_PER_CUSTOMER),
        )
        try:
            with database().unit_of_work() as session:
                _member_check(session, customer_number, "licenses", write=True)
                throttle.refuse_if_throttled(session, keys)
                licenses.register_product(session, customer_number, number)
                return _one_license(session, number)
        except licenses.RegistrationRefused:
            throttle.count_failure(database(), keys)
            raise Problem(
                422,
                "registration-refused",
                "Registration refused",
                "We cannot register this installation number for your company. "
                "Check the number on the document from your partner.",
            ) from None
        except licenses.AlreadyRegistered:
            raise Problem(
                409, "already-registered", "Already registered", "This license is registered already."
            ) from None
