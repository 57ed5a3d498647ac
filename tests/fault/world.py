"""What the fault tests share: people and a partner using the suite through the gateway, the
streams of their writes that keep what was acknowledged (a 2xx), and the reconciliation of
every consumer's final state with those acknowledgements.

Reconciliation reads the public and staff APIs where they show the state, and the services'
databases read-only where no API does (distribution's entitlements and customer replica, the
outbox and inbox tables). "Lost" counts acknowledged operations whose effect is missing or
overwritten in some consumer; "duplicated" counts operations whose effect is there more than
once (two licenses for one sale, one change announced twice, a side effect repeated).
"""

from __future__ import annotations

import collections
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date

import requests

from shared.events import catalogue
from shared.topology import Topology
from tests.support import queue_depth, read_only_database, valid_company_id, wait_until

STAFF = {"email": "fault-staff@example.com", "password": "staff-password-for-fault-tests"}
PRODUCT = {"code": "ucetnictvi", "name": "Účetní systém", "editions": ["Jazz", "Profi"], "add_ons": []}
ADDRESS = {"street": "Tovární 3", "city": "Olomouc", "postal_code": "77900", "country": "CZ"}
CITIES = ("Praha", "Brno", "Ostrava", "Plzeň", "Liberec")
# Services whose consumers apply events (each with its `inbox`), and those that produce them.
CONSUMERS = tuple(sorted({c for event in catalogue().values() for c in event.consumers}))
PRODUCERS = tuple(sorted({event.producer for event in catalogue().values()}))
TIMEOUT = 15  # seconds for one HTTP call; a slow answer is a failed attempt, never a lost sale

_company_seeds = itertools.count(4_200_000)


@dataclass
class Customer:
    number: str
    company_id: str
    company_name: str
    admin: dict[str, str] | None = None  # the administrator's Authorization header
    admin_email: str | None = None


class World:
    """The suite as its users reach it: staff, one partner, customers' administrators."""

    def __init__(self, suite, gateway: str, staff: dict[str, str], partner_key: str, mailbox):
        self.suite, self.gateway, self.staff, self.partner_key, self.mailbox = (
            suite,
            gateway,
            staff,
            partner_key,
            mailbox,
        )

    # --- plain calls ----------------------------------------------------------------------
    def call(self, method: str, path: str, headers: dict | None = None, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.gateway}{path}", headers=headers, timeout=TIMEOUT, **kwargs)

    def staff_call(self, method: str, path: str, expect: int | tuple = (200, 201, 204), **kwargs):
        answer = self.call(method, path, headers={**self.staff, **kwargs.pop("headers", {})}, **kwargs)
        expected = expect if isinstance(expect, tuple) else (expect,)
        assert answer.status_code in expected, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    # --- customers ------------------------------------------------------------------------
    @staticmethod
    def new_company(label: str) -> tuple[str, str]:
        seed = next(_company_seeds)
        return valid_company_id(seed), f"{label} {seed} s.r.o."

    def customer(self, label: str) -> Customer:
        """A customer staff entered (a direct sale's customer), known to identity."""
        company_id, name = self.new_company(label)
        created = self.staff_call(
            "POST",
            "/api/v1/admin/customers",
            json={"company_id": company_id, "company_name": name, "billing_address": ADDRESS},
            expect=201,
        )
        customer = Customer(created["customer_number"], company_id, name)
        wait_until(
            lambda: self.call("GET", f"/api/v1/admin/customer-profiles/{customer.number}", headers=self.staff).ok,
            timeout=60,
            interval=0.1,
            message=f"customer {customer.number} in identity",
        )
        return customer

    def customer_with_administrator(self, label: str) -> Customer:
        """A customer registered by its administrator, confirmed through the real mail."""
        customer = self.customer(label)
        email = f"admin-{customer.number}-{uuid.uuid4().hex[:6]}@example.com"
        password = f"passphrase of {email}"
        body = {
            "customer_number": customer.number,
            "company_id": customer.company_id,
            "email": email,
            "name": f"Správce {customer.number}",
            "password": password,
        }
        registered = self.call("POST", "/api/v1/registrations", json=body)
        assert registered.status_code == 202, registered.text
        token = self.mailbox.link_token(self.mailbox.wait_for(email, timeout=90), "confirm")
        confirmed = self.call("POST", "/api/v1/registrations/confirm", json={"token": token})
        assert confirmed.status_code == 200, confirmed.text
        customer.admin, customer.admin_email = self.sign_in(email, password), email
        return customer

    def sign_in(self, email: str, password: str) -> dict[str, str]:
        answer = self.call("POST", "/api/v1/sessions", json={"email": email, "password": password})
        assert answer.status_code == 201, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    # --- the things the streams do --------------------------------------------------------
    def sale_body(self, company: tuple[str, str], partner_sale_id: str) -> dict:
        company_id, name = company
        return {
            "partner_sale_id": partner_sale_id,
            "customer": {"company_id": company_id, "company_name": name, "billing_address": ADDRESS},
            "product": PRODUCT["code"],
            "edition": "Jazz",
            "seats": 1,
            "sold_on": date.today().isoformat(),
        }

    def partner_sale(self, key: str, body: dict) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.partner_key}", "Idempotency-Key": key}
        return self.call("POST", "/api/v1/partner/sales", headers=headers, json=body)


