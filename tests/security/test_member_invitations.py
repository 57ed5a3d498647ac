"""Adding a member (review finding 9, api.md "Changes to first-edition answers").

An administrator adding an address learns nothing about it: an existing account is answered
exactly as a new address (201, `status: "invited"`, the name typed, an id of the invitation's
own), gets no access and is announced to no service until the person accepts (with the token
alone), and vendor staff cannot be made members at all (422). Identity's real app on
PostgreSQL; the portal's invitation page through the gateway's test client in front of it.
"""

from __future__ import annotations

import re

import pytest
from gateway.app import create_app as create_gateway
from identity.__main__ import ensure_staff

from shared.config import Settings
from shared.migrations import upgrade
from tests.conftest import TEST_SECRET
from tests.gateway.conftest import post_form, text
from tests.identity import conftest as identity_conftest
from tests.identity.test_users_and_rights import colleague, invite
from tests.support import serving

identity = identity_conftest.identity  # the fixture: identity's app on PostgreSQL
MEMBER_FIELDS = {"id", "email", "name", "administrator", "rights", "status", "invited_until"}


def _joined(identity, user_id: str, customer_number: str = "100001") -> bool:
    me = identity.call("GET", "/api/v1/me", user=user_id).get_json()
    return customer_number in {m["customer_number"] for m in me["memberships"]}


def _membership_events(identity, user_id: str, customer_number: str = "100001") -> list[dict]:
    return [
        e
        for e in identity.events("identity.membership.changed")
        if (e["user_id"], e["customer_number"]) == (user_id, customer_number)
    ]


def _existing_account(identity) -> str:
    """Bob Skutečný: an administrator of 100002 with a password, known to the other services."""
    assert identity.register("100002", email="bob@example.com", name="Bob Skutečný").status_code == 202
    token = identity.token_from_mail("bob@example.com", "confirm")
    assert identity.call("POST", "/api/v1/registrations/confirm", {"token": token}).status_code == 200
    return identity.user_id("bob@example.com")


def test_an_existing_account_is_answered_as_a_new_address(identity):
    ada = identity.administrator()
    bob = _existing_account(identity)
    fresh = invite(identity, ada, "new@example.com", ("downloads",))
    existing = invite(identity, ada, "bob@example.com", ("downloads",))
    assert fresh.status_code == existing.status_code == 201
    fresh, existing = fresh.get_json(), existing.get_json()
    assert set(fresh) == set(existing) == MEMBER_FIELDS
    assert fresh["status"] == existing["status"] == "invited"
    assert fresh["name"] == existing["name"] == "Jan Dvořák"  # what Ada typed, for both
    assert existing["email"] == "bob@example.com" and existing["id"] != bob  # not the account's id
    assert fresh["invited_until"] and existing["invited_until"]

    listed = identity.call("GET", "/api/v1/customers/100001/users", user=ada).get_json()["items"]
    mine = {m["email"]: m for m in listed}
    assert mine["bob@example.com"] == existing and mine["new@example.com"] == fresh
    everything = str(listed) + str(existing)
    assert "Skutečný" not in everything and bob not in everything
    # an invited member is reached by the invitation's id; the account's id is unknown here
    assert identity.call("DELETE", f"/api/v1/customers/100001/users/{bob}", user=ada).status_code == 404
    changed = identity.call("PATCH", f"/api/v1/customers/100001/users/{existing['id']}", {"rights": ["news"]}, user=ada)
    assert changed.status_code == 200 and changed.get_json()["name"] == "Jan Dvořák"


