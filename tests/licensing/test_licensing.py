"""Rules 8-9: the catalogue, direct and partner sales, product registration, license lists."""

from __future__ import annotations

import threading

from licensing import installation_numbers

from shared.topology import Topology
from tests.broker_users import broker_users  # noqa: F401 (fixture)
from tests.licensing.conftest import PRODUCT, sale


def direct_license(licensing, number, **changes):
    body = {
        "customer_number": number,
        "product": "ucetnictvi",
        "edition": "Standard",
        "add_ons": ["síťová verze"],
        "seats": 5,
        "support_until": "2027-12-31",
        **changes,
    }
    answer = licensing.staff("POST", "/api/v1/admin/licenses", body)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_the_catalogue_is_kept_by_staff(licensing):
    assert licensing.staff("POST", "/api/v1/admin/products", PRODUCT).status_code == 409
    assert licensing.call("POST", "/api/v1/admin/products", PRODUCT, user="customer-user").status_code == 403
    [product] = licensing.staff("GET", "/api/v1/admin/products").get_json()["items"]
    assert product["editions"][1] == "Jazz" and "kasa" in product["add_ons"]


def test_a_direct_sale_is_registered_at_once_and_announced(licensing):
    number = licensing.customer("25083325")
    issued = direct_license(licensing, number)
    assert (
        issued["status"] == "registered" and issued["channel"] == "direct" and issued["support_until"] == "2027-12-31"
    )
    installation_numbers.normalise(issued["installation_number"])  # well-formed, check character right
    [event] = licensing.events("licensing.license.issued")
    assert event["installation_number"] == issued["installation_number"] and event["customer_number"] == number
    bad = licensing.staff(
        "POST", "/api/v1/admin/licenses", {"customer_number": number, "product": "ucetnictvi", "edition": "Gold"}
    )
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "product"


def test_installation_numbers_are_unique_and_hard_to_guess(licensing):
    number = licensing.customer("25083325")
    numbers = {direct_license(licensing, number)["installation_number"] for _ in range(30)}
    assert len(numbers) == 30
    assert all(len(n) == 20 and n.count("-") == 2 for n in numbers)
    assert not set("".join(numbers)) & set("01ILOU")


def test_a_partner_sale_makes_an_unregistered_license_and_a_new_customer(licensing):
    key = licensing.partner()
    answer = licensing.sell(key, "key-1", sale())
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["status"] == "unregistered" and body["customer_number"]
    assert licensing.events("licensing.customer.created")[-1]["company_id"] == "27082440"
    staff_view = licensing.staff("GET", f"/api/v1/admin/licenses?customer_number={body['customer_number']}").get_json()
    assert staff_view["items"][0]["partner"] == "Softwarový dům s.r.o."


def test_idempotency_key_semantics(licensing):
    key = licensing.partner()
    first = licensing.sell(key, "key-1", sale())
    again = licensing.sell(key, "key-1", sale())
    assert again.status_code == 201 and again.get_json() == first.get_json()
    other_body = licensing.sell(key, "key-1", sale(seats=9))
    assert other_body.status_code == 422 and other_body.get_json()["type"].endswith("idempotency-key-reused")
    assert len(licensing.events("licensing.license.issued")) == 1
    no_key = licensing.client.post("/api/v1/partner/sales", json=sale(), headers={"Authorization": f"Bearer {key}"})
    assert no_key.status_code == 400
    bad_key = licensing.sell("cc_0000000000000000_nope", "key-2", sale())
    assert bad_key.status_code == 401
    # the same sale under another key is still one license
    assert licensing.sell(key, "key-3", sale()).get_json() == first.get_json()


def test_a_revoked_partner_key_stops_working(licensing):
    created = licensing.staff("POST", "/api/v1/admin/partners", {"name": "Dealer"}).get_json()
    assert licensing.staff("DELETE", f"/api/v1/admin/partners/{created['partner_id']}/keys").status_code == 204
    assert licensing.sell(created["api_key"], "k", sale()).status_code == 401


