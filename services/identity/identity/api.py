"""Identity's HTTP API: the thin edge that validates input, calls the domain modules and
turns their exceptions into problem documents."""

from __future__ import annotations

import functools
import logging

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from identity import accounts, contacts, limits, memberships, registration, tokens
from identity.models import DELIVERY_METHODS, RIGHTS, CustomerProfile, Membership, User
from identity.passwords import problems_with
from shared import names, throttle
from shared.auth import client_address, service_only, signed_in, signed_in_user, staff_only
from shared.company_id import CompanyId
from shared.db import utc_now
from shared.idempotency import idempotent
from shared.problems import Problem
from shared.web import database, list_of, settings

log = logging.getLogger(__name__)

accounts_api = Blueprint("accounts", __name__, url_prefix="/api/v1", description="Registration, sign-in, passwords")
profiles_api = Blueprint("profiles", __name__, url_prefix="/api/v1/customers", description="A customer profile")
internal = Blueprint("internal", __name__, url_prefix="/internal/v1", description="Calls from the gateway only")
admin = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Vendor staff")

INVITATION_TTL = 7 * 24 * 3600
RESET_TTL = 2 * 3600


# --- schemas ------------------------------------------------------------------------------
class Email(fields.Email):
    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip().lower()


# Long enough for any real password; the policy (8..128) is checked before any hashing.
Password = functools.partial(fields.String, required=True, validate=validate.Length(min=1, max=1024))