def test_an_existing_account_gets_no_access_and_no_announcement_until_it_accepts(identity):
    ada = identity.administrator()
    bob = _existing_account(identity)
    people_before = [e for e in identity.events("identity.user.changed") if e["user_id"] == bob]
    assert invite(identity, ada, "bob@example.com", ("downloads", "contacts")).status_code == 201

    assert identity.call("GET", "/api/v1/customers/100001/profile", user=bob).status_code == 404
    assert identity.call("GET", "/api/v1/customers/100001/users", user=bob).status_code == 404
    assert not _joined(identity, bob)
    # licensing and distribution learn memberships from these events only: none yet
    assert _membership_events(identity, bob) == []
    assert [e for e in identity.events("identity.user.changed") if e["user_id"] == bob] == people_before

    mail = identity.mails_to("bob@example.com")[-1]
    assert "Účetnictví Novák" in mail.body and "/invitation?token=" in mail.body
    token = identity.token_from_mail("bob@example.com", "invitation")
    looked_up = identity.call("POST", "/api/v1/invitations/lookup", {"token": token})
    assert looked_up.status_code == 200
    assert looked_up.get_json() | {"expires_at": None} == {
        "company_name": "Účetnictví Novák s.r.o.",
        "password_needed": False,
        "expires_at": None,
    }
    accepted = identity.call("POST", "/api/v1/invitations/accept", {"token": token})
    assert accepted.status_code == 200 and accepted.get_json() == {"status": "joined"}

    assert identity.call("GET", "/api/v1/customers/100001/profile", user=bob).status_code == 200
    assert _joined(identity, bob)
    [event] = _membership_events(identity, bob)
    assert event["active"] is True and event["rights"] == ["downloads", "contacts"]
    assert identity.verify("bob@example.com", "correct horse battery").status_code == 200  # password kept
    assert identity.call("POST", "/api/v1/invitations/accept", {"token": token}).status_code == 404  # used
    listed = identity.call("GET", "/api/v1/customers/100001/users", user=ada).get_json()["items"]
    [row] = [m for m in listed if m["email"] == "bob@example.com"]
    assert row["status"] == "active" and row["id"] == bob and "invited_until" not in row


def test_a_password_sent_for_an_existing_account_changes_nothing(identity):
    ada = identity.administrator()
    _existing_account(identity)
    invite(identity, ada, "bob@example.com")
    token = identity.token_from_mail("bob@example.com", "invitation")
    answer = identity.call("POST", "/api/v1/invitations/accept", {"token": token, "password": "a brand new phrase"})
    assert answer.status_code == 200
    assert identity.verify("bob@example.com", "correct horse battery").status_code == 200
    assert identity.verify("bob@example.com", "a brand new phrase").status_code == 401


def test_a_new_account_still_sets_a_password_and_cannot_accept_without_one(identity):
    ada = identity.administrator()
    added = invite(identity, ada, "jan@example.com")
    token = identity.token_from_mail("jan@example.com", "invitation")
    looked_up = identity.call("POST", "/api/v1/invitations/lookup", {"token": token}).get_json()
    assert looked_up["password_needed"] is True
    refused = identity.call("POST", "/api/v1/invitations/accept", {"token": token})
    assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == "password"
    weak = identity.call("POST", "/api/v1/invitations/accept", {"token": token, "password": "password"})
    assert weak.status_code == 422 and weak.get_json()["errors"][0]["field"] == "password"
    jan = identity.user_id("jan@example.com")
    assert _membership_events(identity, jan) == []
    ok = identity.call("POST", "/api/v1/invitations/accept", {"token": token, "password": "colleague passphrase"})
    assert ok.status_code == 200 and ok.get_json() == {"status": "ok"}  # the token survived the refusals
    assert _joined(identity, jan)
    assert [e["active"] for e in _membership_events(identity, jan)] == [True]
    assert added.get_json()["id"] != jan


def test_an_invitation_withdrawn_before_acceptance_no_longer_works(identity):
    ada = identity.administrator()
    bob = _existing_account(identity)
    added = invite(identity, ada, "bob@example.com").get_json()
    token = identity.token_from_mail("bob@example.com", "invitation")
    assert identity.call("DELETE", f"/api/v1/customers/100001/users/{added['id']}", user=ada).status_code == 204
    assert identity.call("POST", "/api/v1/invitations/lookup", {"token": token}).status_code == 404
    assert identity.call("POST", "/api/v1/invitations/accept", {"token": token}).status_code == 404
    assert not _joined(identity, bob)
    assert identity.call("GET", "/api/v1/customers/100002/profile", user=bob).status_code == 200  # his own stays


