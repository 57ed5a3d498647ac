"""A partner's sale is one transaction: the API key, the Idempotency-Key's claim, the license,
its event and the answer kept for replays. The idempotency semantics of api.md hold on both
databases the services run on (PostgreSQL, SQLite), also when requests race."""

from __future__ import annotations

import threading

import pytest
from licensing import installation_numbers
from licensing.app import create_app
from sqlalchemy import event

from shared import migrations
from tests.licensing.conftest import PRODUCT, LicensingApi, sale


@pytest.fixture
def licensing_on_sqlite(settings_for):
    settings = settings_for("licensing")  # a SQLite file of the test's own
    migrations.upgrade("licensing", settings.database_url)
    api = LicensingApi(create_app(settings))
    assert api.staff("POST", "/api/v1/admin/products", PRODUCT).status_code == 201
    yield api
    api.database.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def either(request):
    return request.getfixturevalue("licensing" if request.param == "postgresql" else "licensing_on_sqlite")


def concurrently(count: int, action) -> list:
    answers, start = [], threading.Barrier(count)

    def run(n):
        start.wait()
        answers.append(action(n))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_idempotency_key_semantics_on_both_databases(either):
    key = either.partner()
    first = either.sell(key, "key-1", sale())
    assert first.status_code == 201
    again = either.sell(key, "key-1", sale())
    assert again.status_code == 201 and again.get_json() == first.get_json()
    other_body = either.sell(key, "key-1", sale(seats=9))
    assert other_body.status_code == 422 and other_body.get_json()["type"].endswith("idempotency-key-reused")
    assert either.sell(key, "key-2", sale()).get_json() == first.get_json()  # the same sale under another key
    unknown_product = either.sell(key, "key-3", sale("S-2", product="nic"))
    assert unknown_product.status_code == 422
    # a refused sale keeps nothing, its key included: corrected, it goes through
    assert either.sell(key, "key-3", sale("S-2")).status_code == 201
    assert len(either.events("licensing.license.issued")) == 2


def test_one_sale_racing_under_many_keys_is_one_license(either):
    key = either.partner()
    customer_number = either.customer("27082440")

    answers = concurrently(
        12,
        lambda n: either.app.test_client().post(
            "/api/v1/partner/sales",
            json=sale("S-race"),
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": f"k{n}"},
        ),
    )

    assert {a.status_code for a in answers} == {201}
    assert len({a.get_data() for a in answers}) == 1
    # staff made the customer and the partner never sold to it: not told its number (api.md)
    assert answers[0].get_json()["customer_number"] is None
    assert len(either.events("licensing.license.issued")) == 1
    [held] = either.staff("GET", f"/api/v1/admin/licenses?customer_number={customer_number}").get_json()["items"]
    assert held["matched_existing_customer"] is True


def test_a_taken_installation_number_is_drawn_again(licensing, monkeypatch):
    key = licensing.partner()
    taken = licensing.sell(key, "key-1", sale("S-1")).get_json()["installation_number"]
    fresh = installation_numbers.new()
    draws = iter([taken, fresh])
    monkeypatch.setattr(installation_numbers, "new", lambda: next(draws))

    answer = licensing.sell(key, "key-2", sale("S-2"))

    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["installation_number"] == fresh
    assert len(licensing.events("licensing.license.issued")) == 2


def test_a_sale_is_one_transaction_without_savepoints(licensing):
    key = licensing.partner()
    licensing.customer("27082440")
    licensing.sell(key, "key-0", sale("S-0"))  # the partner's first sale, whatever it warms up
    statements, commits = [], []
    event.listen(licensing.database.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    event.listen(licensing.database.engine, "commit", lambda connection: commits.append(connection))

    assert licensing.sell(key, "key-1", sale("S-1")).status_code == 201

    assert len(commits) == 1
    assert not [s for s in statements if "SAVEPOINT" in s.upper()]
