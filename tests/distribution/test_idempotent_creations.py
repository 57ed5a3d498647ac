"""Distribution's POSTs that create something take an Idempotency-Key (api.md "Retries (every
write)", shared.idempotency), on PostgreSQL: staff's news, documents and releases are made once."""

from __future__ import annotations

import pytest
from distribution.models import Document, NewsItem, Release
from sqlalchemy import func, select

from tests.support import assert_idempotent_creation


def _news(title):
    return {"kind": "news", "title": title, "body": "…", "published_at": "2026-03-01T10:00:00+01:00"}


def _release(version):
    return {"product": "ucetnictvi", "version": version, "kind": "full", "released_on": "2026-01-01"}


CASES = {
    "news": ("/api/v1/admin/news", _news("Nová verze"), _news("Školení"), NewsItem),
    "documents": (
        "/api/v1/admin/documents",
        {"title": "Příručka", "description": "Návod"},
        {"title": "Ceník", "description": "2027"},
        Document,
    ),
    "releases": ("/api/v1/admin/releases", _release("1.0"), _release("1.1"), Release),
}


@pytest.mark.parametrize("name", CASES)
def test_staff_creations_with_an_idempotency_key_are_made_once(distribution, name):
    path, body, other_body, model = CASES[name]

    def send(user, request, key):
        return distribution.call(
            "POST", request[0], request[1], user=user, staff=True, headers={"Idempotency-Key": key}
        )

    def count() -> int:
        with distribution.database.unit_of_work() as session:
            return session.scalar(select(func.count()).select_from(model))

    figures = assert_idempotent_creation(send, count, (path, body), (path, other_body), "staff-1", "staff-2")
    print(f"\nidempotent [{name}]: {figures}")
