"""Rules 4, 6, 7: the administrator's users and rights, contacts and delivery method, and that
every check happens here, in the service that owns the data."""

from __future__ import annotations

from identity.models import RIGHTS

ADDRESS = {"street": "Vinohradská 12", "city": "Praha 2", "postal_code": "12000", "country": "CZ"}
DELIVERY = {"street": "Skladová 7", "city": "Kladno", "postal_code": "27201", "country": "CZ"}


def invite(identity, admin, email="jan@example.com", rights=("downloads",), customer_number="100001"):
    body = {"email": email, "name": "Jan Dvořák", "rights": list(rights)}
    return identity.call("POST", f"/api/v1/customers/{customer_number}/users", body, user=admin)


def colleague(identity, admin, rights=("downloads",), email="jan@example.com") -> str:
    assert invite(identity, admin, email, rights).status_code == 201
    token = identity.token_from_mail(email, "invitation")
    accepted = identity.call("POST", "/api/v1/invitations/accept", {"token": token, "password": "colleague passphrase"})
    assert accepted.status_code == 200
    return identity.user_id(email)


def test_an_invited_colleague_sets_a_password_and_has_exactly_the_rights_given(identity):
    admin = identity.administrator()
    answer = invite(identity, admin)
    assert answer.status_code == 201
    assert answer.get_json()["rights"] == ["downloads"] and answer.get_json()["status"] == "invited"
    mail = identity.mails_to("jan@example.com")[-1]
    assert "https://portal.example/invitation?token=" in mail.body
    assert identity.verify("jan@example.com", "colleague passphrase").status_code == 401  # no password yet

    jan = colleague_accepts(identity)
    assert identity.verify("jan@example.com", "colleague passphrase").status_code == 200
    assert identity.call("GET", "/api/v1/customers/100001/profile", user=jan).status_code == 200
    assert identity.call("GET", "/api/v1/customers/100001/users", user=jan).status_code == 403
    refused = identity.call("PUT", "/api/v1/customers/100001/addresses", _addresses(), user=jan)
    assert refused.status_code == 403 and refused.get_json()["right"] == "contacts"


def colleague_accepts(identity, email="jan@example.com"):
    token = identity.token_from_mail(email, "invitation")
    assert (
        identity.call(
            "POST", "/api/v1/invitations/accept", {"token": token, "password": "colleague passphrase"}
        ).status_code
        == 200
    )
    return identity.user_id(email)


def joins_with_account(identity, email="jan@example.com"):
    """A person with an account accepts the newest invitation mailed to them: the token alone."""
    token = identity.token_from_mail(email, "invitation")
    assert identity.call("POST", "/api/v1/invitations/accept", {"token": token}).status_code == 200


def _addresses():
    return {"billing_address": ADDRESS, "delivery_address": DELIVERY}


def test_rights_changed_or_revoked_take_effect_on_the_next_request(identity):
    admin = identity.administrator()
    jan = colleague(identity, admin)
    grant = identity.call(
        "PATCH", f"/api/v1/customers/100001/users/{jan}", {"rights": ["downloads", "contacts"]}, user=admin
    )
    assert grant.status_code == 200 and grant.get_json()["rights"] == ["downloads", "contacts"]
    assert identity.call("PUT", "/api/v1/customers/100001/addresses", _addresses(), user=jan).status_code == 200
    identity.call("PATCH", f"/api/v1/customers/100001/users/{jan}", {"rights": []}, user=admin)
    assert identity.call("PUT", "/api/v1/customers/100001/addresses", _addresses(), user=jan).status_code == 403
    assert identity.call("DELETE", f"/api/v1/customers/100001/users/{jan}", user=admin).status_code == 204
    assert identity.call("GET", "/api/v1/customers/100001/profile", user=jan).status_code == 404
    versions = [e["version"] for e in identity.events("identity.membership.changed") if e["user_id"] == jan]
    assert versions == sorted(versions) and len(versions) == 4
    assert identity.events("identity.membership.changed")[-1]["active"] is False


def test_a_profile_always_keeps_an_administrator_and_can_hand_over(identity):
    admin = identity.administrator()
    demote = identity.call("PATCH", f"/api/v1/customers/100001/users/{admin}", {"administrator": False}, user=admin)
    assert demote.status_code == 409 and demote.get_json()["type"].endswith("last-administrator")
    assert identity.call("DELETE", f"/api/v1/customers/100001/users/{admin}", user=admin).status_code == 409
    jan = colleague(identity, admin)
    promoted = identity.call("PATCH", f"/api/v1/customers/100001/users/{jan}", {"administrator": True}, user=admin)
    assert promoted.status_code == 200 and sorted(promoted.get_json()["rights"]) == sorted(RIGHTS)
    assert (
        identity.call(
            "PATCH", f"/api/v1/customers/100001/users/{admin}", {"administrator": False}, user=admin
        ).status_code
        == 200
    )
    # the former administrator has lost the users right at once
    assert identity.call("GET", "/api/v1/customers/100001/users", user=admin).status_code == 403
    assert identity.call("GET", "/api/v1/customers/100001/users", user=jan).status_code == 200


