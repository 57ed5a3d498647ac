"""People as other services show them: `identity.user.changed` carries a person's whole state
(name, e-mail, company, staff, active) with a growing version, written in the transaction of
every change that alters it and only then; and a person changes their display name."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from identity.__main__ import ensure_staff
from identity.handlers import HANDLERS
from sqlalchemy import text

from shared import migrations
from shared.consumer import EventConsumer
from shared.db import Database
from shared.messaging import outbox
from tests.identity.test_users_and_rights import colleague, colleague_accepts, invite, joins_with_account

NOVAK = "Účetnictví Novák s.r.o."
MORAVA = "Stavebniny Morava a.s."
EVENT = "identity.user.changed"


def people(identity, user_id: str) -> list[dict]:
    return [event for event in identity.events(EVENT) if event["user_id"] == user_id]


def assert_versions_grow(events: list[dict]) -> None:
    versions = [event["version"] for event in events]
    assert versions == list(range(1, len(versions) + 1)), versions


def company_update(identity, customer_number: str, company_name: str, occurred_at: datetime | None = None):
    """licensing.customer.updated as identity's consumer receives it."""
    company_id = {"100001": "25083325", "100002": "27082440"}[customer_number]
    envelope = {
        "id": str(uuid.uuid4()),
        "type": "licensing.customer.updated",
        "version": 1,
        "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
        "producer": "licensing",
        "data": {"customer_number": customer_number, "company_id": company_id, "company_name": company_name},
    }
    consumer = EventConsumer(identity.client.application.extensions["settings"], HANDLERS, identity.database)
    consumer.apply(json.dumps(envelope).encode())


def test_a_confirmed_registration_announces_the_person(identity):
    assert identity.register(name="Ada Nováková").status_code == 202
    assert identity.events(EVENT) == []  # pending: nobody else needs them yet
    token = identity.token_from_mail("ada@example.com", "confirm")
    assert identity.call("POST", "/api/v1/registrations/confirm", {"token": token}).status_code == 200
    [event] = identity.events(EVENT)
    assert event == {
        "user_id": identity.user_id("ada@example.com"),
        "name": "Ada Nováková",
        "email": "ada@example.com",
        "company_name": NOVAK,
        "staff": False,
        "active": True,
        "version": 1,
    }


def test_an_invited_colleague_is_announced_when_they_accept(identity):
    ada = identity.administrator()
    assert invite(identity, ada).status_code == 201
    assert [e["user_id"] for e in identity.events(EVENT)] == [ada]  # invited: not yet
    jan = colleague_accepts(identity)
    [event] = people(identity, jan)
    assert event == {
        "user_id": jan,
        "name": "Jan Dvořák",
        "email": "jan@example.com",
        "company_name": NOVAK,
        "staff": False,
        "active": True,
        "version": 1,
    }


def test_renaming_oneself_answers_as_get_me_and_is_announced_once(identity):
    ada = identity.administrator()
    renamed = identity.call("PATCH", "/api/v1/me", {"name": "  Ada Svobodová \t"}, user=ada)
    assert renamed.status_code == 200
    assert renamed.get_json() == identity.call("GET", "/api/v1/me", user=ada).get_json()
    assert renamed.get_json()["name"] == "Ada Svobodová"
    # the same name again changes nothing others see: no event
    assert identity.call("PATCH", "/api/v1/me", {"name": "Ada Svobodová"}, user=ada).status_code == 200
    events = people(identity, ada)
    assert [(e["name"], e["version"]) for e in events] == [("Ada Nováková", 1), ("Ada Svobodová", 2)]
    assert events[-1]["company_name"] == NOVAK and events[-1]["active"] is True
    # the administrators' list shows the new name too
    [member] = identity.call("GET", "/api/v1/customers/100001/users", user=ada).get_json()["items"]
    assert member["name"] == "Ada Svobodová"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Ada\nNováková"}, "name"),
        ({"name": "Ada\x00"}, "name"),
        ({"name": "Ada \u202eávokáN"}, "name"),  # a right-to-left override
        ({"name": 42}, "name"),
        ({}, "name"),
        ({"name": "Ada", "email": "eve@example.com"}, "email"),
        ({"name": "Ada", "staff": True}, "staff"),
    ],
)
def test_renaming_validates_the_name_and_accepts_no_other_field(identity, body, field):
    ada = identity.administrator()
    answer = identity.call("PATCH", "/api/v1/me", body, user=ada)
    assert answer.status_code == 422, answer.get_json()
    assert answer.mimetype == "application/problem+json"
    assert field in {error["field"] for error in answer.get_json()["errors"]}
    assert identity.call("GET", "/api/v1/me", user=ada).get_json()["name"] == "Ada Nováková"
    assert len(people(identity, ada)) == 1