class Name(names.Name):
    """A person's display name (shown with their forum posts): trimmed, then 1 to 200
    characters of one line of visible text (shared.names)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", True)
        super().__init__(max_length=200, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


def _line(max_length: int):
    return [validate.Length(min=1, max=max_length), names.refuse_control_characters]


class AddressSchema(Schema):
    street = fields.String(required=True, validate=_line(200))
    city = fields.String(required=True, validate=_line(100))
    postal_code = fields.String(required=True, validate=_line(20))
    country = fields.String(load_default="CZ", validate=validate.Regexp(r"^[A-Z]{2}$"))


class RegistrationSchema(Schema):
    customer_number = fields.String(required=True, validate=validate.Regexp(r"^\d{1,20}$", error="Digits only."))
    company_id = CompanyId(required=True)
    email = Email(required=True, validate=validate.Length(max=254))
    password = Password()
    name = Name()


class RegistrationAnswerSchema(Schema):
    status = fields.String()
    expires_at = fields.DateTime()


class TokenSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class TokenPasswordSchema(TokenSchema):
    password = Password()


class InvitationAcceptanceSchema(TokenSchema):
    password = fields.String(
        validate=validate.Length(min=1, max=1024),
        metadata={"description": "A new account's password; an existing account sends the token alone."},
    )


class InvitationSchema(Schema):
    company_name = fields.String(allow_none=True)
    password_needed = fields.Boolean()
    expires_at = fields.DateTime()


class ResetRequestSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))


class PasswordChangeSchema(Schema):
    current_password = Password()
    new_password = Password()


class StatusSchema(Schema):
    status = fields.String()


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


class MeChangeSchema(Schema):
    name = Name()


class CredentialsSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class AuthenticatedUserSchema(Schema):
    id = fields.String()
    email = fields.String()
    name = fields.String()
    staff = fields.Boolean()
    access_version = fields.Integer()


class GrantedSchema(Schema):
    customer_number = fields.String()
    rights = fields.List(fields.String())
    active = fields.Boolean()


class PersonAccessSchema(Schema):
    user_id = fields.String()
    access_version = fields.Integer()
    as_of = fields.DateTime()
    memberships = fields.List(fields.Nested(GrantedSchema))


class ProfileSchema(Schema):
    customer_number = fields.String()
    company_id = fields.String()
    company_name = fields.String()
    billing_address = fields.Nested(AddressSchema, allow_none=True)
    delivery_address = fields.Nested(AddressSchema, allow_none=True)
    delivery_method = fields.String()


class AddressesSchema(Schema):
    billing_address = fields.Nested(AddressSchema, required=True)
    delivery_address = fields.Nested(AddressSchema, required=True)


class DeliveryMethodSchema(Schema):
    delivery_method = fields.String(required=True, validate=validate.OneOf(DELIVERY_METHODS))


Rights = functools.partial(
    fields.List, fields.String(validate=validate.OneOf(RIGHTS)), validate=validate.Length(max=len(RIGHTS))
)


class MemberSchema(Schema):
    id = fields.String()
    email = fields.String()
    name = fields.String()
    administrator = fields.Boolean()
    rights = fields.List(fields.String())
    status = fields.String()
    invited_until = fields.DateTime()


MemberListSchema = list_of(MemberSchema, "MemberList")


class NewMemberSchema(Schema):
    email = Email(required=True, validate=validate.Length(max=254))
    name = Name()
    rights = Rights(required=True)


class MemberChangeSchema(Schema):
    rights = Rights()
    administrator = fields.Boolean()

    @validates_schema
    def _something(self, data, **_kwargs):
        if not data:
            raise ValidationError("Send rights and/or administrator.", "_body")


# --- helpers ------------------------------------------------------------------------------
def _weak_password(field: str, password: str) -> None:
    reason = problems_with(password)
    if reason:
        raise Problem(
            422, "validation-failed", "Validation failed", reason, errors=[{"field": field, "message": reason}]
        )


def _token_problem(error: Exception) -> Problem:
    if isinstance(error, tokens.TokenExpired):
        return Problem(410, "expired", "Link expired", "This link has expired.")
    return Problem(404, "unknown-token", "Unknown link", "This link is unknown or was already used.")


def _member_view(membership: Membership, user: User) -> dict:
    view = {
        "id": memberships.member_id(membership),
        "email": user.email,
        "name": user.name,
        "administrator": membership.administrator,
        "rights": membership.effective_rights(),
        "status": user.status,
    }
    if membership.status == "invited":  # as typed: whether the address has an account is nobody's business
        view |= {"name": membership.invited_name, "status": "invited", "invited_until": membership.invited_until}
    return view


def _access(session, customer_number: str, right: str | None = None, write: bool = False) -> memberships.Access:
    """The caller's access to the profile; a 404 or 403 problem when there is none. For a write,
    the profile is locked first: the caller's rights are read under the lock, so an administrator
    demoted or removed a moment ago can no longer act."""
    if write:
        memberships.lock_profile(session, customer_number)
    granted = memberships.access(session, signed_in_user(), customer_number)
    if right is not None:
        granted.require(right, write)
    return granted


# --- registration -------------------------------------------------------------------------
@accounts_api.route("/registrations")
class Registrations(MethodView):
    @idempotent
    @accounts_api.arguments(RegistrationSchema)
    @accounts_api.response(202, RegistrationAnswerSchema)
    def post(self, body):
        _weak_password("password", body["password"])
        keys = (
            (f"registration-client:{client_address()}", limits.REGISTRATION_PER_CLIENT),
            (f"registration-customer:{body['customer_number']}", limits.REGISTRATION_PER_CUSTOMER),
        )
        config = settings()
        try:
            with database().unit_of_work() as session:
                throttle.refuse_if_throttled(session, keys)
                expires_at = registration.register(
                    session, public_url=config.public_url, ttl_seconds=config.registration_confirm_ttl, **body
                )
        except registration.PairMismatch:
            throttle.count_failure(database(), keys)
            raise Problem(
                422,
                "registration-mismatch",
                "Customer not found",
                "The customer number and company ID do not match a customer of ours. Check both on your invoice.",
            ) from None
        except registration.ProfileHasAdministrator:
            raise Problem(
                409,
                "profile-has-administrator",
                "Profile already registered",
                "This customer profile has an administrator. Ask them to give you access.",
            ) from None
        except registration.ProfileClaimed:
            raise Problem(
                409,
                "profile-claimed",
                "Registration pending",
                "Someone has registered this profile and not confirmed yet. Try again after the confirmation time.",
            ) from None
        return {"status": "pending_confirmation", "expires_at": expires_at}


@accounts_api.route("/registrations/confirm")
class RegistrationConfirmation(MethodView):
    @accounts_api.arguments(TokenSchema)
    @accounts_api.response(200, StatusSchema)
    def post(self, body):
        try:
            with database().unit_of_work() as session:
                registration.confirm(session, body["token"])
        except tokens.TokenExpired as expired:
            with database().unit_of_work() as session:
                registration.lapse_for(session, expired.user_id, expired.customer_number)
            raise Problem(
                410, "expired", "Registration lapsed", "The confirmation time is up. Register again, please."
            ) from None
        except tokens.TokenUnknown as error:
            raise _token_problem(error) from None
        return {"status": "confirmed"}


# --- passwords ----------------------------------------------------------------------------
@accounts_api.route("/password-resets")
class PasswordResets(MethodView):
    @idempotent
    @accounts_api.arguments(ResetRequestSchema)
    @accounts_api.response(202, StatusSchema)
    def post(self, body):
        key = (f"password-reset-client:{client_address()}", limits.PASSWORD_RESET_PER_CLIENT)
        with database().unit_of_work() as session:
            # api.md: 202 always. A client over its limit is answered the same, but no more mail
            # goes out for it: nobody can flood an inbox through us, and a 429 would be a
            # different answer for the same address.
            if throttle.retry_after(session, *key) is not None:
                log.warning("password reset: client over its limit, no mail sent")
                return {"status": "accepted"}
            throttle.hit(session, *key)  # every request counts: each may send a mail
            accounts.request_password_reset(session, body["email"].strip().lower(), settings().public_url, RESET_TTL)
        return {"status": "accepted"}


def _with_token(action, body, field="password"):
    _weak_password(field, body[field])
    try:
        with database().unit_of_work() as session:
            action(session, body["token"], body[field])
    except (tokens.TokenExpired, tokens.TokenUnknown) as error:
        raise _token_problem(error) from None
    return {"status": "ok"}


@accounts_api.route("/password-resets/confirm")
class PasswordResetConfirmation(MethodView):
    @accounts_api.arguments(TokenPasswordSchema)
    @accounts_api.response(200, StatusSchema)
    def post(self, body):
        return _with_token(accounts.reset_password, body)


@accounts_api.route("/invitations/accept")
class InvitationAcceptance(MethodView):
    @idempotent
    @accounts_api.arguments(InvitationAcceptanceSchema)
    @accounts_api.response(200, StatusSchema)
    def post(self, body):
        """Join the invited profile(s): a new account sets its password (`ok`), an existing one
        sends the token alone (`joined`)."""
        try:
            with database().unit_of_work() as session:
                password_set = accounts.accept_invitation(session, body["token"], body.get("password"))
        except accounts.PasswordNeeded as needed:
            raise Problem(
                422,
                "validation-failed",
                "Validation failed",
                needed.reason,
                errors=[{"field": "password", "message": needed.reason}],
            ) from None
        except (tokens.TokenExpired, tokens.TokenUnknown) as error:
            raise _token_problem(error) from None
        return {"status": "ok" if password_set else "joined"}


@accounts_api.route("/invitations/lookup")
class InvitationLookup(MethodView):
    @accounts_api.arguments(TokenSchema)
    @accounts_api.response(200, InvitationSchema)
    def post(self, body):
        """What an invitation link is for (the company; whether a password must be chosen), without using it."""
        try:
            with database().unit_of_work() as session:
                return accounts.invitation(session, body["token"])
        except (tokens.TokenExpired, tokens.TokenUnknown) as error:
            raise _token_problem(error) from None


@accounts_api.route("/me/password")
class MyPassword(MethodView):
    @signed_in
    @accounts_api.arguments(PasswordChangeSchema)
    @accounts_api.response(200, StatusSchema)
    def put(self, body):
        _weak_password("new_password", body["new_password"])
        with database().unit_of_work() as session:
            caller = signed_in_user()
            changed = accounts.change_password(
                session, caller.user_id, body["current_password"], body["new_password"], caller.session_id
            )
        if not changed:
            message = "The current password is not right."
            raise Problem(
                422,
                "validation-failed",
                "Validation failed",
                message,
                errors=[{"field": "current_password", "message": message}],
            )
        return {"status": "changed"}


def _no_longer_active() -> Problem:
    return Problem(401, "unauthenticated", "Sign-in required", "This account is no longer active.")


def _me(session, user: User) -> dict:
    rows = session.execute(
        select(Membership, CustomerProfile.company_name)
        .join(CustomerProfile, CustomerProfile.customer_number == Membership.customer_number)
        .where(Membership.user_id == user.id, Membership.status == "active")
        .order_by(CustomerProfile.company_name)
    ).all()
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "staff": user.staff,
        "memberships": [
            {
                "customer_number": m.customer_number,
                "company_name": company_name,
                "administrator": m.administrator,
                "rights": m.effective_rights(),
            }
            for m, company_name in rows
        ],
    }


@accounts_api.route("/me")
class Me(MethodView):
    @signed_in
    @accounts_api.response(200, MeSchema)
    def get(self):
        """The signed-in person and the profiles they belong to."""
        with database().unit_of_work() as session:
            user = session.get(User, signed_in_user().user_id)
            if user is None or user.status != "active":
                raise _no_longer_active()
            return _me(session, user)

    @signed_in
    @accounts_api.arguments(MeChangeSchema)
    @accounts_api.response(200, MeSchema)
    def patch(self, body):
        """Change one's display name (shown to others, e.g. with forum posts); answers as GET."""
        with database().unit_of_work() as session:
            user = accounts.rename(session, signed_in_user().user_id, body["name"])
            if user is None:
                raise _no_longer_active()
            return _me(session, user)


