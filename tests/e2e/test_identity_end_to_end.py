"""Identity through the real gateway and processes on PostgreSQL: the registration race,
and a customer's profile that other services learn about."""

from __future__ import annotations

import threading
import time

import requests
from sqlalchemy import create_engine, text

from tests.support import wait_until

ADDRESS = {"street": "Nádražní 1", "city": "Plzeň", "postal_code": "30100"}


def test_fifty_people_registering_one_profile_at_once_make_exactly_one_claim(gateway, staff, suite):
    created = requests.post(
        f"{gateway}/api/v1/admin/customers",
        json={"company_id": "26185610", "company_name": "Souběh s.r.o.", "billing_address": ADDRESS},
        headers=staff,
        timeout=10,
    )
    number = created.json()["customer_number"]
    wait_until(
        lambda: requests.get(f"{gateway}/api/v1/admin/customer-profiles/{number}", headers=staff, timeout=10).ok,
        message="the profile in identity",
    )
    start = threading.Barrier(50)
    answers: list[int] = []

    def register(n: int) -> None:
        body = {
            "customer_number": number,
            "company_id": "26185610",
            "email": f"racer{n}@example.com",
            "password": f"a long enough passphrase {n}",
            "name": f"Závodník {n}",
        }
        start.wait()
        answer = requests.post(f"{gateway}/api/v1/registrations", json=body, timeout=60)
        # Past identity's share of a gateway worker (its bulkhead) the gateway says "too busy,
        # again shortly" at once; a client does as Retry-After says, and is then answered.
        for _ in range(100):
            if answer.status_code != 503 or "Retry-After" not in answer.headers:
                break
            time.sleep(0.2)
            answer = requests.post(f"{gateway}/api/v1/registrations", json=body, timeout=60)
        answers.append(answer.status_code)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [202] + [409] * 49
    engine = create_engine(suite.env["IDENTITY_DATABASE_URL"])
    with engine.connect() as connection:
        claims = connection.execute(
            text("SELECT count(*) FROM profile_claims WHERE customer_number = :n"), {"n": number}
        ).scalar()
        pending_users = connection.execute(text("SELECT count(*) FROM users WHERE email LIKE 'racer%'")).scalar()
    engine.dispose()
    assert claims == 1 and pending_users == 1


def test_register_confirm_invite_and_rights_through_the_gateway_with_real_mail(gateway, staff, mailbox):
    number, admin = administrator_of(gateway, staff, mailbox, "47114983", "Mlýn Hradec a.s.", "ivana@example.com")
    invited = requests.post(
        f"{gateway}/api/v1/customers/{number}/users",
        json={"email": "karel@example.com", "name": "Karel", "rights": ["downloads"]},
        headers=admin,
        timeout=10,
    )
    assert invited.status_code == 201
    token = mailbox.link_token(mailbox.wait_for("karel@example.com"), "invitation")
    accepted = requests.post(
        f"{gateway}/api/v1/invitations/accept", json={"token": token, "password": "karel's passphrase"}, timeout=10
    )
    assert accepted.status_code == 200
    karel = sign_in(gateway, "karel@example.com", "karel's passphrase")
    assert requests.get(f"{gateway}/api/v1/customers/{number}/profile", headers=karel, timeout=10).status_code == 200
    assert requests.get(f"{gateway}/api/v1/customers/{number}/users", headers=karel, timeout=10).status_code == 403

    # the administrator of another profile does not even learn this one exists
    _, outsider = administrator_of(gateway, staff, mailbox, "00006947", "Jiná firma s.r.o.", "jiny@example.com")
    assert requests.get(f"{gateway}/api/v1/customers/{number}/profile", headers=outsider, timeout=10).status_code == 404
    changed = requests.put(
        f"{gateway}/api/v1/customers/{number}/delivery-method",
        json={"delivery_method": "dvd"},
        headers=outsider,
        timeout=10,
    )
    assert changed.status_code == 404


def administrator_of(gateway, staff, mailbox, company_id: str, company_name: str, email: str) -> tuple[str, dict]:
    """A new customer, registered and confirmed through the real mail: (number, auth headers)."""
    created = requests.post(
        f"{gateway}/api/v1/admin/customers",
        json={"company_id": company_id, "company_name": company_name, "billing_address": ADDRESS},
        headers=staff,
        timeout=10,
    )
    number = created.json()["customer_number"]
    wait_until(lambda: requests.get(f"{gateway}/api/v1/admin/customer-profiles/{number}", headers=staff, timeout=10).ok)
    password = f"{email} passphrase"
    body = {"customer_number": number, "company_id": company_id, "email": email, "name": "Admin", "password": password}
    assert requests.post(f"{gateway}/api/v1/registrations", json=body, timeout=10).status_code == 202
    token = mailbox.link_token(mailbox.wait_for(email), "confirm")
    assert (
        requests.post(f"{gateway}/api/v1/registrations/confirm", json={"token": token}, timeout=10).status_code == 200
    )
    return number, sign_in(gateway, email, password)


def sign_in(gateway: str, email: str, password: str) -> dict[str, str]:
    answer = requests.post(f"{gateway}/api/v1/sessions", json={"email": email, "password": password}, timeout=10)
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}