def test_invitations_to_two_profiles_are_accepted_each_with_its_own_link(identity):
    ada = identity.administrator("100001", "ada@example.com")
    carl = identity.administrator("100003", "carl@example.com")
    bob = _existing_account(identity)
    invite(identity, ada, "bob@example.com")
    first = identity.token_from_mail("bob@example.com", "invitation")
    invite(identity, carl, "bob@example.com", customer_number="100003")
    second = identity.token_from_mail("bob@example.com", "invitation")
    assert identity.call("POST", "/api/v1/invitations/accept", {"token": second}).status_code == 200
    assert _joined(identity, bob, "100003") and not _joined(identity, bob, "100001")
    assert identity.call("POST", "/api/v1/invitations/accept", {"token": first}).status_code == 200
    assert _joined(identity, bob, "100001")


@pytest.mark.parametrize("email", ["staff@example.com", "STAFF@example.com"])
def test_vendor_staff_cannot_be_made_members(identity, email):
    ada = identity.administrator()
    staff = ensure_staff(identity.database, "staff@example.com", "staff passphrase", "Vendor Operator")
    answer = identity.call(
        "POST", "/api/v1/customers/100001/users", {"email": email, "name": "X", "rights": []}, user=ada
    )
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    assert answer.get_json()["errors"][0]["field"] == "email"
    assert identity.mails_to("staff@example.com") == []
    assert _membership_events(identity, staff.id) == []


def test_removing_an_accepted_colleague_still_works_by_the_account_id(identity):
    ada = identity.administrator()
    jan = colleague(identity, ada)
    assert identity.call("DELETE", f"/api/v1/customers/100001/users/{jan}", user=ada).status_code == 204


# --- the portal's invitation page ---------------------------------------------------------------
@pytest.fixture
def portal(identity, tmp_path):
    """The gateway's test client, in front of identity served over HTTP."""
    with serving(identity.client.application) as identity_url:
        database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
        upgrade("gateway", database_url)
        settings = Settings(
            service="gateway",
            database_url=database_url,
            internal_auth_secret=TEST_SECRET,
            service_urls={"identity": identity_url},
        )
        app = create_gateway(settings)
        yield app.test_client()
        app.extensions["database"].dispose()


def test_the_portal_invitation_page_lets_an_existing_account_join(identity, portal):
    ada = identity.administrator()
    bob = _existing_account(identity)
    invite(identity, ada, "bob@example.com")
    token = identity.token_from_mail("bob@example.com", "invitation")
    page = portal.get(f"/invitation?token={token}")
    assert page.status_code == 200
    assert "Účetnictví Novák s.r.o." in text(page) and 'name="password"' not in text(page)
    assert not _joined(identity, bob)  # looking at the page joins nobody
    done = post_form(portal, "/invitation", {"token": token}, f"/invitation?token={token}")
    assert done.status_code == 200 and "Jste členem profilu" in text(done)
    assert _joined(identity, bob)
    again = portal.get(f"/invitation?token={token}")
    assert again.status_code == 404


def test_the_portal_invitation_page_asks_a_new_account_for_a_password(identity, portal):
    ada = identity.administrator()
    invite(identity, ada, "jan@example.com")
    token = identity.token_from_mail("jan@example.com", "invitation")
    page = text(portal.get(f"/invitation?token={token}"))
    assert re.search(r'<label for="f-password">Zvolte heslo</label>', page)
    done = post_form(
        portal, "/invitation", {"token": token, "password": "colleague passphrase"}, f"/invitation?token={token}"
    )
    assert "Váš účet je připraven" in text(done)
    assert _joined(identity, identity.user_id("jan@example.com"))