# --- background writes ----------------------------------------------------------------------
class Stream(threading.Thread):
    """Writes of one kind from a background thread until `finish()`. Only 2xx answers count
    as acknowledged; a 5xx or a broken connection is a failed attempt (counted by reason);
    any other answer is a mistake of the test and fails it (`errors`). A write counts as made
    during the fault when `fault` was set both when it was sent and when it was answered (set
    it once the fault is in effect, clear it before undoing it)."""

    def __init__(self, name: str, fault: threading.Event, pause: float):
        super().__init__(name=name, daemon=True)
        self.fault, self.pause = fault, pause
        self.stopping = threading.Event()
        self.failures: collections.Counter[str] = collections.Counter()
        self.problems: list[requests.Response] = []  # the 5xx answers, for the tests to inspect
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.step()
            except Exception as error:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(error))
            self.stopping.wait(self.pause)

    def step(self) -> None:
        raise NotImplementedError

    def attempt(self, send) -> requests.Response | None:
        """One attempt; the answer if it was a 2xx, else None (a failure, counted)."""
        try:
            answer = send()
        except requests.RequestException as error:
            self.failures[type(error).__name__] += 1
            return None
        if 200 <= answer.status_code < 300:
            return answer
        if answer.status_code >= 500:
            self.failures[str(answer.status_code)] += 1
            self.problems.append(answer)
            return None
        raise AssertionError(f"{self.name}: unexpected {answer.status_code} {answer.text}")

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=60)
        assert not self.is_alive(), f"{self.name} did not stop"


@dataclass
class Sale:
    key: str
    body: dict
    attempts: int = 0
    answer: dict | None = None
    during_fault: bool = False


class SalesStream(Stream):
    """A partner's system selling into a few companies, each sale with an Idempotency-Key of
    its own; a sale that failed is sent again with the same key and body before a new one
    (api.md: the same key with the same body answers the same again and creates nothing)."""

    def __init__(self, world: World, companies: list[tuple[str, str]], fault: threading.Event, pause: float = 0.05):
        super().__init__("partner-sales", fault, pause)
        self.world, self.companies = world, companies
        self.sales: list[Sale] = []
        self.pending: collections.deque[Sale] = collections.deque()

    def step(self) -> None:
        if self.pending:
            sale = self.pending.popleft()
        else:
            company = self.companies[len(self.sales) % len(self.companies)]
            partner_sale_id = f"fault-{uuid.uuid4().hex[:12]}"
            sale = Sale(key=str(uuid.uuid4()), body=self.world.sale_body(company, partner_sale_id))
            self.sales.append(sale)
        if not self.send(sale):
            self.pending.append(sale)

    def send(self, sale: Sale) -> bool:
        sale.attempts += 1
        sent_during_fault = self.fault.is_set()
        answer = self.attempt(lambda: self.world.partner_sale(sale.key, sale.body))
        if answer is None:
            return False
        # Sent and answered while the fault was surely on.
        sale.answer, sale.during_fault = answer.json(), sent_during_fault and self.fault.is_set()
        return True

    def finish(self, timeout: float = 180) -> None:
        """Stop selling; every sale tried is sent again until acknowledged."""
        self.stop()
        deadline = time.monotonic() + timeout
        while self.pending:
            assert time.monotonic() < deadline, f"{len(self.pending)} sales never acknowledged: {self.failures}"
            if not self.send(self.pending[0]):
                time.sleep(0.5)
                continue
            self.pending.popleft()

    @property
    def acknowledged(self) -> list[Sale]:
        return [sale for sale in self.sales if sale.answer is not None]


