"""Identity's HTTP API: the thin edge that turns requests into calls on the domain."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from identity.models import CustomerProfile, User
from identity.passwords import hash_password, needs_rehash, verify_password
from shared.auth import current_principal, service_only, signed_in, staff_only
from shared.problems import Problem
from shared.web import database

accounts = Blueprint("accounts", __name__, url_prefix="/api/v1", description="The signed-in user")
internal = Blueprint("internal", __name__, url_prefix="/internal/v1", description="Calls from the gateway only")
admin = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Vendor staff")


class AddressSchema(Schema):
    street = fields.String(validate=validate.Length(max=200))
    city = fields.String(validate=validate.Length(max=100))
    postal_code = fields.String(validate=validate.Length(max=20))
    country = fields.String(validate=validate.Length(max=2))


class MembershipSchema(Schema):
    customer_number = fields.String()
    company_name = fields.String()
    administrator = fields.Boolean()
    rights = fields.List(fields.String())


class MeSchema(Schema):
    id = fields.String()
    email = fields.String()
    name = fields.String()
    staff = fields.Boolean()
    memberships = fields.List(fields.Nested(MembershipSchema))


class CredentialsSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    # Long enough for any real password, short enough that nobody makes us hash megabytes.
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class AuthenticatedUserSchema(Schema):
    id = fields.String()
    email = fields.String()
    name = fields.String()
    staff = fields.Boolean()


class CustomerProfileSchema(Schema):
    customer_number = fields.String()
    company_id = fields.String()
    company_name = fields.String()
    billing_address = fields.Nested(AddressSchema, allow_none=True)
    delivery_address = fields.Nested(AddressSchema, allow_none=True)
    delivery_method = fields.String()


@accounts.route("/me")
class Me(MethodView):
    @signed_in
    @accounts.response(200, MeSchema)
    def get(self):
        principal = current_principal()
        with database().unit_of_work() as session:
            user = session.get(User, principal.user_id)
            if user is None or user.status != "active":
                raise Problem(401, "unauthenticated", "Sign-in required", "This account is no longer active.")
            return {"id": user.id, "email": user.email, "name": user.name, "staff": user.staff, "memberships": []}


@internal.route("/credentials/verify")
class VerifyCredentials(MethodView):
    """The gateway asks whether an e-mail and password belong to an active account."""

    @service_only("gateway")
    @internal.arguments(CredentialsSchema)
    @internal.response(200, AuthenticatedUserSchema)
    def post(self, credentials):
        email = credentials["email"].strip().lower()
        with database().unit_of_work() as session:
            user = session.scalars(select(User).where(User.email == email)).one_or_none()
            # Always verify a hash (a dummy one for unknown e-mails) so timing tells nothing.
            valid = verify_password(user.password_hash if user else None, credentials["password"])
            if not valid or user is None or user.status != "active":
                raise Problem(401, "invalid-credentials", "Sign-in failed", "The e-mail or password is not right.")
            if needs_rehash(user.password_hash):
                user.password_hash = hash_password(credentials["password"])
            return user


@admin.route("/customer-profiles/<customer_number>")
class AdminCustomerProfile(MethodView):
    @staff_only
    @admin.response(200, CustomerProfileSchema)
    def get(self, customer_number):
        with database().unit_of_work() as session:
            profile = session.get(CustomerProfile, customer_number)
            if profile is None:
                raise Problem(404, "not-found", "Not found", "No such customer profile.")
            return profile