def test_one_person_in_two_profiles_with_different_rights(identity):
    ada = identity.administrator("100001", "ada@example.com")
    bob = identity.administrator("100002", "bob@example.com")
    jan = colleague(identity, ada, rights=("downloads",))
    # an existing account is invited too, and joins once it accepts with the token alone
    assert invite(identity, bob, "jan@example.com", ("contacts", "news"), customer_number="100002").status_code == 201
    assert "Stavebniny Morava" in identity.mails_to("jan@example.com")[-1].body
    assert [m["customer_number"] for m in identity.call("GET", "/api/v1/me", user=jan).get_json()["memberships"]] == [
        "100001"
    ]
    joins_with_account(identity)
    me = identity.call("GET", "/api/v1/me", user=jan).get_json()
    assert {(m["customer_number"], tuple(m["rights"])) for m in me["memberships"]} == {
        ("100001", ("downloads",)),
        ("100002", ("news", "contacts")),
    }
    assert identity.call("PUT", "/api/v1/customers/100002/addresses", _addresses(), user=jan).status_code == 200
    assert identity.call("PUT", "/api/v1/customers/100001/addresses", _addresses(), user=jan).status_code == 403


def test_a_second_profile_inviting_someone_who_never_accepted_sends_a_fresh_invitation(identity):
    """Jan was invited to one profile and never set a password (the link may have expired): a
    notice to sign in would leave him no way in, so the second profile's invitation is a link."""
    ada = identity.administrator("100001", "ada@example.com")
    bob = identity.administrator("100002", "bob@example.com")
    assert invite(identity, ada, "jan@example.com", ("downloads",)).status_code == 201
    first = identity.token_from_mail("jan@example.com", "invitation")
    assert invite(identity, bob, "jan@example.com", ("news",), customer_number="100002").status_code == 201
    second = identity.mails_to("jan@example.com")[-1]
    assert "Stavebniny Morava" in second.body and "/invitation?token=" in second.body
    stale = identity.call("POST", "/api/v1/invitations/accept", {"token": first, "password": "colleague passphrase"})
    assert stale.status_code == 404  # a new invitation voids the older one
    jan = colleague_accepts(identity)
    me = identity.call("GET", "/api/v1/me", user=jan).get_json()
    assert {m["customer_number"] for m in me["memberships"]} == {"100001", "100002"}


def test_inviting_someone_whose_registration_is_unconfirmed_lets_them_in(identity):
    """Eva registered 100002 and has not confirmed; Ada invites her to 100001. The invitation
    sets her password and lets her in; her own registration can still be confirmed."""
    ada = identity.administrator("100001", "ada@example.com")
    assert identity.register("100002", email="eva@example.com", name="Eva").status_code == 202
    confirm = identity.token_from_mail("eva@example.com", "confirm")
    assert invite(identity, ada, "eva@example.com", ("news",)).status_code == 201
    eva = colleague_accepts(identity, "eva@example.com")
    assert identity.verify("eva@example.com", "colleague passphrase").status_code == 200
    assert identity.call("POST", "/api/v1/registrations/confirm", {"token": confirm}).status_code == 200
    me = identity.call("GET", "/api/v1/me", user=eva).get_json()
    assert {(m["customer_number"], m["administrator"]) for m in me["memberships"]} == {
        ("100001", False),
        ("100002", True),
    }


def test_removing_an_invited_registrant_leaves_their_own_registration(identity):
    """An administrator inviting, then removing, someone whose own registration is unconfirmed
    must not take that registration (and the claim on their company) away with the invitation."""
    ada = identity.administrator("100001", "ada@example.com")
    assert identity.register("100002", email="eva@example.com", name="Eva").status_code == 202
    confirm = identity.token_from_mail("eva@example.com", "confirm")
    invited = invite(identity, ada, "eva@example.com", ("news",))
    assert invited.status_code == 201
    eva = identity.user_id("eva@example.com")
    removed = identity.call("DELETE", f"/api/v1/customers/100001/users/{invited.get_json()['id']}", user=ada)
    assert removed.status_code == 204
    assert identity.register("100002", email="mallory@example.com").status_code == 409  # still claimed
    assert identity.call("POST", "/api/v1/registrations/confirm", {"token": confirm}).status_code == 200
    me = identity.call("GET", "/api/v1/me", user=eva).get_json()
    assert [(m["customer_number"], m["administrator"]) for m in me["memberships"]] == [("100002", True)]