@dataclass(frozen=True)
class AddressChange:
    seq: int
    billing: dict
    delivery: dict
    during_fault: bool


class AddressStream(Stream):
    """A customer's administrator changing the profile's addresses again and again, each time
    to new values (a failed change is not repeated: the next one supersedes it)."""

    def __init__(self, world: World, customer: Customer, fault: threading.Event, pause: float = 0.1):
        super().__init__(f"addresses-{customer.number}", fault, pause)
        self.world, self.customer = world, customer
        self.acknowledged: list[AddressChange] = []
        self.tried = 0

    def values(self, seq: int) -> tuple[dict, dict]:
        city = CITIES[seq % len(CITIES)]
        billing = {"street": f"Fakturační {self.customer.number}/{seq}", "city": city, "postal_code": f"{10000 + seq}"}
        delivery = {"street": f"Dodací {self.customer.number}/{seq}", "city": city, "postal_code": f"{20000 + seq}"}
        return {**billing, "country": "CZ"}, {**delivery, "country": "CZ"}

    def step(self) -> None:
        self.change()

    def change(self) -> bool:
        self.tried += 1
        seq = self.tried
        billing, delivery = self.values(seq)
        sent_during_fault = self.fault.is_set()
        answer = self.attempt(
            lambda: self.world.call(
                "PUT",
                f"/api/v1/customers/{self.customer.number}/addresses",
                headers=self.customer.admin,
                json={"billing_address": billing, "delivery_address": delivery},
            )
        )
        if answer is None:
            return False
        self.acknowledged.append(AddressChange(seq, billing, delivery, sent_during_fault and self.fault.is_set()))
        return True

    def finish(self, timeout: float = 180) -> None:
        """Stop; then one more change, acknowledged, so the last word is a known one."""
        self.stop()
        deadline = time.monotonic() + timeout
        while not self.change():
            assert time.monotonic() < deadline, f"no final address change acknowledged: {self.failures}"
            time.sleep(0.5)


# --- reading the services' state ------------------------------------------------------------
def database_url(suite, service: str) -> str:
    """The service's own database, directly (never through a test's proxy)."""
    return suite.direct_database_urls[service]


def outbox_events(suite, producer: str, routing_key: str | None = None) -> list[dict]:
    """Every event a producer wrote (committed), oldest first, with `published` and `row`."""
    query = "SELECT id, body, published_at FROM outbox"
    params: tuple = ()
    if routing_key:
        query += " WHERE routing_key = %s"
        params = (routing_key,)
    with read_only_database(database_url(suite, producer)) as db:
        rows = db.execute(query + " ORDER BY id", params).fetchall()
    return [{**json.loads(body), "row": row, "published": published is not None} for row, body, published in rows]


def inbox_ids(suite, consumer: str) -> set[str]:
    with read_only_database(database_url(suite, consumer)) as db:
        return {r[0] for r in db.execute("SELECT event_id FROM inbox WHERE consumer = %s", (consumer,))}


def delivery_gaps(suite) -> dict:
    """Events not yet published, and (event, consumer) pairs not yet applied."""
    applied = {consumer: inbox_ids(suite, consumer) for consumer in CONSUMERS}
    unsent, missing = [], []
    for producer in PRODUCERS:
        for event in outbox_events(suite, producer):
            if not event["published"]:
                unsent.append(event["id"])
            for consumer in catalogue()[event["type"]].consumers:
                if event["id"] not in applied[consumer]:
                    missing.append((event["id"], event["type"], consumer))
    return {"unsent": unsent, "missing": missing}


def settle(suite, timeout: float = 240) -> None:
    """Wait until every event written has been published and applied by each consumer, and
    the consumers' queues are empty."""
    topology = Topology(suite.namespace)

    def settled():
        gaps = delivery_gaps(suite)
        if gaps["unsent"] or gaps["missing"]:
            settled.last = gaps
            return False
        return all(queue_depth(suite.env["AMQP_URL"], topology.queue(c)) == 0 for c in CONSUMERS)

    settled.last = None
    try:
        wait_until(settled, timeout=timeout, interval=0.5, message="every event applied by every consumer")
    except AssertionError:
        last = settled.last or {}
        raise AssertionError(
            f"not settled after {timeout}s: {len(last.get('unsent', []))} unsent, "
            f"missing (first 10): {last.get('missing', [])[:10]}"
        ) from None


