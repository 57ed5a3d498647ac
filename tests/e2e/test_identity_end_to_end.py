"""Identity through the real gateway and processes on PostgreSQL: the registration race,
and a customer's profile that other services learn about."""

from __future__ import annotations

import threading

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
        answers.append(requests.post(f"{gateway}/api/v1/registrations", json=body, timeout=60).status_code)

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
