"""The forum's POSTs that create something take an Idempotency-Key (api.md "Retries (every
write)", shared.idempotency), on PostgreSQL and on SQLite (`make run`'s database): categories,
topics, replies and flags are made once, however often they are sent."""

from __future__ import annotations

import pytest
from forum.models import Category, Flag, Post, Topic
from sqlalchemy import func, select

from shared import auth
from shared.auth import Principal
from tests.conftest import TEST_SECRET
from tests.support import assert_idempotent_creation


def _sender(forum):
    def send(person, request, key):
        path, body = request
        principal = Principal(person.id, email=person.email, name=person.name, staff=person.staff)
        headers = {auth.HEADER: auth.issue(TEST_SECRET, "forum", principal), "Idempotency-Key": key}
        return forum.app.test_client().post(path, json=body, headers=headers)

    return send


def _counter(forum, model):
    def count() -> int:
        with forum.database.unit_of_work() as session:
            return session.scalar(select(func.count()).select_from(model))

    return count


def categories(forum):
    staff = [forum.person(f"Podpora {n}", staff=True) for n in (1, 2)]
    path = "/api/v1/admin/forum/categories"
    requests = [(path, {"name": name, "product": "pohoda"}) for name in ("Mzdy", "Sklad")]
    return staff, requests[0], requests[1], None, Category


def topics(forum):
    category = forum.category()
    people = [forum.person("Jana Nováková"), forum.person("Petr Dvořák")]
    path = "/api/v1/forum/topics"
    requests = [(path, {"category_id": category, "title": title, "body": "Dotaz"}) for title in ("Záloha", "DPH")]
    return people, requests[0], requests[1], None, Topic


def replies(forum):
    category = forum.category()
    people = [forum.person("Jana Nováková"), forum.person("Petr Dvořák")]
    topic = people[0].topic(category)
    path = f"/api/v1/forum/topics/{topic['id']}/posts"
    return people, (path, {"body": "Odpověď"}), (path, {"body": "Jiná odpověď"}), None, Post


def flags(forum):
    category = forum.category()
    author = forum.person("Autor")
    topic = author.topic(category)
    posts = [author.reply(topic["id"], body)["id"] for body in ("Reklama", "Spam")]
    people = [forum.person("Jana Nováková"), forum.person("Petr Dvořák")]
    requests = [(f"/api/v1/forum/posts/{post}/flags", {"reason": "spam"}) for post in posts]
    return people, requests[0], requests[1], None, Flag


@pytest.mark.parametrize("case", [categories, topics, replies, flags], ids=lambda case: case.__name__)
def test_forum_creations_with_an_idempotency_key_are_made_once(any_forum, case):
    (caller, stranger), request, other_request, stranger_request, model = case(any_forum)
    figures = assert_idempotent_creation(
        _sender(any_forum),
        _counter(any_forum, model),
        request,
        other_request,
        caller,
        stranger,
        stranger_request=stranger_request,
    )
    print(f"\nidempotent [{case.__name__}, {any_forum.database.engine.dialect.name}]: {figures}")


def test_ten_concurrent_requests_with_one_key_make_one_topic(any_forum):
    import threading

    category = any_forum.category()
    jana = any_forum.person("Jana Nováková")
    request = ("/api/v1/forum/topics", {"category_id": category, "title": "Záloha", "body": "Dotaz"})
    send, answers, barrier = _sender(any_forum), [], threading.Barrier(10)

    def post():
        barrier.wait()
        answers.append(send(jana, request, "one-key"))

    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [a.status_code for a in answers] == [201] * 10
    assert len({a.get_data() for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 9
    assert _counter(any_forum, Topic)() == 1