def dead_letters(suite) -> dict[str, int]:
    """How many messages each DLQ of the suite's namespace holds."""
    topology = Topology(suite.namespace)
    return {
        topology.dead_letter_queue_of(queue): queue_depth(suite.env["AMQP_URL"], topology.dead_letter_queue_of(queue))
        for queue in topology.work_queues()
    }


def all_running(suite) -> dict[str, bool]:
    """Every Procfile process, and whether it runs (a missing one counts as not running)."""
    running = suite.running()
    return {name: running.get(name, False) for name in suite.entries}


# --- reconciliation -------------------------------------------------------------------------
def reconcile_sales(world: World, sales: list[Sale]) -> dict:
    """Each acknowledged sale is one license in licensing (staff API), announced once, and one
    entitlement in distribution (its database: no API lists entitlements)."""
    suite = world.suite
    acked = [sale for sale in sales if sale.answer is not None]
    numbers = {sale.answer["installation_number"]: sale for sale in acked}
    # A sale to a customer its partner did not bring answers no customer number (api.md): by company ID.
    company_ids = sorted({sale.body["customer"]["company_id"] for sale in acked})
    with read_only_database(database_url(suite, "licensing")) as db:
        customer_of = dict(
            db.execute(
                "SELECT company_id, customer_number FROM customers WHERE company_id = ANY(%s)", (company_ids,)
            ).fetchall()
        )
    customers = sorted(set(customer_of.values()))
    listed: collections.Counter[str] = collections.Counter()
    for customer in customers:
        for item in world.staff_call("GET", f"/api/v1/admin/licenses?customer_number={customer}")["items"]:
            listed[item["installation_number"]] += 1
    sale_ids = [sale.body["partner_sale_id"] for sale in acked]
    with read_only_database(database_url(suite, "licensing")) as db:
        per_sale = dict(
            db.execute(
                "SELECT partner_sale_id, count(*) FROM licenses WHERE partner_sale_id = ANY(%s) GROUP BY 1", (sale_ids,)
            ).fetchall()
        )
    announced = collections.Counter(
        event["data"]["installation_number"] for event in outbox_events(suite, "licensing", "licensing.license.issued")
    )
    with read_only_database(database_url(suite, "distribution")) as db:
        entitled = {
            row[0]: row[1:]
            for row in db.execute(
                "SELECT installation_number, customer_number, status, version FROM entitlements "
                "WHERE customer_number = ANY(%s)",
                (customers,),
            )
        }
    lost, duplicated = {}, {}
    for number, sale in numbers.items():
        where = sale.body["partner_sale_id"]
        if listed[number] == 0 or per_sale.get(where, 0) == 0:
            lost[where] = "no license in licensing"
        elif announced[number] == 0:
            lost[where] = "never announced"
        elif entitled.get(number) != (customer_of.get(sale.body["customer"]["company_id"]), "unregistered", 1):
            lost[where] = f"distribution has {entitled.get(number)}"
        if listed[number] > 1 or per_sale.get(where, 0) > 1 or announced[number] > 1:
            duplicated[where] = f"listed {listed[number]}x, {per_sale.get(where)} rows, announced {announced[number]}x"
    for number in set(listed) - set(numbers):
        duplicated[number] = "a license in licensing no acknowledged sale made"
    for number in set(entitled) - set(numbers):
        duplicated[number] = "an entitlement in distribution no acknowledged sale made"
    return {
        "acknowledged": len(acked),
        "acknowledged_during_fault": sum(sale.during_fault for sale in acked),
        "attempts": sum(sale.attempts for sale in sales),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "lost_detail": dict(itertools.islice(lost.items(), 10)),
        "duplicated_detail": dict(itertools.islice(duplicated.items(), 10)),
    }


