"""Licensing's POSTs that create something take an Idempotency-Key (api.md "Retries (every
write)", shared.idempotency), on PostgreSQL: a retry answers the first answer and makes nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from licensing.models import Customer, License, Partner, PartnerKey, Product
from sqlalchemy import func, select

from shared import idempotency
from shared.db import utc_now
from tests.conftest import TEST_SECRET
from tests.licensing.conftest import ADDRESS, sale
from tests.support import assert_idempotent_creation


def _count(licensing, model, *where):
    def count() -> int:
        with licensing.database.unit_of_work() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where))

    return count


def _staff_send(licensing):
    def send(user, request, key):
        path, body = request
        return licensing.call("POST", path, body, user=user, staff=True, headers={"Idempotency-Key": key})

    return send


def _product(code):
    return {"code": code, "name": f"Produkt {code}", "editions": ["Mini"]}


def _customer(company_id):
    return {"company_id": company_id, "company_name": "Pekárna Hanák s.r.o.", "billing_address": ADDRESS}


def products(licensing):
    path = "/api/v1/admin/products"
    return (path, _product("mzdy")), (path, _product("sklad")), _count(licensing, Product)


def customers(licensing):
    path = "/api/v1/admin/customers"
    return (path, _customer("25083325")), (path, _customer("27082440")), _count(licensing, Customer)


def licenses(licensing):
    number = licensing.customer("45678901")
    body = {"customer_number": number, "product": "ucetnictvi", "edition": "Jazz"}
    path = "/api/v1/admin/licenses"
    return (path, body), (path, {**body, "edition": "Mini"}), _count(licensing, License)


def partners(licensing):
    path = "/api/v1/admin/partners"
    return (path, {"name": "Partner Jih"}), (path, {"name": "Partner Sever"}), _count(licensing, Partner)


def partner_keys(licensing):
    ids = []
    for name in ("Partner Jih", "Partner Sever"):
        answer = licensing.staff("POST", "/api/v1/admin/partners", {"name": name})
        ids.append(answer.get_json()["partner_id"])
    requests = [(f"/api/v1/admin/partners/{partner_id}/keys", None) for partner_id in ids]
    return requests[0], requests[1], _count(licensing, PartnerKey)


STAFF_CASES = [products, customers, licenses, partners, partner_keys]


@pytest.mark.parametrize("case", STAFF_CASES, ids=lambda case: case.__name__)
def test_staff_creations_with_an_idempotency_key_are_made_once(licensing, case):
    request, other_request, count = case(licensing)
    figures = assert_idempotent_creation(_staff_send(licensing), count, request, other_request, "staff-1", "staff-2")
    print(f"\nidempotent [{case.__name__}]: {figures}")


def test_product_registration_with_an_idempotency_key_is_made_once(licensing):
    api_key = licensing.partner()
    sold = [licensing.sell(api_key, f"s-{n}", sale(f"S-{n}")).get_json() for n in (1, 2)]
    number = sold[0]["customer_number"]
    licensing.member("u-1", number)
    licensing.member("u-2", number)
    path = f"/api/v1/customers/{number}/product-registrations"

    def send(user, request, key):
        return licensing.call("POST", request[0], request[1], user=user, headers={"Idempotency-Key": key})

    requests = [(path, {"installation_number": s["installation_number"]}) for s in sold]
    registered = _count(licensing, License, License.status == "registered")
    assert_idempotent_creation(send, registered, requests[0], requests[1], "u-1", "u-2")


def test_without_a_key_a_second_customer_creation_is_refused_and_with_it_answered_like_the_first(licensing):
    body = _customer("25083325")
    first = licensing.staff("POST", "/api/v1/admin/customers", body, headers={"Idempotency-Key": "c-1"})
    assert first.status_code == 201
    assert licensing.staff("POST", "/api/v1/admin/customers", body).status_code == 409  # as before
    again = licensing.staff("POST", "/api/v1/admin/customers", body, headers={"Idempotency-Key": "c-1"})
    assert again.status_code == 201 and again.get_json() == first.get_json()


@pytest.mark.parametrize("key", ["", " ", "x" * 201, "tab\there", "é-key"])
def test_a_key_that_cannot_be_kept_is_400_and_nothing_is_made(licensing, key):
    count = _count(licensing, Customer)
    answer = licensing.staff("POST", "/api/v1/admin/customers", _customer("25083325"), headers={"Idempotency-Key": key})
    assert answer.status_code == 400 and answer.mimetype == "application/problem+json"
    assert answer.get_json()["type"].endswith(":idempotency-key-invalid")
    assert count() == 0


def test_a_refused_request_leaves_the_key_free(licensing):
    body = {"customer_number": "999999", "product": "ucetnictvi", "edition": "Jazz"}
    headers = {"Idempotency-Key": "l-1"}
    refused = licensing.staff("POST", "/api/v1/admin/licenses", body, headers=headers)
    assert refused.status_code == 422  # no such customer
    number = licensing.customer("45678901")
    made = licensing.staff("POST", "/api/v1/admin/licenses", {**body, "customer_number": number}, headers=headers)
    assert made.status_code == 201 and made.headers.get("Idempotent-Replayed") is None
    assert _count(licensing, License)() == 1


def test_failed_registrations_with_fresh_keys_are_still_throttled(licensing, monkeypatch):
    """A failure gives the key back but keeps the throttle's count: new keys buy no guesses."""
    from licensing import api, installation_numbers

    from shared.throttle import Limit

    monkeypatch.setattr(api, "REGISTRATION_PER_CLIENT", Limit(3, 900))
    mine = licensing.customer("25083325")
    licensing.member("u-1", mine)
    statuses = [
        licensing.call(
            "POST",
            f"/api/v1/customers/{mine}/product-registrations",
            {"installation_number": installation_numbers.new()},
            user="u-1",
            headers={"Idempotency-Key": f"guess-{n}"},
        ).status_code
        for n in range(4)
    ]
    assert statuses == [422, 422, 422, 429]


