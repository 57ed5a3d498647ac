"""Demo data for `make run`, loaded through the public API as the staff account, so it takes
the same path (and raises the same events) as an operator's work. Safe to run again: what
exists already answers 409 and is left alone.

A step that needs another service to have applied an event first (identity knowing a new
customer, licensing and distribution knowing the demo administrator's membership and licenses)
waits for it, up to DEPENDENCY_WAIT seconds, and then fails with a `SeedingError` that says what
did not arrive, rather than failing on the first `404` of a consumer that is merely late."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import requests

CUSTOMERS = [
    {
        "company_id": "25083325",
        "company_name": "Účetnictví Novák s.r.o.",
        "billing_address": {"street": "Vinohradská 12", "city": "Praha 2", "postal_code": "12000", "country": "CZ"},
    },
    {
        "company_id": "27082440",
        "company_name": "Stavebniny Morava a.s.",
        "billing_address": {"street": "Masarykova 48", "city": "Brno", "postal_code": "60200", "country": "CZ"},
    },
    {
        "company_id": "45274649",
        "company_name": "Pekárna U Mlýna, v.o.s.",
        "billing_address": {"street": "Mlýnská 3", "city": "Olomouc", "postal_code": "77900", "country": "CZ"},
    },
]

FORUM_CATEGORIES = [
    {
        "name": "Účetnictví a daně",
        "description": "Podvojné účetnictví, DPH, daňová evidence.",
        "position": 1,
        "product": "ucetnictvi",
    },
    {"name": "Mzdy a personalistika", "description": "Mzdy, pojištění, personální agenda.", "position": 2},
    {
        "name": "Sklady a fakturace",
        "description": "Zásoby, prodejky, fakturace, e-shop.",
        "position": 3,
        "product": "sklady",
    },
    {
        "name": "Instalace a aktualizace",
        "description": "Instalace, síťový provoz, aktualizace programu.",
        "position": 4,
    },
]


def news_items(now: datetime) -> list[dict]:
    return [
        {
            "kind": "news",
            "title": "Nová verze programu je k dispozici ke stažení",
            "body": "Jarní verze přináší novinky v přiznání k DPH a kontrolním hlášení.",
        },
        {
            "kind": "training",
            "title": "Školení: Účetnictví pro začátečníky",
            "body": "Celodenní kurz v moderně vybaveném školicím středisku.",
            "starts_at": (now + timedelta(days=21)).isoformat(),
            "city": "Praha",
            "capacity": 16,
        },
        {
            "kind": "event",
            "title": "Webinář: Uzávěrka roku",
            "body": "Co nezapomenout při roční účetní uzávěrce.",
            "starts_at": (now + timedelta(days=35)).isoformat(),
            "city": "online",
        },
    ]


PRODUCTS = [
    {
        "code": "ucetnictvi",
        "name": "Účetní systém",
        "editions": ["Mini", "Jazz", "Standard", "Komplet", "Premium"],
        "add_ons": ["Síťová verze", "Kasa", "Mzdy navíc"],
    },
    {"code": "sklady", "name": "Skladové hospodářství", "editions": ["Lite", "Pro"], "add_ons": ["Čtečka kódů"]},
]
PARTNER = "Softwarový dům Brno s.r.o."


# Seconds a step waits for what another service applies by event (or a service that is briefly
# unavailable); a busy machine makes consumers late by seconds, never by minutes.
DEPENDENCY_WAIT = 120.0
# Answers that mean "not yet": a replica without the record, a service briefly unavailable.
NOT_YET = (404, 500, 502, 503, 504)


class SeedingError(RuntimeError):
    """A step of the demo data that could not be done (or whose dependency never arrived)."""


def wait_for(
    what: str,
    ask: Callable[[], requests.Response],
    ready: Callable[[requests.Response], bool] = lambda answer: answer.ok,
) -> requests.Response:
    """Ask again until `ready(answer)`, while the answer means "not yet" (NOT_YET, or no answer at
    all), for DEPENDENCY_WAIT seconds at most; any other answer fails at once."""
    deadline = time.monotonic() + DEPENDENCY_WAIT
    while True:
        try:
            answer = ask()
            if ready(answer):
                return answer
            last = f"{answer.request.method} {answer.url} -> {answer.status_code} {answer.text[:300]}"
            if answer.status_code not in NOT_YET and not answer.ok:
                raise SeedingError(f"seeding failed: {last}")
        except requests.RequestException as error:
            last = str(error)
        if time.monotonic() > deadline:
            raise SeedingError(f"seeding waited {DEPENDENCY_WAIT:.0f} s for {what}; the last answer: {last}")
        time.sleep(0.25)


@dataclass
class Demo:
    numbers: dict[str, str] = field(default_factory=dict)  # company name -> customer number
    partner_key: str = ""
    # installation numbers of the first customer's partner sales: to register, to leave
    to_register: str = ""
    unregistered: str = ""


def seed(gateway_url: str, staff_email: str, staff_password: str) -> Demo:
    """Load the demo data through the staff and partner APIs."""
    http = _signed_in(gateway_url, staff_email, staff_password)
    demo = Demo()
    for customer in CUSTOMERS:
        answer = http.post(f"{gateway_url}/api/v1/admin/customers", json=customer, timeout=30)
        _expect(answer)
        demo.numbers[customer["company_name"]] = answer.json()["customer_number"]
    for category in FORUM_CATEGORIES:
        _expect(http.post(f"{gateway_url}/api/v1/admin/forum/categories", json=category, timeout=30))
    existing = {item["title"] for item in http.get(f"{gateway_url}/api/v1/news", timeout=30).json()["items"]}
    for item in news_items(datetime.now(UTC)):
        if item["title"] not in existing:
            _expect(http.post(f"{gateway_url}/api/v1/admin/news", json=item, timeout=30))
    _seed_licenses(http, gateway_url, demo)
    _seed_releases(http, gateway_url)
    http.delete(f"{gateway_url}/api/v1/sessions/current", timeout=30)
    return demo


def _seed_licenses(http: requests.Session, gateway_url: str, demo: Demo) -> None:
    for product in PRODUCTS:
        _expect(http.post(f"{gateway_url}/api/v1/admin/products", json=product, timeout=30))
    first = next(iter(demo.numbers.values()))
    held = http.get(f"{gateway_url}/api/v1/admin/licenses", params={"customer_number": first}, timeout=30).json()[
        "items"
    ]
    if not any(item["channel"] == "direct" for item in held):
        today = date.today()
        for product, edition, add_ons, seats, support in (
            ("ucetnictvi", "Komplet", ["Síťová verze"], 5, today + timedelta(days=300)),
            ("sklady", "Pro", [], 1, today + timedelta(days=40)),  # support ends soon: highlighted
        ):
            body = {
                "customer_number": first,
                "product": product,
                "edition": edition,
                "add_ons": add_ons,
                "seats": seats,
            }
            _expect(
                http.post(
                    f"{gateway_url}/api/v1/admin/licenses",
                    json={**body, "support_until": support.isoformat()},
                    timeout=30,
                )
            )
    partners = http.get(f"{gateway_url}/api/v1/admin/partners", timeout=30).json()["items"]
    partner = next((p for p in partners if p["name"] == PARTNER), None)
    if partner is None:
        demo.partner_key = http.post(f"{gateway_url}/api/v1/admin/partners", json={"name": PARTNER}, timeout=30).json()[
            "api_key"
        ]
    else:  # keys are shown once: a restart gets a fresh one (older ones keep working)
        demo.partner_key = http.post(
            f"{gateway_url}/api/v1/admin/partners/{partner['partner_id']}/keys", timeout=30
        ).json()["api_key"]
    company = CUSTOMERS[0]
    sold = []
    for sale_id, edition, seats in (("DEMO-SALE-1", "Jazz", 1), ("DEMO-SALE-2", "Mini", 2)):
        body = {
            "partner_sale_id": sale_id,
            "customer": {k: company[k] for k in ("company_id", "company_name", "billing_address")},
            "product": "ucetnictvi",
            "edition": edition,
            "add_ons": [],
            "seats": seats,
            "sold_on": date.today().isoformat(),
        }
        answer = requests.post(
            f"{gateway_url}/api/v1/partner/sales",
            json=body,
            headers={"Authorization": f"Bearer {demo.partner_key}", "Idempotency-Key": sale_id},
            timeout=30,
        )
        _expect(answer)
        sold.append(answer.json()["installation_number"])
    demo.to_register, demo.unregistered = sold


RELEASES = [
    ("ucetnictvi", "2026.1", "full", "stable", -120, "Jarní verze: nové přiznání k DPH a kontrolní hlášení."),
    ("ucetnictvi", "2026.1.1", "update", "stable", -60, "Opravy tisku faktur a importu bankovních výpisů."),
    ("ucetnictvi", "2026.2", "full", "beta", -7, "Zkušební verze na podzim: nový modul mezd."),
    ("sklady", "5.0", "full", "stable", -30, "Nová verze skladového hospodářství."),
]


def _demo_file(product: str, version: str, size: int = 2 * 1024 * 1024) -> bytes:
    """A real file of a few MB for each demo release: the same bytes every run."""
    import hashlib

    block = hashlib.sha256(f"{product}-{version}".encode()).digest() * 1024  # 32 KiB
    return (block * (size // len(block) + 1))[:size]


def _seed_releases(http: requests.Session, gateway_url: str) -> None:
    """Demo releases with generated installers, published (the full ones ship DVDs, all make news)."""
    existing = {
        (r["product"], r["version"], r["kind"], r["channel"])
        for r in http.get(f"{gateway_url}/api/v1/admin/releases", timeout=30).json()["items"]
    }
    for product, version, kind, channel, days_ago, notes in RELEASES:
        if (product, version, kind, channel) in existing:
            continue
        released_on = (date.today() + timedelta(days=days_ago)).isoformat()
        body = {
            "product": product,
            "version": version,
            "kind": kind,
            "channel": channel,
            "released_on": released_on,
            "notes": notes,
        }
        answer = http.post(f"{gateway_url}/api/v1/admin/releases", json=body, timeout=30)
        _expect(answer)
        release_id = answer.json()["id"]
        name = f"{product}-{version}-{'setup' if kind == 'full' else 'update'}.exe"
        upload = http.put(
            f"{gateway_url}/api/v1/admin/releases/{release_id}/files/{name}",
            data=_demo_file(product, version),
            headers={"Content-Type": "application/octet-stream"},
            timeout=60,
        )
        _expect(upload)
        _expect(http.post(f"{gateway_url}/api/v1/admin/releases/{release_id}/publish", timeout=30))
    titles = {d["title"] for d in http.get(f"{gateway_url}/api/v1/admin/documents", timeout=30).json()["items"]}
    title = "Příručka k účetnímu systému"
    if title not in titles:
        document = http.post(
            f"{gateway_url}/api/v1/admin/documents",
            json={"title": title, "description": "Uživatelská příručka pro verzi 2026.1", "product": "ucetnictvi"},
            timeout=30,
        )
        _expect(document)
        _expect(
            http.put(
                f"{gateway_url}/api/v1/admin/documents/{document.json()['id']}/files/prirucka-2026.pdf",
                data=b"%PDF-1.4\n% demo manual\n",
                headers={"Content-Type": "application/octet-stream"},
                timeout=30,
            )
        )


# (category name, title, opening post, replies): the demo users' own words, in Markdown.
FORUM_TOPICS = [
    (
        "Účetnictví a daně",
        "Kontrolní hlášení DPH: kde najdu chybu v řádku B.2?",
        "Při kontrole **kontrolního hlášení** mi program hlásí chybu v oddílu B.2 u dodavatele "
        "bez DIČ. Nesetkal se s tím někdo?",
        [
            "Zkontrolujte v adresáři, jestli má dodavatel vyplněné DIČ. U neplátce patří doklad do B.3.",
            "> Zkontrolujte v adresáři, jestli má dodavatel vyplněné DIČ.\n\nTo bylo ono, děkuji!",
        ],
    ),
    (
        "Sklady a fakturace",
        "Hromadný tisk faktur do PDF",
        "Dá se vytisknout víc faktur najednou, každou do vlastního PDF?\n\n```\nSoubor → Tisk → ...\n```",
        ["Ano: označte faktury, zvolte *Tisk* a v dialogu zaškrtněte **Každý doklad do samostatného souboru**."],
    ),
    (
        "Instalace a aktualizace",
        "Síťová verze po aktualizaci nestartuje",
        "Po instalaci nové verze se stanice nepřipojí k databázi na serveru. Co zkontrolovat?",
        [],
    ),
]


def seed_forum(gateway_url: str, people: list[tuple[str, str]], staff: tuple[str, str]) -> None:
    """A few discussions by the demo users (once: skipped when the forum has topics)."""
    sessions = [_signed_in(gateway_url, email, password) for email, password in people]
    moderator = _signed_in(gateway_url, *staff)
    categories = sessions[0].get(f"{gateway_url}/api/v1/forum/categories", timeout=30).json()["items"]
    if any(category["topics"] for category in categories):
        return
    ids = {category["name"]: category["id"] for category in categories}
    for number, (category, title, body, replies) in enumerate(FORUM_TOPICS):
        author = sessions[number % len(sessions)]
        topic = author.post(
            f"{gateway_url}/api/v1/forum/topics",
            json={"category_id": ids[category], "title": title, "body": body},
            timeout=30,
        )
        _expect(topic)
        topic_id = topic.json()["id"]
        for index, reply in enumerate(replies):
            replier = moderator if index == 0 and number == 0 else sessions[(number + index + 1) % len(sessions)]
            answer = replier.post(
                f"{gateway_url}/api/v1/forum/topics/{topic_id}/posts", json={"body": reply}, timeout=30
            )
            _expect(answer)
            if index == 0 and number == 0:  # the moderator's answer solved the first question
                _expect(
                    author.put(
                        f"{gateway_url}/api/v1/forum/topics/{topic_id}/solution",
                        json={"post_id": answer.json()["id"]},
                        timeout=30,
                    )
                )
    welcome = moderator.post(
        f"{gateway_url}/api/v1/forum/topics",
        json={
            "category_id": ids["Instalace a aktualizace"],
            "title": "Vítejte ve fóru Zákaznického centra",
            "body": "Ptejte se, raďte ostatním a **označte odpověď, která vám pomohla**. Příspěvky, které sem "
            "nepatří, nahlaste tlačítkem *Nahlásit*.",
        },
        timeout=30,
    )
    _expect(welcome)
    _expect(
        moderator.patch(
            f"{gateway_url}/api/v1/admin/forum/topics/{welcome.json()['id']}", json={"pinned": True}, timeout=30
        )
    )
    for http in (*sessions, moderator):
        http.delete(f"{gateway_url}/api/v1/sessions/current", timeout=30)


def _signed_in(gateway_url: str, email: str, password: str) -> requests.Session:
    http = requests.Session()
    answer = wait_for(
        f"identity to sign {email} in",
        lambda: http.post(f"{gateway_url}/api/v1/sessions", json={"email": email, "password": password}, timeout=30),
    )
    http.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    return http


def wait_for_profile(gateway_url: str, staff_email: str, staff_password: str, customer_number: str) -> None:
    """Until identity knows the customer licensing announced (identity-consumer applies it)."""
    http = _signed_in(gateway_url, staff_email, staff_password)
    wait_for(
        f"identity to learn customer {customer_number} from licensing (identity-consumer)",
        lambda: http.get(f"{gateway_url}/api/v1/admin/customer-profiles/{customer_number}", timeout=30),
    )
    http.delete(f"{gateway_url}/api/v1/sessions/current", timeout=30)


def register_product(
    gateway_url: str, email: str, password: str, customer_number: str, installation_number: str
) -> None:
    """The demo administrator registers one partner-sold license, as a customer would, once
    licensing knows their membership (it arrives by event a moment after sign-up), and waits
    until distribution offers them the downloads of what the customer holds."""
    http = _signed_in(gateway_url, email, password)
    profile = f"{gateway_url}/api/v1/customers/{customer_number}"
    wait_for(
        f"licensing to learn {email}'s membership of customer {customer_number} (licensing-consumer)",
        lambda: http.get(f"{profile}/licenses", timeout=30),
    )
    wait_for(
        f"licensing to register {installation_number} for customer {customer_number}",
        lambda: http.post(
            f"{profile}/product-registrations", json={"installation_number": installation_number}, timeout=30
        ),
        ready=lambda answer: answer.status_code in (200, 201, 409),  # 409: registered by an earlier run
    )
    licensed = {item["product"] for item in http.get(f"{profile}/licenses", timeout=30).json()["items"]}

    def every_product_offered(answer: requests.Response) -> bool:
        return answer.ok and licensed <= {release["product"] for release in answer.json()["items"]}

    wait_for(
        f"distribution to offer customer {customer_number}'s downloads of {sorted(licensed)} (distribution-consumer)",
        lambda: http.get(f"{profile}/downloads", timeout=30),
        ready=every_product_offered,
    )
    http.delete(f"{gateway_url}/api/v1/sessions/current", timeout=30)


def _expect(answer: requests.Response) -> None:
    if answer.status_code not in (200, 201, 409):
        raise SeedingError(
            f"seeding failed: {answer.request.method} {answer.url} -> {answer.status_code} {answer.text}"
        )
