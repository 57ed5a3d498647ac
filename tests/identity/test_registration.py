"""Rules 1-3: registration with customer number and company ID, first one is administrator,
confirm within the time allowed."""

from __future__ import annotations

import time

import pytest
from identity import limits

from shared.throttle import Limit
from tests.identity.conftest import PASSWORD


def test_registration_confirmation_and_first_administrator(identity):
    answer = identity.register()
    assert answer.status_code == 202
    assert answer.get_json()["status"] == "pending_confirmation" and answer.get_json()["expires_at"]
    [mail] = identity.mails_to("ada@example.com")
    assert "https://portal.example/confirm?token=" in mail.body and "Účetnictví Novák s.r.o." in mail.body
    # not confirmed yet: cannot sign in
    assert identity.verify("ada@example.com", PASSWORD).status_code == 401

    token = identity.token_from_mail("ada@example.com", "confirm")
    confirmed = identity.call("POST", "/api/v1/registrations/confirm", {"token": token})
    assert confirmed.status_code == 200 and confirmed.get_json() == {"status": "confirmed"}
    assert identity.verify("ADA@example.com", PASSWORD).status_code == 200

    me = identity.call("GET", "/api/v1/me", user=identity.user_id("ada@example.com")).get_json()
    [membership] = me["memberships"]
    assert membership["customer_number"] == "100001" and membership["administrator"] is True
    assert sorted(membership["rights"]) == sorted(limits_rights())
    # the link works once
    assert identity.call("POST", "/api/v1/registrations/confirm", {"token": token}).status_code == 404
    [event] = identity.events("identity.membership.changed")
    assert event["administrator"] is True and event["customer_number"] == "100001"


def limits_rights():
    from identity.models import RIGHTS

    return RIGHTS


def test_a_wrong_pair_gets_one_generic_answer_whichever_half_is_wrong(identity):
    wrong_company = identity.register(company_id="27082440")  # a valid ID, another customer's
    wrong_number = identity.register(customer_number="100009", company_id="25083325")
    assert wrong_company.status_code == wrong_number.status_code == 422
    assert wrong_company.get_json() == wrong_number.get_json()
    assert wrong_company.get_json()["type"].endswith("registration-mismatch")


def test_a_bad_check_digit_is_a_field_error(identity):
    answer = identity.register(company_id="25083326")
    assert answer.status_code == 422
    assert [e["field"] for e in answer.get_json()["errors"]] == ["company_id"]


@pytest.mark.parametrize(
    "password,reason",
    [("short", "at least"), ("password123", "too common"), ("x" * 10_000, "")],
)
def test_weak_or_absurd_passwords_are_refused_before_hashing(identity, password, reason):
    answer = identity.register(password=password)
    assert answer.status_code == 422
    assert answer.get_json()["errors"][0]["field"] == "password"
    assert reason in answer.get_json()["errors"][0]["message"]


def test_fields_one_may_not_set_are_rejected(identity):
    answer = identity.register(administrator=True, staff=True)
    assert answer.status_code == 422
    assert {e["field"] for e in answer.get_json()["errors"]} == {"administrator", "staff"}


def test_wrong_pairs_are_throttled_per_client_with_retry_after(identity, monkeypatch):
    monkeypatch.setattr(limits, "REGISTRATION_PER_CLIENT", Limit(3, 900))
    for _ in range(3):
        assert identity.register(company_id="27082440").status_code == 422
    throttled = identity.register(company_id="27082440")
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    # even the right pair waits: the client is throttled, not the guess
    assert identity.register().status_code == 429
    # another client is not affected
    assert identity.call("POST", "/api/v1/registrations", _body(), client="203.0.113.9").status_code == 202


def test_wrong_pairs_are_throttled_per_customer_number_across_clients(identity, monkeypatch):
    monkeypatch.setattr(limits, "REGISTRATION_PER_CUSTOMER", Limit(2, 900))
    for client in ("203.0.113.1", "203.0.113.2"):
        identity.call("POST", "/api/v1/registrations", _body(company_id="27082440"), client=client)
    assert identity.call("POST", "/api/v1/registrations", _body(), client="203.0.113.3").status_code == 429