def test_fifty_concurrent_sales_with_one_key_make_one_license(licensing):
    key = licensing.partner()
    answers, start = [], threading.Barrier(50)

    def sell():
        client = licensing.app.test_client()
        start.wait()
        answers.append(
            client.post(
                "/api/v1/partner/sales",
                json=sale(),
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "same"},
            )
        )

    threads = [threading.Thread(target=sell) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} == {201}
    assert len({a.get_data() for a in answers}) == 1
    assert len(licensing.events("licensing.license.issued")) == 1


def test_product_registration_makes_a_partner_sale_the_customers(licensing):
    key = licensing.partner()
    sold = licensing.sell(key, "k1", sale()).get_json()
    number, installation = sold["customer_number"], sold["installation_number"]
    licensing.member("u-1", number)
    path = f"/api/v1/customers/{number}/licenses"
    assert licensing.call("GET", path, user="u-1").get_json()["items"] == []  # not listed before registration
    typed = installation.lower().replace("-", " ")
    registered = licensing.call(
        "POST", f"/api/v1/customers/{number}/product-registrations", {"installation_number": typed}, user="u-1"
    )
    assert registered.status_code == 201, registered.get_json()
    assert registered.get_json()["status"] == "registered" and registered.get_json()["support_status"] == "active"
    [listed] = licensing.call("GET", path, user="u-1").get_json()["items"]
    assert listed["installation_number"] == installation and listed["channel"] == "partner"
    again = licensing.call(
        "POST", f"/api/v1/customers/{number}/product-registrations", {"installation_number": installation}, user="u-1"
    )
    assert again.status_code == 409
    assert licensing.events("licensing.license.registered")[-1]["status"] == "registered"


def test_a_typo_is_caught_before_any_lookup_and_foreign_numbers_get_one_answer(licensing):
    key = licensing.partner()
    theirs = licensing.sell(key, "k1", sale()).get_json()
    mine = licensing.customer("25083325")
    licensing.member("u-1", mine)

    def register(typed):
        return licensing.call(
            "POST", f"/api/v1/customers/{mine}/product-registrations", {"installation_number": typed}, user="u-1"
        )

    chars = theirs["installation_number"].replace("-", "")
    typo = chars[:-2] + ("A" if chars[-2] != "A" else "B") + chars[-1]
    assert register(typo).get_json()["errors"][0]["field"] == "installation_number"
    foreign = register(theirs["installation_number"])
    unknown = register(installation_numbers.new())
    assert foreign.status_code == unknown.status_code == 422
    assert foreign.get_json() == unknown.get_json() and foreign.get_json()["type"].endswith("registration-refused")


def test_unknown_installation_numbers_are_throttled(licensing, monkeypatch):
    from licensing import api

    from shared.throttle import Limit

    monkeypatch.setattr(api, "REGISTRATION_PER_CLIENT", Limit(3, 900))
    mine = licensing.customer("25083325")
    licensing.member("u-1", mine)
    for _ in range(3):
        licensing.call(
            "POST",
            f"/api/v1/customers/{mine}/product-registrations",
            {"installation_number": installation_numbers.new()},
            user="u-1",
        )
    throttled = licensing.call(
        "POST",
        f"/api/v1/customers/{mine}/product-registrations",
        {"installation_number": installation_numbers.new()},
        user="u-1",
    )
    assert throttled.status_code == 429 and throttled.headers["Retry-After"]


