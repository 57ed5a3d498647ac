"""A partner cannot learn a company's customer number by inventing a sale (security review,
finding 4; api.md, "Changes to first-edition answers"). With the number and the public
company ID anyone could claim the company's unclaimed profile.

A partner's sale answers `customer_number` only when the sale created the customer or the
partner has sold to that customer before: the customer was made by one of its sales, or one
of its earlier sales was answered with the number, or the customer registered one of its
sales. Otherwise `null`, by REST and over RabbitMQ alike, and replays answer as the first
answer did. The sale still lands on the existing customer (unregistered, rule 9); staff see
such sales in their license listing, and every customer says who made it."""

from __future__ import annotations

import json
import secrets

import pika
from licensing.models import IdempotentRequest
from licensing.partner_inbox import PartnerInbox
from licensing.partners import create_partner

from tests.licensing.conftest import licensing, sale  # noqa: F401 (fixture)
from tests.licensing.test_partner_sales import concurrently, either, licensing_on_sqlite  # noqa: F401 (fixtures)
from tests.support import valid_company_id

COMPANY = "27082440"  # the company of `sale()`


def sell(api, key: str, body: dict) -> dict:
    answer = api.sell(key, secrets.token_hex(8), body)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def staff_licenses(api, **query) -> list[dict]:
    answer = api.staff("GET", "/api/v1/admin/licenses?" + "&".join(f"{k}={v}" for k, v in query.items()))
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["items"]


def test_an_invented_sale_to_an_existing_customer_does_not_tell_its_number(licensing):  # noqa: F811
    number = licensing.customer(COMPANY)
    key = licensing.partner()

    first = licensing.sell(key, "k-1", sale("INVENTED-1"))
    assert first.status_code == 201 and first.get_json()["customer_number"] is None
    assert first.get_json()["status"] == "unregistered"
    assert licensing.sell(key, "k-1", sale("INVENTED-1")).get_json() == first.get_json()  # a replay
    assert sell(licensing, key, sale("INVENTED-1")) == first.get_json()  # the same sale under another key
    # A second invented sale is no sale "before": still nothing to learn.
    assert sell(licensing, key, sale("INVENTED-2"))["customer_number"] is None

    # Both landed on the existing customer, and staff see them for what they are.
    held = staff_licenses(licensing, customer_number=number)
    assert [item["matched_existing_customer"] for item in held] == [True, True]
    assert held[0]["installation_number"] == first.get_json()["installation_number"]


def test_the_partner_whose_sale_made_the_customer_is_told_its_number(licensing):  # noqa: F811
    key = licensing.partner()
    first = sell(licensing, key, sale("NEW-1"))
    assert first["customer_number"] is not None
    assert sell(licensing, key, sale("NEW-2"))["customer_number"] == first["customer_number"]
    customer = licensing.staff("GET", f"/api/v1/admin/customers/{first['customer_number']}").get_json()
    partner_id = licensing.staff("GET", "/api/v1/admin/partners").get_json()["items"][0]["partner_id"]
    assert customer["created_by"] == "partner" and customer["created_by_partner_id"] == partner_id
    assert staff_licenses(licensing, matched_existing_customer="true") == []

    # Another partner selling to that company learns nothing.
    other = licensing.partner("Jiný prodejce s.r.o.")
    assert sell(licensing, other, sale("OTHER-1"))["customer_number"] is None


def test_a_partner_whose_sale_the_customer_registered_has_sold_to_it(licensing):  # noqa: F811
    number = licensing.customer(COMPANY)
    key = licensing.partner()
    first = sell(licensing, key, sale("REAL-1"))
    assert first["customer_number"] is None
    licensing.member("u-1", number)
    registered = licensing.call(
        "POST",
        f"/api/v1/customers/{number}/product-registrations",
        {"installation_number": first["installation_number"]},
        user="u-1",
    )
    assert registered.status_code == 201, registered.get_json()
    assert sell(licensing, key, sale("REAL-2"))["customer_number"] == number
    assert sell(licensing, key, sale("REAL-1"))["customer_number"] is None  # REAL-1 answers as it did


def test_staff_list_the_sales_that_matched_an_existing_customer(licensing):  # noqa: F811
    number = licensing.customer(COMPANY)
    assert licensing.staff("GET", f"/api/v1/admin/customers/{number}").get_json()["created_by"] == "staff"
    key = licensing.partner()
    invented = sell(licensing, key, sale("INVENTED-1"))
    sell(licensing, key, sale("NEW-1", company_id=valid_company_id(3330001)))

    [listed] = staff_licenses(licensing, matched_existing_customer="true")
    assert listed["installation_number"] == invented["installation_number"]
    assert listed["customer_number"] == number and listed["partner_sale_id"] == "INVENTED-1"
    assert listed["matched_existing_customer"] is True and listed["partner_id"]
    assert len(staff_licenses(licensing, partner_id=listed["partner_id"])) == 2
    assert len(staff_licenses(licensing)) == 2  # every license, paged
    assert licensing.staff("GET", "/api/v1/admin/licenses?matched_existing_customer=maybe").status_code == 422


def test_the_broker_channel_tells_no_more_than_the_api(licensing):  # noqa: F811
    number = licensing.customer(COMPANY)
    with licensing.database.unit_of_work() as session:
        partner, _key = create_partner(session, "Kanálový prodejce s.r.o.", "partner-channel")
        partner_id = partner.id
    inbox = PartnerInbox(licensing.app.extensions["settings"], licensing.database)
    properties = pika.BasicProperties(user_id="partner-channel", message_id="m-1")
    with licensing.database.unit_of_work() as session:
        assert inbox.record(session, properties, json.dumps(sale("AMQP-1")).encode()) is None
    with licensing.database.unit_of_work() as session:
        row = session.get(IdempotentRequest, (partner_id, "amqp", "m-1"))
        answer = json.loads(row.response)
    assert answer["customer_number"] is None
    [held] = staff_licenses(licensing, customer_number=number)
    assert held["matched_existing_customer"] is True and held["installation_number"] == answer["installation_number"]


def test_sales_racing_to_make_a_customer_all_tell_its_partner_the_number(either):  # noqa: F811
    key = either.partner()
    company = valid_company_id(3330002)
    answers = concurrently(
        8,
        lambda n: either.app.test_client().post(
            "/api/v1/partner/sales",
            json=sale(f"RACE-{n}", company_id=company),
            headers={"Authorization": f"Bearer {key}", "Idempotency-Key": f"race-{n}"},
        ),
    )
    assert {a.status_code for a in answers} == {201}
    numbers = {a.get_json()["customer_number"] for a in answers}
    assert len(numbers) == 1 and None not in numbers
    assert len(either.events("licensing.customer.created")) == 1