def test_a_name_of_200_characters_is_long_enough(identity):
    ada = identity.administrator()
    name = "Ž" * 200
    assert identity.call("PATCH", "/api/v1/me", {"name": name}, user=ada).get_json()["name"] == name


def test_renaming_needs_a_signed_in_active_account(identity):
    anonymous = identity.call("PATCH", "/api/v1/me", {"name": "Eve"})
    assert anonymous.status_code == 401 and anonymous.mimetype == "application/problem+json"
    assert identity.call("PATCH", "/api/v1/me", {"name": "Eve"}, user="no-such-user").status_code == 401
    identity.register(email="pending@example.com")  # registered, not confirmed
    pending = identity.user_id("pending@example.com")
    assert identity.call("PATCH", "/api/v1/me", {"name": "Eve"}, user=pending).status_code == 401
    assert identity.events(EVENT) == []


def test_memberships_decide_company_and_active(identity):
    ada = identity.administrator("100001", "ada@example.com")
    bob = identity.administrator("100002", "bob@example.com")
    jan = colleague(identity, ada)  # joins Novák first
    assert invite(identity, bob, "jan@example.com", ("news",), customer_number="100002").status_code == 201
    joins_with_account(identity)
    # a second, later membership: the company shown stays the first one, so no event
    assert [e["company_name"] for e in people(identity, jan)] == [NOVAK]
    # rights are not part of the person: no event
    identity.call("PATCH", f"/api/v1/customers/100001/users/{jan}", {"rights": ["contacts"]}, user=ada)
    assert len(people(identity, jan)) == 1

    assert identity.call("DELETE", f"/api/v1/customers/100001/users/{jan}", user=ada).status_code == 204
    assert people(identity, jan)[-1] | {"version": None} == {
        "user_id": jan,
        "name": "Jan Dvořák",
        "email": "jan@example.com",
        "company_name": MORAVA,
        "staff": False,
        "active": True,
        "version": None,
    }
    assert identity.call("DELETE", f"/api/v1/customers/100002/users/{jan}", user=bob).status_code == 204
    last = people(identity, jan)[-1]
    assert last["active"] is False and last["company_name"] is None and last["name"] == "Jan Dvořák"

    # an existing account invited again is active again once it accepts, not before
    assert invite(identity, ada, "jan@example.com", ("downloads",)).status_code == 201
    assert people(identity, jan)[-1] == last
    joins_with_account(identity)
    again = people(identity, jan)[-1]
    assert again["active"] is True and again["company_name"] == NOVAK
    assert_versions_grow(people(identity, jan))
    assert [e["version"] for e in people(identity, jan)] == [1, 2, 3, 4]


def test_an_invitation_withdrawn_before_it_was_accepted_announces_nobody(identity):
    ada = identity.administrator()
    invited = invite(identity, ada, "eve@example.com")
    assert invited.status_code == 201
    eve = identity.user_id("eve@example.com")
    assert (
        identity.call("DELETE", f"/api/v1/customers/100001/users/{invited.get_json()['id']}", user=ada).status_code
        == 204
    )
    assert people(identity, eve) == []


def test_a_renamed_company_is_announced_for_the_people_shown_with_it(identity):
    ada = identity.administrator("100001", "ada@example.com")
    bob = identity.administrator("100002", "bob@example.com")
    # Bob also joins Novák, later: he stays shown with Morava
    assert invite(identity, ada, "bob@example.com", ("news",)).status_code == 201
    joins_with_account(identity, "bob@example.com")
    company_update(identity, "100001", "Novák a syn s.r.o.")
    assert [e["company_name"] for e in people(identity, ada)] == [NOVAK, "Novák a syn s.r.o."]
    assert [e["company_name"] for e in people(identity, bob)] == [MORAVA]
    # the same name again, or an older correction arriving late: nothing changes, no event
    company_update(identity, "100001", "Novák a syn s.r.o.")
    company_update(identity, "100001", "Starý Novák", occurred_at=datetime.now(UTC) - timedelta(days=1))
    assert len(people(identity, ada)) == 2
    company_update(identity, "100002", "Morava stavebniny a.s.")
    assert [e["company_name"] for e in people(identity, bob)] == [MORAVA, "Morava stavebniny a.s."]
    assert_versions_grow(people(identity, ada))
    assert_versions_grow(people(identity, bob))


def test_staff_accounts_are_announced_without_a_company(identity):
    user = ensure_staff(identity.database, "Boss@Example.com", "staff passphrase", "Vendor boss")
    [event] = identity.events(EVENT)
    assert event == {
        "user_id": user.id,
        "name": "Vendor boss",
        "email": "boss@example.com",
        "company_name": None,
        "staff": True,
        "active": True,
        "version": 1,
    }
    ensure_staff(identity.database, "boss@example.com", "another staff passphrase")  # a reset: same person
    assert len(identity.events(EVENT)) == 1


