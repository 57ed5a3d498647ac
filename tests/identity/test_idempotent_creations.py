"""Identity's POSTs that create something take an Idempotency-Key (api.md "Retries (every
write)", shared.idempotency), on PostgreSQL: a registration (anonymous: its keys are its
address's) and an administrator's invitation are made once, however often they are sent."""

from __future__ import annotations

from identity.models import Membership, ProfileClaim
from sqlalchemy import func, select

from shared.auth import Principal
from shared.mail import outgoing_mail
from tests.identity.conftest import CUSTOMERS, PASSWORD
from tests.support import assert_idempotent_creation


def _count(identity, table, *where):
    def count() -> int:
        with identity.database.unit_of_work() as session:
            return session.scalar(select(func.count()).select_from(table).where(*where))

    return count


def _registration(customer_number: str, email: str) -> dict:
    return {
        "customer_number": customer_number,
        "company_id": CUSTOMERS[customer_number][0],
        "email": email,
        "password": PASSWORD,
        "name": "Ada Nováková",
    }


def test_a_registration_with_an_idempotency_key_is_made_once(identity):
    def send(client, request, key):
        path, body = request
        headers = {**identity.headers(None, client), "Idempotency-Key": key}
        return identity.client.post(path, json=body, headers=headers)

    path = "/api/v1/registrations"
    mails = _count(identity, outgoing_mail)
    assert_idempotent_creation(
        send,
        _count(identity, ProfileClaim),
        (path, _registration("100001", "ada@example.com")),
        (path, _registration("100002", "ada@example.com")),
        "198.51.100.1",
        "198.51.100.2",
        stranger_request=(path, _registration("100002", "bob@example.com")),
    )
    assert mails() == 2  # one confirmation for each registration made, none for a replay


def test_an_invitation_with_an_idempotency_key_is_made_once(identity):
    ada = identity.administrator("100001", "ada@example.com")
    bob = identity.administrator("100002", "bob@example.com")

    def send(user, request, key):
        path, body = request
        headers = {**identity.headers(Principal(user)), "Idempotency-Key": key}
        return identity.client.post(path, json=body, headers=headers)

    invitation = {"email": "jan@example.com", "name": "Jan Novák", "rights": ["licenses"]}
    assert_idempotent_creation(
        send,
        _count(identity, Membership),
        ("/api/v1/customers/100001/users", invitation),
        ("/api/v1/customers/100001/users", {**invitation, "email": "eva@example.com"}),
        ada,
        bob,
        stranger_request=("/api/v1/customers/100002/users", invitation),
    )
    assert len(identity.mails_to("jan@example.com")) == 2  # ada's and bob's invitation, each once


def _anonymous_sender(identity):
    def send(client, request, key):
        path, body = request
        headers = {**identity.headers(None, client), "Idempotency-Key": key}
        return identity.client.post(path, json=body, headers=headers)

    return send


def test_an_invitation_accepted_twice_with_its_key_answers_alike(identity):
    """The portal's invitation form sends its key: a double click joins once and answers alike
    (without the key the second sending finds the token used)."""
    ada = identity.administrator("100001", "ada@example.com")
    tokens = []
    for email in ("jan@example.com", "eva@example.com", "petr@example.com"):
        invited = identity.call(
            "POST", "/api/v1/customers/100001/users", {"email": email, "name": "Kolega", "rights": []}, user=ada
        )
        assert invited.status_code == 201
        tokens.append(identity.token_from_mail(email, "invitation"))
    path = "/api/v1/invitations/accept"
    joined = _count(identity, Membership, Membership.status == "active")
    requests = [(path, {"token": token, "password": "colleague passphrase"}) for token in tokens]
    assert_idempotent_creation(
        _anonymous_sender(identity),
        joined,
        requests[0],
        requests[1],
        "198.51.100.1",
        "198.51.100.2",
        stranger_request=requests[2],
    )


def test_a_password_reset_sent_twice_with_its_key_mails_once(identity):
    identity.administrator("100001", "ada@example.com")
    identity.administrator("100002", "bob@example.com")
    path = "/api/v1/password-resets"
    resets = _count(identity, outgoing_mail)  # the mails after the two registrations: one per reset
    assert_idempotent_creation(
        _anonymous_sender(identity),
        resets,
        (path, {"email": "ada@example.com"}),
        (path, {"email": "bob@example.com"}),
        "198.51.100.1",
        "198.51.100.2",
    )
