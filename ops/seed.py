"""Demo data for `make run`, loaded through the public API as the staff account, so it takes
the same path (and raises the same events) as an operator's work. Safe to run again: what
exists already answers 409 and is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    {"name": "Účetnictví a daně", "description": "Podvojné účetnictví, DPH, daňová evidence.", "position": 1},
    {"name": "Mzdy a personalistika", "description": "Mzdy, pojištění, personální agenda.", "position": 2},
    {"name": "Sklady a fakturace", "description": "Zásoby, prodejky, fakturace, e-shop.", "position": 3},
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


def seed(gateway_url: str, staff_email: str, staff_password: str) -> dict[str, str]:
    """Load the demo data; returns company name -> customer number."""
    http = requests.Session()
    signed_in = http.post(
        f"{gateway_url}/api/v1/sessions", json={"email": staff_email, "password": staff_password}, timeout=30
    )
    signed_in.raise_for_status()
    http.headers["Authorization"] = f"Bearer {signed_in.json()['token']}"

    numbers = {}
    for customer in CUSTOMERS:
        answer = http.post(f"{gateway_url}/api/v1/admin/customers", json=customer, timeout=30)
        _expect(answer)
        numbers[customer["company_name"]] = answer.json()["customer_number"]
    for category in FORUM_CATEGORIES:
        _expect(http.post(f"{gateway_url}/api/v1/admin/forum/categories", json=category, timeout=30))
    existing = {item["title"] for item in http.get(f"{gateway_url}/api/v1/news", timeout=30).json()["items"]}
    for item in news_items(datetime.now(UTC)):
        if item["title"] not in existing:
            _expect(http.post(f"{gateway_url}/api/v1/admin/news", json=item, timeout=30))
    http.delete(f"{gateway_url}/api/v1/sessions/current", timeout=30)
    return numbers


def _expect(answer: requests.Response) -> None:
    if answer.status_code not in (200, 201, 409):
        raise RuntimeError(
            f"seeding failed: {answer.request.method} {answer.url} -> {answer.status_code} {answer.text}"
        )