def test_ten_concurrent_requests_with_one_key_make_one_license(licensing):
    number = licensing.customer("45678901")
    body = {"customer_number": number, "product": "ucetnictvi", "edition": "Jazz"}
    answers, barrier = [], threading.Barrier(10)

    def post():
        client = licensing.app.test_client()
        from shared import auth
        from shared.auth import Principal
        from tests.conftest import TEST_SECRET

        token = auth.issue(TEST_SECRET, "licensing", Principal("staff-1", staff=True))
        barrier.wait()
        answers.append(
            client.post("/api/v1/admin/licenses", json=body, headers={auth.HEADER: token, "Idempotency-Key": "one-key"})
        )

    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [a.status_code for a in answers] == [201] * 10
    assert len({a.get_data() for a in answers}) == 1
    replayed = sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers)
    assert replayed == 9
    assert _count(licensing, License)() == 1
    assert len(licensing.events("licensing.license.issued")) == 1
    print(f"\nconcurrent [one key, 10 requests]: licenses=1 replayed={replayed}")


def _age_keys(licensing, by: timedelta) -> None:
    with licensing.database.unit_of_work() as session:
        session.execute(
            idempotency.idempotency_keys.update().values(created_at=idempotency.idempotency_keys.c.created_at - by)
        )


def test_after_its_lifetime_a_key_no_longer_replays_and_expired_keys_are_purged(licensing):
    keys = idempotency.idempotency_keys
    for n in range(3):
        body = _product(f"p-{n}")
        made = licensing.staff("POST", "/api/v1/admin/products", body, headers={"Idempotency-Key": f"k-{n}"})
        assert made.status_code == 201
    _age_keys(licensing, idempotency.LIFETIME + timedelta(minutes=1))
    # k-0 again, 24 h later: a new request (the product exists by now: 409, and the key is free)
    again = licensing.staff("POST", "/api/v1/admin/products", _product("p-0"), headers={"Idempotency-Key": "k-0"})
    assert again.status_code == 409 and again.headers.get("Idempotent-Replayed") is None
    with licensing.database.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(keys)) == 0  # every expired row purged
    fresh = licensing.staff("POST", "/api/v1/admin/products", _product("p-9"), headers={"Idempotency-Key": "k-1"})
    assert fresh.status_code == 201 and fresh.get_json()["code"] == "p-9"


def test_the_purge_is_bounded(licensing):
    keys = idempotency.idempotency_keys
    old = utc_now() - idempotency.LIFETIME - timedelta(hours=1)
    rows = [dict(caller="user:x", key=f"k-{n}", fingerprint="0" * 64, status=201, created_at=old) for n in range(250)]
    with licensing.database.engine.begin() as connection:
        connection.execute(keys.insert(), rows)
        assert idempotency.purge(connection) == idempotency.PURGE_BATCH
    with licensing.database.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(keys)) == 250 - idempotency.PURGE_BATCH


def test_a_new_api_key_is_kept_for_replays_only_sealed(licensing):
    """licensing keeps a partner's API keys as SHA-256: the answer kept for a replay (which
    shows the key again) is encrypted with the service's secret, and authenticated."""
    headers = {"Idempotency-Key": "p-1"}
    first = licensing.staff("POST", "/api/v1/admin/partners", {"name": "Partner Jih"}, headers=headers)
    api_key = first.get_json()["api_key"]
    with licensing.database.unit_of_work() as session:
        [stored] = session.execute(select(idempotency.idempotency_keys.c.body)).scalars().all()
    assert api_key.encode() not in stored and b"Partner Jih" not in stored
    assert idempotency.unseal(TEST_SECRET, stored) == first.get_data()
    assert idempotency.unseal("another-secret-" + "y" * 40, stored) is None
    altered = stored[:20] + bytes([stored[20] ^ 1]) + stored[21:]
    assert idempotency.unseal(TEST_SECRET, altered) is None
    again = licensing.staff("POST", "/api/v1/admin/partners", {"name": "Partner Jih"}, headers=headers)
    assert again.get_json()["api_key"] == api_key and again.headers["Idempotent-Replayed"] == "true"
