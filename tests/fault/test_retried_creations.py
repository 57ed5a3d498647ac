"""Staff's creations that the gateway gave up on, retried with the same Idempotency-Key (api.md
"Retries (every write)", issue 22).

Licensing is made slow for real: a direct connection to its database holds `LOCK TABLE outbox
IN EXCLUSIVE MODE` for longer than the gateway's UPSTREAM_TIMEOUT (10 s in this suite), so
licensing's transaction for a new license (or customer) waits at its event's insert. The
gateway answers `504` problem+json (the outcome is unknown), then the lock is let go and
licensing commits what it was asked. The staff client retries with the same key and body: the
answer is a `201` like a first one (the license's installation number, the customer's number),
replayed, and exactly one license or customer exists. Without the key the same retry would have
made a second license (or been refused: the customer exists).

Run with `-s` for the figures (`retried [...]: ...`).
"""

from __future__ import annotations

import contextlib
import time
import uuid

import psycopg
import pytest
import requests
from sqlalchemy.engine import make_url

from tests.fault.world import ADDRESS, PRODUCT, TIMEOUT, database_url
from tests.support import read_only_database

HOLD = 12.0  # seconds the outbox stays locked: past the gateway's 10 s


@contextlib.contextmanager
def outbox_locked(suite):
    """licensing's outbox locked against every insert until the block ends (then committed)."""
    url = make_url(database_url(suite, "licensing")).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as db:
        db.execute("LOCK TABLE outbox IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            db.rollback()  # nothing was written: letting go is all it does


def post_while_licensing_hangs(world, path: str, body: dict, key: str) -> tuple[requests.Response, float]:
    """The POST sent while the outbox is locked; the lock held HOLD seconds from the sending."""
    headers = {**world.staff, "Idempotency-Key": key}
    with outbox_locked(world.suite):
        started = time.monotonic()
        answer = requests.post(f"{world.gateway}{path}", json=body, headers=headers, timeout=TIMEOUT + 15)
        took = time.monotonic() - started
        time.sleep(max(0.0, HOLD - (time.monotonic() - started)))
    return answer, took


def assert_timed_out(answer: requests.Response, took: float) -> None:
    assert answer.status_code == 504, f"{answer.status_code} {answer.text}"
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert int(answer.headers["Retry-After"]) > 0
    problem = answer.json()
    assert problem["type"].endswith(":upstream-timeout") and problem["status"] == 504
    assert problem["service"] == "licensing"
    assert "unknown" in problem["detail"] and "same Idempotency-Key" in problem["detail"]
    assert 9.0 < took < HOLD, took  # the gateway's timeout, before licensing could answer


def licensing_rows(suite, query: str, *params) -> list[tuple]:
    with read_only_database(database_url(suite, "licensing")) as db:
        return db.execute(query, params).fetchall()


@pytest.mark.fault
def test_a_license_the_gateway_gave_up_on_is_made_once_when_retried(suite, world, record_property):
    company_id, name = world.new_company("Opakovaná licence")
    customer = world.staff_call(
        "POST",
        "/api/v1/admin/customers",
        json={"company_id": company_id, "company_name": name, "billing_address": ADDRESS},
        expect=201,
    )
    number = customer["customer_number"]
    body = {"customer_number": number, "product": PRODUCT["code"], "edition": "Profi", "seats": 2}
    key = str(uuid.uuid4())

    first, took = post_while_licensing_hangs(world, "/api/v1/admin/licenses", body, key)
    assert_timed_out(first, took)
    retry = world.call("POST", "/api/v1/admin/licenses", headers={**world.staff, "Idempotency-Key": key}, json=body)
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("Idempotent-Replayed") == "true"  # licensing had made it: the first answer
    license_ = retry.json()
    assert (license_["customer_number"], license_["edition"], license_["seats"]) == (number, "Profi", 2)

    listed = world.staff_call("GET", f"/api/v1/admin/licenses?customer_number={number}")["items"]
    assert [item["installation_number"] for item in listed] == [license_["installation_number"]]
    shown = {name: value for name, value in listed[0].items() if name in license_}
    assert shown == license_  # the replay is what licensing answers about that license
    announced = licensing_rows(
        suite,
        "SELECT count(*) FROM outbox WHERE routing_key = 'licensing.license.issued' AND body LIKE %s",
        f"%{license_['installation_number']}%",
    )[0][0]
    assert announced == 1

    again = world.call("POST", "/api/v1/admin/licenses", headers={**world.staff, "Idempotency-Key": key}, json=body)
    assert again.status_code == 201 and again.json() == license_
    other = world.call(
        "POST", "/api/v1/admin/licenses", headers={**world.staff, "Idempotency-Key": key}, json={**body, "seats": 3}
    )
    assert other.status_code == 422 and other.json()["type"].endswith(":idempotency-key-reused")
    licenses = len(world.staff_call("GET", f"/api/v1/admin/licenses?customer_number={number}")["items"])
    assert licenses == 1
    figures = {
        "gateway": first.status_code,
        "gave_up_after_s": round(took, 1),
        "retry": retry.status_code,
        "replayed": retry.headers.get("Idempotent-Replayed"),
        "created": licenses,
        "announced": announced,
    }
    print(f"\nretried [admin license]: {figures}")
    record_property("retried_admin_license", figures)


@pytest.mark.fault
def test_a_customer_the_gateway_gave_up_on_is_answered_like_the_first_when_retried(suite, world, record_property):
    company_id, name = world.new_company("Opakovaný zákazník")
    body = {"company_id": company_id, "company_name": name, "billing_address": ADDRESS}
    key = str(uuid.uuid4())

    first, took = post_while_licensing_hangs(world, "/api/v1/admin/customers", body, key)
    assert_timed_out(first, took)
    without_key = world.call("POST", "/api/v1/admin/customers", headers=world.staff, json=body)
    assert without_key.status_code == 409  # licensing made it: a retry without the key is refused
    retry = world.call("POST", "/api/v1/admin/customers", headers={**world.staff, "Idempotency-Key": key}, json=body)
    assert retry.status_code == 201, retry.text
    assert retry.headers.get("Idempotent-Replayed") == "true"
    customer = retry.json()
    assert customer["customer_number"] == without_key.json()["customer_number"]
    assert world.staff_call("GET", f"/api/v1/admin/customers/{customer['customer_number']}") == customer

    made = licensing_rows(suite, "SELECT customer_number FROM customers WHERE company_id = %s", company_id)
    assert made == [(customer["customer_number"],)]
    announced = licensing_rows(
        suite,
        "SELECT count(*) FROM outbox WHERE routing_key = 'licensing.customer.created' AND body LIKE %s",
        f"%{company_id}%",
    )[0][0]
    assert announced == 1
    figures = {
        "gateway": first.status_code,
        "gave_up_after_s": round(took, 1),
        "retry_without_key": without_key.status_code,
        "retry": retry.status_code,
        "replayed": retry.headers.get("Idempotent-Replayed"),
        "created": len(made),
        "announced": announced,
    }
    print(f"\nretried [admin customer]: {figures}")
    record_property("retried_admin_customer", figures)