def _body(**changes):
    return {
        "customer_number": "100001",
        "company_id": "25083325",
        "email": "eva@example.com",
        "password": PASSWORD,
        "name": "Eva",
        **changes,
    }


def test_later_people_are_told_to_ask_the_administrator(identity):
    assert identity.register().status_code == 202
    pending = identity.register(email="bob@example.com", name="Bob")
    assert pending.status_code == 409 and pending.get_json()["type"].endswith("profile-claimed")
    identity.call(
        "POST", "/api/v1/registrations/confirm", {"token": identity.token_from_mail("ada@example.com", "confirm")}
    )
    taken = identity.register(email="bob@example.com", name="Bob")
    assert taken.status_code == 409 and taken.get_json()["type"].endswith("profile-has-administrator")


def test_an_unconfirmed_registration_lapses_and_the_profile_is_free_again(identity, monkeypatch):
    from dataclasses import replace

    settings = identity.client.application.extensions["settings"]
    identity.client.application.extensions["settings"] = replace(settings, registration_confirm_ttl=1)
    assert identity.register().status_code == 202
    token = identity.token_from_mail("ada@example.com", "confirm")
    time.sleep(1.2)
    lapsed = identity.call("POST", "/api/v1/registrations/confirm", {"token": token})
    assert lapsed.status_code == 410 and lapsed.mimetype == "application/problem+json"
    # the account is gone with its claim: the same person (or anyone) may register again
    identity.client.application.extensions["settings"] = settings
    assert identity.register(email="bob@example.com", name="Bob").status_code == 202
    assert identity.register().status_code == 409  # now Bob's claim is pending


def test_a_lapsed_claim_is_released_by_the_next_registration_too(identity):
    from dataclasses import replace

    settings = identity.client.application.extensions["settings"]
    identity.client.application.extensions["settings"] = replace(settings, registration_confirm_ttl=1)
    assert identity.register().status_code == 202
    time.sleep(1.2)
    identity.client.application.extensions["settings"] = settings
    assert identity.register(email="bob@example.com", name="Bob").status_code == 202
    old = identity.call(
        "POST", "/api/v1/registrations/confirm", {"token": identity.token_from_mail("ada@example.com", "confirm")}
    )
    assert old.status_code == 404


def test_unknown_tokens_are_404(identity):
    assert identity.call("POST", "/api/v1/registrations/confirm", {"token": "nope"}).status_code == 404


def test_a_person_with_an_account_registers_another_company_into_it(identity):
    """Rule 4: an accounting firm's bookkeeper, administrator of one client, registers the next
    one. Same answer as a new address; the e-mail asks to confirm; the password stays."""
    ada = identity.administrator("100001")
    answer = identity.register("100002", password="a different password 42")
    assert answer.status_code == 202 and answer.get_json()["status"] == "pending_confirmation"
    mail = identity.mails_to("ada@example.com")[-1]
    assert "Stavebniny Morava a.s." in mail.subject and "stávajícím účtu" in mail.body
    # still only the first company until the link is opened
    memberships = identity.call("GET", "/api/v1/me", user=ada).get_json()["memberships"]
    assert [m["customer_number"] for m in memberships] == ["100001"]
    assert identity.register("100002", email="bob@example.com").status_code == 409  # claimed

    token = identity.token_from_mail("ada@example.com", "confirm")
    assert identity.call("POST", "/api/v1/registrations/confirm", {"token": token}).status_code == 200
    memberships = identity.call("GET", "/api/v1/me", user=ada).get_json()["memberships"]
    assert {m["customer_number"]: m["administrator"] for m in memberships} == {"100001": True, "100002": True}
    assert identity.user_id("ada@example.com") == ada
    assert identity.verify("ada@example.com", PASSWORD).status_code == 200  # her password, unchanged
    assert identity.verify("ada@example.com", "a different password 42").status_code == 401


