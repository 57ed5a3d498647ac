"""A revoked right counts on the very next request (product rule 4), with the broker up and
with it stopped: after the administrator's `2xx`, the colleague's reads of licensing and
distribution are refused at once, however far their copies of identity's events lag. Once the
broker is back, every copy converges on identity's state.

The figures are the revocation window: how many of the colleague's reads that started after
the administrator's `2xx` were still answered `200`, and how long after it the last one was.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.fault.world import dead_letters, replica_differences, settle
from tests.support import wait_until

READS_AFTER = 40  # the colleague's reads right after each revocation, one after another
ROUNDS = 5


def _colleague(world, customer, rights):
    email = f"kolega-{customer.number}-{uuid.uuid4().hex[:6]}@example.com"
    added = world.call(
        "POST",
        f"/api/v1/customers/{customer.number}/users",
        headers=customer.admin,
        json={"email": email, "name": "Kolega", "rights": rights},
    )
    assert added.status_code == 201, added.text
    token = world.mailbox.link_token(world.mailbox.wait_for(email, timeout=60), "invitation")
    password = f"passphrase of {email}"
    accepted = world.call("POST", "/api/v1/invitations/accept", json={"token": token, "password": password})
    assert accepted.status_code == 200, accepted.text
    return added.json()["id"], world.sign_in(email, password)


def _rights(world, customer, user_id, rights):
    answer = world.call(
        "PATCH", f"/api/v1/customers/{customer.number}/users/{user_id}", headers=customer.admin, json={"rights": rights}
    )
    assert answer.status_code == 200, answer.text
    return time.monotonic()


def _reads_after(world, colleague, paths, acknowledged_at):
    """The colleague's reads right after the 2xx: (still answered 200, seconds after the 2xx of the last such)."""
    granted, last = 0, 0.0
    for n in range(READS_AFTER):
        path = paths[n % len(paths)]
        answer = world.call("GET", path, headers=colleague)
        assert answer.status_code in (200, 403), f"{path}: {answer.status_code} {answer.text}"
        if answer.status_code == 200:
            granted += 1
            last = time.monotonic() - acknowledged_at
    return granted, last


def _revocation_rounds(world, customer, user_id, colleague):
    paths = [f"/api/v1/customers/{customer.number}/licenses", f"/api/v1/customers/{customer.number}/downloads"]
    figures = []
    for _ in range(ROUNDS):
        _rights(world, customer, user_id, ["licenses", "downloads", "news"])
        wait_until(
            lambda: all(world.call("GET", p, headers=colleague).status_code == 200 for p in paths),
            timeout=30,
            message="the grant in licensing and distribution",
        )
        acknowledged_at = _rights(world, customer, user_id, ["news"])
        figures.append(_reads_after(world, colleague, paths, acknowledged_at))
    return figures


@pytest.mark.fault
def test_a_revoked_right_is_refused_at_once_with_the_broker_up_and_down(suite, world, broker, record_property):
    customer = world.customer_with_administrator("Odebraná práva")
    world.staff_call(
        "POST",
        "/api/v1/admin/licenses",
        json={
            "customer_number": customer.number,
            "product": "ucetnictvi",
            "edition": "Jazz",
            "seats": 1,
            "support_until": "2030-12-31",
        },
        expect=201,
    )
    user_id, colleague = _colleague(world, customer, ["licenses", "downloads", "news"])
    settle(suite)

    up = _revocation_rounds(world, customer, user_id, colleague)
    broker.stop()
    try:
        down = _revocation_rounds(world, customer, user_id, colleague)
    finally:
        broker.start()
    settle(suite)
    facts = {
        "broker_up": {
            "reads_after_revocation": ROUNDS * READS_AFTER,
            "answered_200": sum(g for g, _ in up),
            "last_200_ms_after": round(max(t for _, t in up) * 1000, 1),
        },
        "broker_down": {
            "reads_after_revocation": ROUNDS * READS_AFTER,
            "answered_200": sum(g for g, _ in down),
            "last_200_ms_after": round(max(t for _, t in down) * 1000, 1),
        },
    }
    print(f"revocation window: {facts}")
    record_property("revocation_window", facts)
    assert facts["broker_up"]["answered_200"] == 0, facts
    assert facts["broker_down"]["answered_200"] == 0, facts
    replicas = replica_differences(suite)
    assert replicas["lost"] == 0 and replicas["duplicated"] == 0, replicas
    assert not any(dead_letters(suite).values())