def reconcile_addresses(world: World, streams: list[AddressStream]) -> dict:
    """Each acknowledged address change is one event of identity's, applied by licensing and
    distribution; their final contacts are identity's final ones, which are the last
    acknowledged change (or a later attempt that timed out but went through)."""
    suite = world.suite
    events = outbox_events(suite, "identity", "identity.customer.contact_changed")
    applied = {consumer: inbox_ids(suite, consumer) for consumer in ("licensing", "distribution")}
    lost, duplicated, acknowledged = {}, {}, 0
    for stream in streams:
        number = stream.customer.number
        mine = [event for event in events if event["data"]["customer_number"] == number]
        by_street = collections.defaultdict(list)
        for event in mine:
            by_street[(event["data"].get("delivery_address") or {}).get("street")].append(event)
        for change in stream.acknowledged:
            acknowledged += 1
            found = by_street.get(change.delivery["street"], [])
            where = f"{number}#{change.seq}"
            if not found:
                lost[where] = "identity never announced it"
            elif len(found) > 1:
                duplicated[where] = f"announced {len(found)} times"
            elif missing := [consumer for consumer, ids in applied.items() if found[0]["id"] not in ids]:
                lost[where] = "not applied by " + ", ".join(missing)
        final = max(mine, key=lambda event: event["data"]["version"])["data"]
        last = stream.acknowledged[-1]
        final_seq = int(final["delivery_address"]["street"].rsplit("/", 1)[1])
        if final_seq < last.seq:
            lost[f"{number}#{last.seq}"] = f"identity's final contacts are those of change #{final_seq}"
        profile = world.staff_call("GET", f"/api/v1/admin/customer-profiles/{number}")
        if (profile["billing_address"], profile["delivery_address"]) != (
            final["billing_address"],
            final["delivery_address"],
        ):
            lost[f"{number}/identity"] = f"identity shows {profile['delivery_address']}"
        licensing = world.staff_call("GET", f"/api/v1/admin/customers/{number}")
        with read_only_database(database_url(suite, "licensing")) as db:
            (licensing_version,) = db.execute(
                "SELECT contacts_version FROM customers WHERE customer_number = %s", (number,)
            ).fetchone()
        if (licensing["billing_address"], licensing_version) != (final["billing_address"], final["version"]):
            lost[f"{number}/licensing"] = f"licensing has v{licensing_version} {licensing['billing_address']}"
        with read_only_database(database_url(suite, "distribution")) as db:
            row = db.execute(
                "SELECT delivery_address, contacts_version FROM customers WHERE customer_number = %s", (number,)
            ).fetchone()
        if row is None or (row[0], row[1]) != (final["delivery_address"], final["version"]):
            lost[f"{number}/distribution"] = f"distribution has {row}"
    return {
        "acknowledged": acknowledged,
        "acknowledged_during_fault": sum(c.during_fault for s in streams for c in s.acknowledged),
        "attempts": sum(s.tried for s in streams),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "lost_detail": dict(itertools.islice(lost.items(), 10)),
        "duplicated_detail": dict(itertools.islice(duplicated.items(), 10)),
    }


