"""The forum's API on a real database, with people as identity's events describe them."""

from __future__ import annotations

import json
import uuid

import pytest
from forum.app import create_app
from forum.handlers import HANDLERS

from shared import auth, migrations
from shared.auth import Principal
from shared.consumer import EventConsumer
from shared.events import new_envelope
from tests.conftest import TEST_SECRET


class Person:
    def __init__(self, forum: ForumApi, user_id: str, name: str, email: str, staff: bool):
        self.forum, self.id, self.name, self.email, self.staff = forum, user_id, name, email, staff

    def call(self, method, path, body=None, **kwargs):
        return self.forum.call(method, path, body, person=self, **kwargs)

    def topic(self, category_id: int, title: str = "Jak zaúčtovat zálohu?", body: str = "Dotaz") -> dict:
        answer = self.call("POST", "/api/v1/forum/topics", {"category_id": category_id, "title": title, "body": body})
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()

    def reply(self, topic_id: int, body: str = "Odpověď") -> dict:
        answer = self.call("POST", f"/api/v1/forum/topics/{topic_id}/posts", {"body": body})
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()


class ForumApi:
    def __init__(self, app):
        self.app = app
        self.database = app.extensions["database"]
        self.consumer = EventConsumer(app.extensions["settings"], HANDLERS, self.database)
        self.versions: dict[str, int] = {}

    def call(self, method, path, body=None, person: Person | None = None, query=None):
        if person is None:
            principal = Principal("anonymous", kind="anonymous", client="198.51.100.9")
        else:
            principal = Principal(person.id, email=person.email, name=person.name, staff=person.staff)
        headers = {auth.HEADER: auth.issue(TEST_SECRET, "forum", principal)}
        # A client per call: tests may call from several threads at once.
        return self.app.test_client().open(path, method=method, json=body, headers=headers, query_string=query)

    def person(self, name="Jana Nováková", company="Účetnictví Novák s.r.o.", staff=False, announce=True) -> Person:
        person = Person(self, str(uuid.uuid4()), name, f"{uuid.uuid4().hex[:8]}@example.cz", staff)
        if announce:
            self.announce(person, company=company)
        return person

    def announce(self, person: Person, company: str | None = None, active: bool = True, version: int | None = None):
        """What identity would publish about `person` (identity.user.changed)."""
        self.versions[person.id] = version or self.versions.get(person.id, 0) + 1
        data = {
            "user_id": person.id,
            "name": person.name,
            "email": person.email,
            "company_name": company,
            "staff": person.staff,
            "active": active,
            "version": self.versions[person.id],
        }
        envelope = new_envelope("identity.user.changed", data, "identity", None)
        self.consumer.apply(json.dumps(envelope, default=str).encode())

    def category(self, name="POHODA", product="pohoda") -> int:
        staff = Person(self, "staff-seed", "Podpora", "podpora@example.cz", True)
        answer = staff.call("POST", "/api/v1/admin/forum/categories", {"name": name, "product": product})
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()["id"]


def _forum(url: str, settings_for, monkeypatch) -> ForumApi:
    monkeypatch.setenv("FORUM_POST_LIMIT", "1000/60")
    migrations.upgrade("forum", url)
    return ForumApi(create_app(settings_for("forum", url, public_url="https://portal.example")))


@pytest.fixture
def forum(new_database, settings_for, monkeypatch):
    """The forum on PostgreSQL, as operators run it."""
    api = _forum(new_database("forum"), settings_for, monkeypatch)
    yield api
    api.database.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def any_forum(request, new_database, settings_for, monkeypatch, tmp_path):
    """The forum on both engines it supports (search differs most between them)."""
    url = new_database("forum") if request.param == "postgresql" else f"sqlite:///{tmp_path / 'forum.db'}"
    api = _forum(url, settings_for, monkeypatch)
    yield api
    api.database.dispose()