# --- a customer profile -------------------------------------------------------------------
@profiles_api.route("/<customer_number>/profile")
class Profile(MethodView):
    @signed_in
    @profiles_api.response(200, ProfileSchema)
    def get(self, customer_number):
        with database().unit_of_work() as session:
            _access(session, customer_number)
            return session.get(CustomerProfile, customer_number)


@profiles_api.route("/<customer_number>/addresses")
class Addresses(MethodView):
    @signed_in
    @profiles_api.arguments(AddressesSchema)
    @profiles_api.response(200, ProfileSchema)
    def put(self, body, customer_number):
        with database().unit_of_work() as session:
            _access(session, customer_number, "contacts", write=True)
            return contacts.update(session, customer_number, **body)


@profiles_api.route("/<customer_number>/delivery-method")
class DeliveryMethod(MethodView):
    @signed_in
    @profiles_api.arguments(DeliveryMethodSchema)
    @profiles_api.response(200, ProfileSchema)
    def put(self, body, customer_number):
        with database().unit_of_work() as session:
            _access(session, customer_number, "contacts", write=True)
            return contacts.update(session, customer_number, **body)


@profiles_api.route("/<customer_number>/users")
class Members(MethodView):
    @signed_in
    @profiles_api.response(200, MemberListSchema)
    def get(self, customer_number):
        with database().unit_of_work() as session:
            _access(session, customer_number, "users")
            return {
                "items": [_member_view(m, u) for m, u in memberships.members(session, customer_number)],
                "next": None,
            }

    @idempotent
    @signed_in
    @profiles_api.arguments(NewMemberSchema)
    @profiles_api.response(201, MemberSchema)
    def post(self, body, customer_number):
        config = settings()
        try:
            with database().unit_of_work() as session:
                _access(session, customer_number, "users", write=True)
                inviter = session.get(User, signed_in_user().user_id)
                membership, user = memberships.add_member(
                    session,
                    customer_number=customer_number,
                    inviter=inviter.name,
                    public_url=config.public_url,
                    invitation_ttl=INVITATION_TTL,
                    **body,
                )
                return _member_view(membership, user)
        except memberships.MemberExists:
            raise Problem(
                409, "member-exists", "Already a member", "This person already has access to the profile."
            ) from None
        except memberships.StaffAccount:
            message = "This is a vendor staff address; staff cannot be members of a customer profile."
            raise Problem(
                422,
                "validation-failed",
                "Validation failed",
                message,
                errors=[{"field": "email", "message": message}],
            ) from None