def test_a_lapsed_claim_of_an_existing_account_leaves_the_account(identity):
    from dataclasses import replace

    ada = identity.administrator("100001")
    settings = identity.client.application.extensions["settings"]
    identity.client.application.extensions["settings"] = replace(settings, registration_confirm_ttl=1)
    assert identity.register("100002").status_code == 202
    token = identity.token_from_mail("ada@example.com", "confirm")
    time.sleep(1.2)
    identity.client.application.extensions["settings"] = settings
    assert identity.call("POST", "/api/v1/registrations/confirm", {"token": token}).status_code == 410
    assert identity.user_id("ada@example.com") == ada
    assert identity.verify("ada@example.com", PASSWORD).status_code == 200
    memberships = identity.call("GET", "/api/v1/me", user=ada).get_json()["memberships"]
    assert [m["customer_number"] for m in memberships] == ["100001"]
    assert identity.register("100002", email="bob@example.com").status_code == 202  # the profile is free


def test_an_address_whose_account_is_unfinished_gets_the_same_answer_and_nothing_else(identity):
    """No mail (it could be sent to that address again and again) and no claim: the earlier
    link is that account's way in."""
    assert identity.register("100001").status_code == 202  # not confirmed
    mails = len(identity.mails_to("ada@example.com"))
    again = identity.register("100002")
    assert again.status_code == 202 and again.get_json()["status"] == "pending_confirmation"
    assert len(identity.mails_to("ada@example.com")) == mails
    assert identity.register("100002", email="bob@example.com").status_code == 202  # nothing was claimed


def test_one_account_registers_two_companies_and_confirms_both(identity):
    """Each company's confirmation link stays good when the next company is registered."""
    ada = identity.administrator("100001")
    tokens = {}
    for number in ("100002", "100003"):
        assert identity.register(number).status_code == 202
        tokens[number] = identity.token_from_mail("ada@example.com", "confirm")
    for number in ("100002", "100003"):
        confirmed = identity.call("POST", "/api/v1/registrations/confirm", {"token": tokens[number]})
        assert confirmed.status_code == 200, number
    memberships = identity.call("GET", "/api/v1/me", user=ada).get_json()["memberships"]
    assert {m["customer_number"] for m in memberships if m["administrator"]} == {"100001", "100002", "100003"}


def test_a_known_address_answers_like_a_new_one_and_costs_one_hash_too(identity, monkeypatch):
    """quality.md: one answer, one status and similar timing for a known e-mail: the password
    is hashed whether the address is new, has an account, or has an unfinished one."""
    from identity import registration

    hashed = []
    real = registration.hash_password
    monkeypatch.setattr(registration, "hash_password", lambda password: hashed.append(password) or real(password))
    answers = [identity.register("100001", email="new@example.com")]  # a new address
    token = identity.token_from_mail("new@example.com", "confirm")
    answers.append(identity.register("100002", email="new@example.com"))  # unfinished account
    assert identity.call("POST", "/api/v1/registrations/confirm", {"token": token}).status_code == 200
    answers.append(identity.register("100002", email="new@example.com"))  # an active account
    assert len(hashed) == 3
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert [set(a.get_json()) for a in answers] == [{"status", "expires_at"}] * 3


def test_a_lapsed_registration_does_not_keep_the_address_from_registering_another_company(identity):
    """Nobody touched 100001 since Ada's link expired, so nothing lapsed it yet: registering
    100002 with her address lapses it and starts afresh instead of hinting at a dead link."""
    from dataclasses import replace

    settings = identity.client.application.extensions["settings"]
    identity.client.application.extensions["settings"] = replace(settings, registration_confirm_ttl=1)
    assert identity.register("100001").status_code == 202
    time.sleep(1.2)
    identity.client.application.extensions["settings"] = settings
    assert identity.register("100002", password="another passphrase").status_code == 202
    token = identity.token_from_mail("ada@example.com", "confirm")
    assert identity.call("POST", "/api/v1/registrations/confirm", {"token": token}).status_code == 200
    assert identity.verify("ada@example.com", "another passphrase").status_code == 200
    me = identity.call("GET", "/api/v1/me", user=identity.user_id("ada@example.com")).get_json()
    assert [m["customer_number"] for m in me["memberships"]] == ["100002"]
    assert identity.register("100001", email="bob@example.com").status_code == 202  # 100001 is free