def test_another_profile_is_404_never_403(identity):
    ada = identity.administrator("100001", "ada@example.com")
    identity.administrator("100002", "bob@example.com")
    for method, path, body in [
        ("GET", "/api/v1/customers/100002/profile", None),
        ("PUT", "/api/v1/customers/100002/addresses", _addresses()),
        ("PUT", "/api/v1/customers/100002/delivery-method", {"delivery_method": "dvd"}),
        ("GET", "/api/v1/customers/100002/users", None),
        ("POST", "/api/v1/customers/100002/users", {"email": "x@example.com", "name": "X", "rights": []}),
        ("GET", "/api/v1/customers/999999/profile", None),
    ]:
        answer = identity.call(method, path, body, user=ada)
        assert answer.status_code == 404, (method, path, answer.get_json())


def test_contacts_and_delivery_method_are_announced_with_versions(identity):
    ada = identity.administrator()
    profile = identity.call("GET", "/api/v1/customers/100001/profile", user=ada).get_json()
    assert profile["delivery_method"] == "download" and profile["company_id"] == "25083325"
    updated = identity.call("PUT", "/api/v1/customers/100001/addresses", _addresses(), user=ada).get_json()
    assert updated["delivery_address"] == DELIVERY
    assert (
        identity.call(
            "PUT", "/api/v1/customers/100001/delivery-method", {"delivery_method": "post"}, user=ada
        ).status_code
        == 422
    )
    dvd = identity.call("PUT", "/api/v1/customers/100001/delivery-method", {"delivery_method": "dvd"}, user=ada)
    assert dvd.get_json()["delivery_method"] == "dvd"
    events = identity.events("identity.customer.contact_changed")
    assert [(e["version"], e["delivery_method"]) for e in events] == [(1, "download"), (2, "dvd")]
    assert events[-1]["delivery_address"] == DELIVERY


def test_schemas_are_allow_lists(identity):
    ada = identity.administrator()
    body = {"email": "eve@example.com", "name": "Eve", "rights": ["downloads"], "administrator": True}
    answer = identity.call("POST", "/api/v1/customers/100001/users", body, user=ada)
    assert answer.status_code == 422 and answer.get_json()["errors"][0]["field"] == "administrator"
    bad_right = identity.call(
        "POST", "/api/v1/customers/100001/users", {**body, "administrator": None, "rights": ["root"]}, user=ada
    )
    assert bad_right.status_code == 422


def test_staff_see_any_profile_read_only(identity):
    identity.administrator()
    staff = "staff-user-id"
    assert identity.call("GET", "/api/v1/customers/100001/profile", user=staff, staff=True).status_code == 200
    assert identity.call("GET", "/api/v1/customers/100001/users", user=staff, staff=True).status_code == 200
    assert (
        identity.call("PUT", "/api/v1/customers/100001/addresses", _addresses(), user=staff, staff=True).status_code
        == 403
    )


def test_the_users_right_is_the_administrator_role(identity):
    admin = identity.administrator()
    jan = colleague(identity, admin)
    made = identity.call(
        "PATCH", f"/api/v1/customers/100001/users/{jan}", {"rights": ["downloads", "users"]}, user=admin
    )
    assert made.get_json()["administrator"] is True
    taken = identity.call("PATCH", f"/api/v1/customers/100001/users/{jan}", {"rights": ["downloads"]}, user=admin)
    assert taken.get_json()["administrator"] is False and taken.get_json()["rights"] == ["downloads"]


def test_the_sales_master_corrects_the_company_name_but_not_contacts_the_customer_edited(identity):
    import json
    from datetime import UTC, datetime

    from identity.handlers import HANDLERS

    from shared.consumer import EventConsumer

    ada = identity.administrator()
    identity.call("PUT", "/api/v1/customers/100001/addresses", _addresses(), user=ada)
    consumer = EventConsumer(identity.client.application.extensions["settings"], HANDLERS, identity.database)
    envelope = {
        "id": "00000000-0000-4000-8000-00000000abcd",
        "type": "licensing.customer.updated",
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "licensing",
        "data": {
            "customer_number": "100001",
            "company_id": "25083325",
            "company_name": "Novák a syn s.r.o.",
            "billing_address": {"street": "Jiná 9", "city": "Brno", "postal_code": "60200", "country": "CZ"},
        },
    }
    consumer.apply(json.dumps(envelope).encode())
    profile = identity.call("GET", "/api/v1/customers/100001/profile", user=ada).get_json()
    assert profile["company_name"] == "Novák a syn s.r.o."
    assert profile["billing_address"] == ADDRESS  # the customer's own edit stays