@profiles_api.route("/<customer_number>/users/<user_id>")
class Member(MethodView):
    @signed_in
    @profiles_api.arguments(MemberChangeSchema)
    @profiles_api.response(200, MemberSchema)
    def patch(self, body, customer_number, user_id):
        try:
            with database().unit_of_work() as session:
                _access(session, customer_number, "users", write=True)
                membership, user = memberships.change_member(
                    session, customer_number, user_id, body.get("rights"), body.get("administrator")
                )
                return _member_view(membership, user)
        except memberships.UnknownMember:
            raise Problem(404, "not-found", "Not found", "No such user in this profile.") from None
        except memberships.LastAdministrator:
            raise _last_administrator() from None

    @signed_in
    @profiles_api.response(204)
    def delete(self, customer_number, user_id):
        try:
            with database().unit_of_work() as session:
                _access(session, customer_number, "users", write=True)
                memberships.remove_member(session, customer_number, user_id)
        except memberships.UnknownMember:
            raise Problem(404, "not-found", "Not found", "No such user in this profile.") from None
        except memberships.LastAdministrator:
            raise _last_administrator() from None
        return Response(status=204)


def _last_administrator() -> Problem:
    return Problem(
        409,
        "last-administrator",
        "Last administrator",
        "A profile keeps at least one administrator; appoint another first.",
    )