@dataclass
class Reconciliation:
    """The counts of one scenario: printed, kept as a JSON file and as a JUnit property."""

    scenario: str
    parts: dict[str, dict] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def acknowledged(self) -> int:
        return sum(part["acknowledged"] for part in self.parts.values())

    @property
    def lost(self) -> int:
        return sum(part["lost"] for part in self.parts.values())

    @property
    def duplicated(self) -> int:
        return sum(part["duplicated"] for part in self.parts.values())

    def publish(self, record_property, folder) -> None:
        summary = {
            "scenario": self.scenario,
            "acknowledged": self.acknowledged,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "parts": self.parts,
            "facts": self.facts,
        }
        (folder / "reconciliation.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
        record_property("reconciliation", json.dumps(summary, ensure_ascii=False, default=str))
        parts = ", ".join(
            f"{name}: {p['acknowledged']} ack/{p['lost']} lost/{p['duplicated']} dup" for name, p in self.parts.items()
        )
        print(
            f"\nreconciled [{self.scenario}]: acknowledged={self.acknowledged} lost={self.lost} "
            f"duplicated={self.duplicated} ({parts}) {json.dumps(self.facts, default=str)}"
        )


def _rows(suite, service: str, query: str) -> list[tuple]:
    with read_only_database(database_url(suite, service)) as db:
        return db.execute(query).fetchall()


def reconcile_streams(suite, world: World, scenario: str, sales: SalesStream, addresses: list[AddressStream]):
    """Once the writers have finished: wait until everything acknowledged has been published
    and applied, then reconcile the sales, the address changes and every replica."""
    settle(suite)
    result = Reconciliation(scenario)
    result.parts["partner sales"] = reconcile_sales(world, sales.sales)
    result.parts["address changes"] = reconcile_addresses(world, addresses)
    result.parts["replicas vs their sources"] = replica_differences(suite)
    return result


def replica_differences(suite) -> dict:
    """Every consumer's replica against the producer that owns the data, once settled:
    identity's profiles and distribution's customers against licensing's customers,
    licensing's and distribution's contacts against identity's, distribution's entitlements
    against licensing's licenses, licensing's and distribution's memberships against
    identity's, forum's authors against identity's people as last announced. `lost` counts
    rows missing or stale in a replica, `duplicated` rows a replica has that its source never
    had."""
    from identity.models import RIGHTS

    lost: dict[str, str] = {}
    duplicated: dict[str, str] = {}

    def compare(what: str, source: dict, replica: dict, extra_is_fine=lambda key, row: False) -> None:
        for key, expected in source.items():
            if key not in replica:
                lost[f"{what} {key}"] = "missing"
            elif replica[key] != expected:
                lost[f"{what} {key}"] = f"{replica[key]} instead of {expected}"
        for key in set(replica) - set(source):
            if not extra_is_fine(key, replica[key]):
                duplicated[f"{what} {key}"] = f"{replica[key]} (no such row at the source)"

    sold_to = _rows(suite, "licensing", "SELECT customer_number, company_id, company_name FROM customers")
    customers = {r[0]: r[1:] for r in sold_to}
    profiles = _rows(
        suite,
        "identity",
        "SELECT customer_number, company_id, company_name, billing_address, delivery_address, delivery_method, "
        "contacts_version FROM customer_profiles",
    )
    compare("identity profile", customers, {r[0]: (r[1], r[2]) for r in profiles})
    shipping = _rows(
        suite,
        "distribution",
        "SELECT customer_number, company_name, delivery_address, delivery_method, contacts_version FROM customers",
    )
    compare("distribution customer", {n: c[1] for n, c in customers.items()}, {r[0]: r[1] for r in shipping})
    compare(
        "distribution contacts",
        {r[0]: (r[4], r[5], r[6]) for r in profiles},
        {r[0]: (r[2], r[3], r[4]) for r in shipping},
    )
    edited = {r[0]: (r[3], r[6]) for r in profiles if r[6] > 0}
    billing = _rows(suite, "licensing", "SELECT customer_number, billing_address, contacts_version FROM customers")
    compare("licensing contacts", edited, {r[0]: (r[1], r[2]) for r in billing if r[2] > 0 or r[0] in edited})

    licenses = _rows(
        suite,
        "licensing",
        "SELECT l.installation_number, c.customer_number, l.product_code, l.edition, l.seats, l.status, "
        "l.support_until, l.version FROM licenses l JOIN customers c ON c.id = l.customer_id",
    )
    entitlements = _rows(
        suite,
        "distribution",
        "SELECT installation_number, customer_number, product, edition, seats, status, support_until, version "
        "FROM entitlements",
    )
    compare("entitlement", {r[0]: r[1:] for r in licenses}, {r[0]: r[1:] for r in entitlements})

    members = {}
    for user_id, number, administrator, rights in _rows(
        # an invitation not yet accepted gives no access and is nobody's copy
        suite,
        "identity",
        "SELECT user_id, customer_number, administrator, rights FROM memberships WHERE status = 'active'",
    ):
        effective = list(RIGHTS) if administrator else [r for r in RIGHTS if r in (rights or []) and r != "users"]
        members[(user_id, number)] = (effective, True)
    for service in ("licensing", "distribution"):
        replica = {
            (r[0], r[1]): (list(r[2]), r[3])
            for r in _rows(suite, service, "SELECT user_id, customer_number, rights, active FROM memberships")
        }
        # a removed membership stays in a replica as inactive
        compare(f"{service} membership", members, replica, extra_is_fine=lambda key, row: row == ([], False))

    people = {
        r[0]: (r[1]["name"], r[1]["email"], r[1]["company_name"], r[1]["staff"], r[1]["active"], r[2])
        for r in _rows(suite, "identity", "SELECT id, announced, version FROM users WHERE announced IS NOT NULL")
    }
    authors = _rows(suite, "forum", "SELECT user_id, name, email, company_name, staff, active, version FROM authors")
    compare("forum author", people, {r[0]: r[1:] for r in authors}, extra_is_fine=lambda key, row: row[-1] == 0)
    return {
        "acknowledged": 0,
        "rows_compared": len(customers) * 3 + len(licenses) + 2 * len(members) + len(people),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "lost_detail": dict(itertools.islice(lost.items(), 10)),
        "duplicated_detail": dict(itertools.islice(duplicated.items(), 10)),
    }