def test_license_list_rights_idor_sorting_paging_and_csv(licensing):
    mine, theirs = licensing.customer("25083325"), licensing.customer("27082440", "Jiná a.s.")
    for until in ("2028-01-01", "2026-12-10", None):
        direct_license(licensing, mine, support_until=until)
    direct_license(licensing, theirs)
    licensing.member("u-1", mine)
    licensing.member("u-2", mine, rights=("downloads",))
    path = f"/api/v1/customers/{mine}/licenses"
    assert licensing.call("GET", f"/api/v1/customers/{theirs}/licenses", user="u-1").status_code == 404
    assert licensing.call("GET", path, user="u-2").status_code == 403
    assert licensing.call("GET", path).status_code == 401
    by_support = licensing.call("GET", f"{path}?sort=support_until", user="u-1").get_json()["items"]
    assert [i["support_until"] for i in by_support] == ["2026-12-10", "2028-01-01", None]
    assert [i["support_status"] for i in by_support] == ["expiring", "active", "none"]
    page = licensing.call("GET", f"{path}?limit=2", user="u-1").get_json()
    rest = licensing.call("GET", f"{path}?limit=2&cursor={page['next']}", user="u-1").get_json()
    assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next"] is None
    csv = licensing.call("GET", f"/api/v1/customers/{mine}/licenses.csv", user="u-1")
    assert csv.mimetype == "text/csv" and csv.get_data(as_text=True).count("\n") == 4
    assert "Účetní systém" in csv.get_data(as_text=True)
    # a revoked right works at once
    licensing.member("u-1", mine, rights=())
    assert licensing.call("GET", path, user="u-1").status_code == 403


def test_staff_extend_and_revoke_support(licensing):
    mine = licensing.customer("25083325")
    number = direct_license(licensing, mine)["installation_number"]
    extended = licensing.staff("PATCH", f"/api/v1/admin/licenses/{number}", {"support_until": "2029-06-30"})
    assert extended.get_json()["support_until"] == "2029-06-30"
    revoked = licensing.staff("PATCH", f"/api/v1/admin/licenses/{number}", {"status": "revoked"})
    assert revoked.get_json()["status"] == "revoked"
    assert [e["version"] for e in licensing.events("licensing.license.support_changed")] == [2]
    assert licensing.events("licensing.license.revoked")[-1]["version"] == 3


def test_staff_list_partners_without_their_keys(licensing, broker_users):  # noqa: F811
    topology = Topology(licensing.app.extensions["settings"].events_namespace)
    dealer = broker_users.make(topology)  # a real broker user: licensing asks the broker about it
    licensing.staff("POST", "/api/v1/admin/partners", {"name": "Dealer", "broker_user": dealer.name})
    [partner] = licensing.staff("GET", "/api/v1/admin/partners").get_json()["items"]
    assert partner["name"] == "Dealer" and partner["broker_user"] == dealer.name and "api_key" not in partner


def test_staff_correct_a_customer_and_others_hear_of_it(licensing):
    number = licensing.customer("25083325")
    changed = licensing.staff("PATCH", f"/api/v1/admin/customers/{number}", {"company_name": "Novák a syn s.r.o."})
    assert changed.status_code == 200 and changed.get_json()["company_name"] == "Novák a syn s.r.o."
    assert licensing.events("licensing.customer.updated")[-1]["company_name"] == "Novák a syn s.r.o."
    assert licensing.staff("PATCH", "/api/v1/admin/customers/999999", {"company_name": "X"}).status_code == 404


def test_contacts_changed_by_the_customer_reach_invoicing_newest_first(licensing):
    import json

    from licensing.handlers import HANDLERS

    from shared.consumer import EventConsumer
    from shared.events import new_envelope

    number = licensing.customer("25083325")
    consumer = EventConsumer(licensing.app.extensions["settings"], HANDLERS, licensing.database)

    def contacts(version, street):
        data = {
            "customer_number": number,
            "company_name": "Účetnictví Novák s.r.o.",
            "billing_address": {"street": street, "city": "Praha", "postal_code": "11000", "country": "CZ"},
            "delivery_address": None,
            "delivery_method": "download",
            "version": version,
        }
        return json.dumps(new_envelope("identity.customer.contact_changed", data, "identity", None)).encode()

    consumer.apply(contacts(2, "Nová 2"))
    consumer.apply(contacts(1, "Stará 1"))  # late and older: ignored
    customer = licensing.staff("GET", f"/api/v1/admin/customers/{number}").get_json()
    assert customer["billing_address"]["street"] == "Nová 2"