# --- internal and staff -------------------------------------------------------------------
@internal.route("/credentials/verify")
class VerifyCredentials(MethodView):
    """The gateway asks whether an e-mail and password belong to an active account."""

    @service_only("gateway")
    @internal.arguments(CredentialsSchema)
    @internal.response(200, AuthenticatedUserSchema)
    def post(self, credentials):
        try:
            return accounts.verify_credentials(
                database(), credentials["email"].strip().lower(), credentials["password"], client_address()
            )
        except accounts.SignInFailed:
            raise Problem(
                401, "invalid-credentials", "Sign-in failed", "The e-mail or password is not right."
            ) from None


@internal.route("/people/<user_id>/access")
class PersonAccess(MethodView):
    """A service whose copy of this person's memberships is older than the caller's token asks
    here before it decides (shared.memberships): what gives them access now, and its number."""

    @service_only("licensing", "distribution")
    @internal.response(200, PersonAccessSchema)
    def get(self, user_id):
        with database().unit_of_work() as session:
            version, granted = memberships.snapshot(session, user_id)
            return {
                "user_id": user_id,
                "access_version": version,
                "as_of": utc_now(),
                "memberships": [
                    {"customer_number": m.customer_number, "rights": m.effective_rights(), "active": True}
                    for m in granted
                ],
            }


@admin.route("/customer-profiles/<customer_number>")
class AdminCustomerProfile(MethodView):
    @staff_only
    @admin.response(200, ProfileSchema)
    def get(self, customer_number):
        with database().unit_of_work() as session:
            profile = session.get(CustomerProfile, customer_number)
            if profile is None:
                raise Problem(404, "not-found", "Not found", "No such customer profile.")
            return profile
