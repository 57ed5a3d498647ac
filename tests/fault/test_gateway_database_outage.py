"""The gateway's own database unreachable for a while (its connection cut at a TCP proxy: open
connections dropped, new ones refused). The gateway keeps only sessions there, so what needs
no session must not notice: partner sales (a partner API key is licensing's to check, never a
session of ours) are acknowledged and applied, the desktop program's update check answers, an
anonymous visitor sees the portal's home, sign-in and registration pages, and none of them even tries the database. A
signed-in caller gets a quick `503` problem+json with Retry-After (never a 500 or a hang); once
the database is back the same gateway processes serve everyone again."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fault.world import (
    Reconciliation,
    SalesStream,
    all_running,
    dead_letters,
    reconcile_sales,
    replica_differences,
    settle,
)
from tests.support import wait_until

MINIMUM_OUTAGE = 5.0  # seconds of sales through the outage
SIGNED_IN_ANSWER_WITHIN = 5.0  # seconds: a 503 at once, not a hang until some timeout


def assert_unavailable(answer) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.json()["status"] == 503


def update_check(world, installation_number: str):
    return world.call("GET", f"/api/v1/updates?installation_number={installation_number}&version=0.1")


@pytest.mark.fault
def test_gateway_database_unreachable_for_a_while(suite, world, record_property, tmp_path):
    link = suite.gateway_link
    customer = world.customer_with_administrator("Výpadek brány")
    companies = [world.new_company("Výpadek brány prodej") for _ in range(2)]
    pid = suite.processes["gateway"].popen.pid
    fault = threading.Event()
    sales = SalesStream(world, companies, fault, pause=0.1)
    facts: dict[str, object] = {}
    sales.start()
    try:
        wait_until(lambda: len(sales.acknowledged) >= 3, timeout=60, message="sales before the outage")
        installation = sales.acknowledged[0].answer["installation_number"]
        wait_until(  # a 404 until distribution has the sale's entitlement
            lambda: update_check(world, installation).status_code == 200,
            timeout=60,
            interval=0.5,
            message="the first sale's entitlement in distribution",
        )
        acknowledged_before = len(sales.acknowledged)

        link.cut()
        fault.set()
        cut_at, refused_at_cut = time.monotonic(), link.refused
        try:
            wait_until(
                lambda: len(sales.acknowledged) >= acknowledged_before + 10,
                timeout=60,
                message="partner sales acknowledged while the gateway's database is away",
            )
            checked = update_check(world, installation)
            assert checked.status_code == 200, checked.text
            assert "update_available" in checked.json()
            for path in ("/", "/sign-in", "/register"):  # the portal's pages for anonymous visitors
                shown = world.call("GET", path, headers={"Accept": "text/html"})
                assert shown.status_code == 200, f"{path}: {shown.status_code} {shown.text[:500]}"
            remaining = MINIMUM_OUTAGE - (time.monotonic() - cut_at)
            if remaining > 0:
                time.sleep(remaining)
            # Nothing of the above asked the gateway's database (the proxy would have refused it).
            facts["gateway_database_attempts_without_a_session"] = link.refused - refused_at_cut
            assert facts["gateway_database_attempts_without_a_session"] == 0

            # A signed-in caller needs the session store: a quick 503, for the API and the portal.
            started = time.monotonic()
            me = world.call("GET", "/api/v1/me", customer.admin)
            facts["signed_in_answer_seconds"] = round(time.monotonic() - started, 2)
            assert_unavailable(me)
            assert facts["signed_in_answer_seconds"] < SIGNED_IN_ANSWER_WITHIN
            session_token = customer.admin["Authorization"].removeprefix("Bearer ")
            page = world.call("GET", "/", headers={"Accept": "text/html", "Cookie": f"cc_session={session_token}"})
            assert page.status_code == 503, page.text
            assert page.headers["Content-Type"].startswith("text/html")
            assert link.refused > refused_at_cut, "the signed-in calls did ask the database"
            facts["sales_acknowledged_during_outage"] = sum(s.during_fault for s in sales.acknowledged)
        finally:
            fault.clear()
            link.restore()
        facts["outage_seconds"] = round(time.monotonic() - cut_at, 1)

        # The same gateway processes serve signed-in callers again, by themselves.
        wait_until(
            lambda: world.call("GET", "/api/v1/me", customer.admin).status_code == 200,
            timeout=30,
            message="signed-in calls answered again once the database is back",
        )
        assert world.call("GET", f"/api/v1/customers/{customer.number}/profile", customer.admin).status_code == 200
        assert update_check(world, installation).status_code == 200
        acknowledged_after_restore = len(sales.acknowledged)
        wait_until(
            lambda: len(sales.acknowledged) >= acknowledged_after_restore + 3,
            timeout=60,
            message="sales acknowledged after the outage",
        )
    finally:
        sales.finish()
    assert sales.errors == [], sales.errors
    assert sales.failures == {}, f"partner sales failed during the gateway's outage: {sales.failures}"

    # Every sale acknowledged, during the outage too, is one license and one entitlement.
    settle(suite)
    result = Reconciliation("gateway database unreachable")
    result.parts["partner sales"] = reconcile_sales(world, sales.sales)
    result.parts["replicas vs their sources"] = replica_differences(suite)
    facts["dead_letters"] = dead_letters(suite)
    facts["database_connections_through_the_proxy"] = link.connections
    result.facts.update(facts)
    result.publish(record_property, tmp_path)
    assert facts["sales_acknowledged_during_outage"] >= 10
    assert result.lost == 0, result.parts
    assert result.duplicated == 0, result.parts
    assert not any(facts["dead_letters"].values()), facts["dead_letters"]
    assert all(all_running(suite).values()), all_running(suite)
    assert suite.processes["gateway"].popen.pid == pid, "the gateway was not restarted"
