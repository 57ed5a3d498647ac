"""Signing in, password reset and change, with one generic answer and throttling."""

from __future__ import annotations

from identity import limits

from shared.throttle import Limit
from tests.identity.conftest import PASSWORD

GENERIC = {
    "type": "urn:customer-center:problem:invalid-credentials",
    "title": "Sign-in failed",
    "status": 401,
    "detail": "The e-mail or password is not right.",
}


def test_every_failed_sign_in_gets_the_same_answer(identity):
    identity.administrator()
    identity.register("100002", "pending@example.com", "Pending")  # registered, never confirmed
    failures = [
        identity.verify("nobody@example.com", PASSWORD),
        identity.verify("ada@example.com", "wrong password!"),
        identity.verify("pending@example.com", PASSWORD),
    ]
    assert [f.status_code for f in failures] == [401, 401, 401]
    assert all(f.get_json() == GENERIC for f in failures)


def test_failed_sign_ins_are_throttled_per_account_and_a_reset_still_works(identity, monkeypatch):
    monkeypatch.setattr(limits, "SIGN_IN_PER_ACCOUNT", Limit(3, 900))
    identity.administrator()
    for client in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert identity.verify("ada@example.com", "wrong password!", client).status_code == 401
    throttled = identity.verify("ada@example.com", PASSWORD, "203.0.113.4")
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    # the owner resets the password and is let in again
    assert identity.call("POST", "/api/v1/password-resets", {"email": "ada@example.com"}).status_code == 202
    token = identity.token_from_mail("ada@example.com", "password-reset")
    reset = identity.call(
        "POST", "/api/v1/password-resets/confirm", {"token": token, "password": "a brand new passphrase"}
    )
    assert reset.status_code == 200
    assert identity.verify("ada@example.com", "a brand new passphrase").status_code == 200
    assert identity.verify("ada@example.com", PASSWORD).status_code == 401


def test_failed_sign_ins_are_throttled_per_client(identity, monkeypatch):
    monkeypatch.setattr(limits, "SIGN_IN_PER_CLIENT", Limit(3, 900))
    for number in range(3):
        identity.verify(f"guess{number}@example.com", "whatever-password")
    assert identity.verify("ada@example.com", PASSWORD).status_code == 429
    assert (
        identity.verify("ada@example.com", PASSWORD, client="203.0.113.50").status_code == 401
    )  # unknown, not throttled


def test_a_successful_sign_in_clears_the_account_count(identity, monkeypatch):
    monkeypatch.setattr(limits, "SIGN_IN_PER_ACCOUNT", Limit(3, 900))
    identity.administrator()
    for _ in range(2):
        identity.verify("ada@example.com", "wrong password!")
    assert identity.verify("ada@example.com", PASSWORD).status_code == 200
    for _ in range(2):
        identity.verify("ada@example.com", "wrong password!")
    assert identity.verify("ada@example.com", PASSWORD).status_code == 200


def test_password_reset_answers_the_same_for_unknown_addresses(identity):
    identity.administrator()
    known = identity.call("POST", "/api/v1/password-resets", {"email": "ada@example.com"})
    unknown = identity.call("POST", "/api/v1/password-resets", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202 and known.get_json() == unknown.get_json()
    assert identity.mails_to("nobody@example.com") == []


def test_password_reset_answers_202_always_and_stops_mailing_a_flooding_client(identity, monkeypatch):
    from identity import limits

    from shared.throttle import Limit

    monkeypatch.setattr(limits, "PASSWORD_RESET_PER_CLIENT", Limit(3, 900))
    identity.administrator()
    answers = [identity.call("POST", "/api/v1/password-resets", {"email": "ada@example.com"}) for _ in range(5)]
    assert [a.status_code for a in answers] == [202] * 5 and len({a.get_data() for a in answers}) == 1
    resets = [m for m in identity.mails_to("ada@example.com") if "password-reset?token=" in m.body]
    assert len(resets) == 3
    other_client = identity.client.post(
        "/api/v1/password-resets", json={"email": "ada@example.com"}, headers=identity.headers(client="203.0.113.9")
    )
    assert other_client.status_code == 202
    assert len([m for m in identity.mails_to("ada@example.com") if "password-reset?token=" in m.body]) == 4


def test_a_newer_reset_link_voids_the_older_and_each_works_once(identity):
    identity.administrator()
    identity.call("POST", "/api/v1/password-resets", {"email": "ada@example.com"})
    first = identity.token_from_mail("ada@example.com", "password-reset")
    identity.call("POST", "/api/v1/password-resets", {"email": "ada@example.com"})
    second = identity.token_from_mail("ada@example.com", "password-reset")
    body = {"password": "another good passphrase"}
    assert identity.call("POST", "/api/v1/password-resets/confirm", {"token": first, **body}).status_code == 404
    assert identity.call("POST", "/api/v1/password-resets/confirm", {"token": second, **body}).status_code == 200
    assert identity.call("POST", "/api/v1/password-resets/confirm", {"token": second, **body}).status_code == 404


def test_an_expired_reset_link_is_410(identity):
    from datetime import timedelta

    from identity.models import Token
    from sqlalchemy import update

    from shared.db import utc_now

    identity.administrator()
    identity.call("POST", "/api/v1/password-resets", {"email": "ada@example.com"})
    token = identity.token_from_mail("ada@example.com", "password-reset")
    with identity.database.unit_of_work() as session:
        session.execute(update(Token).values(expires_at=utc_now() - timedelta(seconds=1)))
    answer = identity.call("POST", "/api/v1/password-resets/confirm", {"token": token, "password": "another good one"})
    assert answer.status_code == 410


def test_changing_the_password_needs_the_current_one(identity):
    ada = identity.administrator()
    wrong = identity.call(
        "PUT", "/api/v1/me/password", {"current_password": "nope", "new_password": "fresh passphrase"}, user=ada
    )
    assert wrong.status_code == 422 and wrong.get_json()["errors"][0]["field"] == "current_password"
    weak = identity.call(
        "PUT", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": "12345678"}, user=ada
    )
    assert weak.status_code == 422 and weak.get_json()["errors"][0]["field"] == "new_password"
    body = {"current_password": PASSWORD, "new_password": "fresh passphrase"}
    assert identity.call("PUT", "/api/v1/me/password", body, user=ada).status_code == 200
    assert identity.verify("ada@example.com", "fresh passphrase").status_code == 200


def test_anonymous_callers_get_401_on_their_own_data(identity):
    assert identity.call("GET", "/api/v1/me").status_code == 401
    assert identity.call("GET", "/api/v1/customers/100001/profile").status_code == 401


def test_older_hash_parameters_are_upgraded_at_the_next_sign_in(identity):
    from argon2 import PasswordHasher
    from identity.models import User
    from identity.passwords import needs_rehash
    from sqlalchemy import update

    identity.administrator()
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    with identity.database.unit_of_work() as session:
        session.execute(update(User).where(User.email == "ada@example.com").values(password_hash=weak))
    assert identity.verify("ada@example.com", PASSWORD).status_code == 200
    with identity.database.unit_of_work() as session:
        stored = session.get(User, identity.user_id("ada@example.com")).password_hash
    assert stored != weak and not needs_rehash(stored) and "m=19456,t=2,p=1" in stored


def test_a_ten_kilobyte_password_is_refused_by_the_schema_before_any_hashing(identity):
    answer = identity.verify("ada@example.com", "x" * 10_000)
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == [{"field": "password", "message": "Length must be between 1 and 1024."}]
