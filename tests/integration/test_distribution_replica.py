"""Distribution's copy of a customer's contacts: newest version wins, duplicates do nothing."""

from __future__ import annotations

import json

from distribution.handlers import HANDLERS
from distribution.models import Customer

from shared import migrations
from shared.consumer import EventConsumer
from shared.events import new_envelope


def contact_event(version: int, method: str) -> bytes:
    data = {
        "customer_number": "100001",
        "company_name": "Účetnictví Novák s.r.o.",
        "billing_address": None,
        "delivery_address": {"street": f"Ulice {version}", "city": "Praha", "postal_code": "11000", "country": "CZ"},
        "delivery_method": method,
        "version": version,
    }
    return json.dumps(new_envelope("identity.customer.contact_changed", data, "identity", None)).encode()


def test_contacts_out_of_order_and_twice_keep_the_newest(settings_for, new_database):
    url = new_database("distribution")
    migrations.upgrade("distribution", url)
    consumer = EventConsumer(settings_for("distribution", url), HANDLERS)
    newer, older = contact_event(2, "dvd"), contact_event(1, "download")
    assert consumer.apply(newer) is True
    assert consumer.apply(older) is True  # applied, but it changes nothing
    assert consumer.apply(newer) is False  # the same event again: no effect at all
    with consumer.database.unit_of_work() as session:
        customer = session.get(Customer, "100001")
        assert (customer.delivery_method, customer.contacts_version) == ("dvd", 2)
        assert customer.delivery_address["street"] == "Ulice 2"
    consumer.database.dispose()