def test_every_event_is_written_in_the_transaction_of_its_change(identity):
    """A change that rolls back leaves no event behind."""
    from identity import accounts

    ada = identity.administrator()
    with pytest.raises(RuntimeError), identity.database.unit_of_work() as session:
        accounts.rename(session, ada, "Never Committed")
        raise RuntimeError("roll back")
    assert [e["name"] for e in people(identity, ada)] == ["Ada Nováková"]


def test_concurrent_changes_of_one_person_are_announced_one_after_the_other(identity):
    """A rename racing a membership removal waits for it, then announces both changes with the
    next version: no two events share a version, and the newest holds everything committed."""
    import threading

    from identity import accounts, memberships

    ada = identity.administrator("100001", "ada@example.com")
    bob = identity.administrator("100002", "bob@example.com")
    jan = colleague(identity, ada)
    assert invite(identity, bob, "jan@example.com", ("news",), customer_number="100002").status_code == 201
    joins_with_account(identity)
    renamed = threading.Event()

    def rename():
        with identity.database.unit_of_work() as session:
            accounts.rename(session, jan, "Jan Nový")
        renamed.set()

    with identity.database.unit_of_work() as session:
        memberships.remove_member(session, "100001", jan)  # holds Jan's row until commit
        other = threading.Thread(target=rename, daemon=True)
        other.start()
        assert not renamed.wait(0.5)  # the rename waits for the removal
    other.join(10)
    assert renamed.is_set()
    events = people(identity, jan)
    assert_versions_grow(events)
    assert [(e["name"], e["company_name"]) for e in events] == [
        ("Jan Dvořák", NOVAK),
        ("Jan Dvořák", MORAVA),
        ("Jan Nový", MORAVA),
    ]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_migration_announces_the_people_who_already_exist(backend, new_database, tmp_path):
    url = new_database("identity") if backend == "postgresql" else f"sqlite:///{tmp_path / 'identity.db'}"
    migrations.upgrade("identity", url, "0002")
    database = Database(url)
    now = datetime.now(UTC)
    with database.unit_of_work() as session:
        for number, name in (("100001", NOVAK), ("100002", MORAVA)):
            session.execute(
                text(
                    "INSERT INTO customer_profiles (customer_number, company_id, company_name, delivery_method,"
                    " source_updated_at, created_at, contacts_version) VALUES (:n, '1', :c, 'download', :t, :t, 0)"
                ),
                {"n": number, "c": name, "t": now},
            )
        for user_id, email, staff, status in (
            ("u-ada", "ada@example.com", False, "active"),
            ("u-boss", "boss@example.com", True, "active"),
            ("u-jan", "jan@example.com", False, "invited"),
            ("u-lone", "lone@example.com", False, "active"),  # removed from every profile
        ):
            session.execute(
                text(
                    "INSERT INTO users (id, email, name, staff, status, created_at)"
                    " VALUES (:id, :email, :name, :staff, :status, :t)"
                ),
                {
                    "id": user_id,
                    "email": email,
                    "name": email.split("@")[0],
                    "staff": staff,
                    "status": status,
                    "t": now,
                },
            )
        for user_id, number, joined in (
            ("u-ada", "100002", now),
            ("u-ada", "100001", now - timedelta(days=3)),
            ("u-jan", "100001", now),
        ):
            session.execute(
                text(
                    "INSERT INTO memberships (user_id, customer_number, administrator, rights, version, created_at)"
                    " VALUES (:u, :n, false, '[]', 1, :t)"
                ),
                {"u": user_id, "n": number, "t": joined},
            )
    migrations.upgrade("identity", url)
    with database.unit_of_work() as session:
        rows = session.execute(outbox.select().where(outbox.c.routing_key == EVENT)).all()
        versions = dict(session.execute(text("SELECT id, version FROM users")).all())
    database.dispose()
    events = {event["user_id"]: event for event in (json.loads(row.body)["data"] for row in rows)}
    assert events == {
        "u-ada": {
            "user_id": "u-ada",
            "name": "ada",
            "email": "ada@example.com",
            "company_name": NOVAK,
            "staff": False,
            "active": True,
            "version": 1,
        },
        "u-boss": {
            "user_id": "u-boss",
            "name": "boss",
            "email": "boss@example.com",
            "company_name": None,
            "staff": True,
            "active": True,
            "version": 1,
        },
    }
    assert versions == {"u-ada": 1, "u-boss": 1, "u-jan": 0, "u-lone": 0}
