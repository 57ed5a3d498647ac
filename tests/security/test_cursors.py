"""Paging cursors are the caller's input like any other (security review, finding 10): a
malformed, negative, huge or wrongly shaped cursor is a `400`/`422` problem from every service,
on PostgreSQL and SQLite, never a `500`; the portal starts again from the first page instead
of answering `502`. The cursors the services hand out keep working."""

from __future__ import annotations

import base64
import json

import pytest
from gateway.sessions import COOKIE

from shared import auth
from shared.auth import Principal
from tests.conftest import TEST_SECRET
from tests.forum.conftest import any_forum  # noqa: F401 (fixture)
from tests.licensing.conftest import licensing  # noqa: F401 (fixture)
from tests.licensing.test_partner_sales import either, licensing_on_sqlite  # noqa: F401 (fixtures)
from tests.security.conftest import World, assert_problem


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def forum_cursor(value) -> str:
    return b64(json.dumps(value)).rstrip("=")


OFFSETS = [str(2**63), str(10**30), str(2**31), "-5", "+5", " 5", "5.0", "1e3", "٣", "abc"]
RAW = ["%%%", "=", "AAAA", "é", "x" * 600, b64("5") + "\n"]


@pytest.fixture
def member_with_licenses(either):  # noqa: F811
    number = either.customer("27082440")
    either.member("u-cursor", number)
    for edition in ("Mini", "Jazz", "Standard"):
        body = {"customer_number": number, "product": "ucetnictvi", "edition": edition, "support_until": "2030-01-01"}
        assert either.staff("POST", "/api/v1/admin/licenses", body).status_code == 201
    either.app.testing = False  # an error is answered as in production, never raised into the test
    return either, number


@pytest.mark.parametrize("cursor", [b64(value) for value in OFFSETS] + RAW)
def test_a_bad_license_list_cursor_is_a_client_error(member_with_licenses, cursor):
    api, number = member_with_licenses
    answer = api.client.get(
        f"/api/v1/customers/{number}/licenses",
        query_string={"cursor": cursor},
        headers=api_headers(api, "u-cursor"),
    )
    assert_problem(answer, (400, 422))


def test_the_license_list_cursors_it_gives_out_work(member_with_licenses):
    api, number = member_with_licenses
    seen, cursor = [], None
    while True:
        query = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = api.client.get(
            f"/api/v1/customers/{number}/licenses", query_string=query, headers=api_headers(api, "u-cursor")
        )
        assert page.status_code == 200, page.get_json()
        seen += [item["edition"] for item in page.get_json()["items"]]
        cursor = page.get_json()["next"]
        if cursor is None:
            break
    assert seen == ["Jazz", "Mini", "Standard"]


def api_headers(api, user: str) -> dict:
    return {auth.HEADER: auth.issue(TEST_SECRET, "licensing", Principal(user, kind="user"))}


TOPIC_CURSORS = [
    {"after": 1},  # a posts cursor
    {"as_of": "2026-01-01T00:00:00+00:00"},  # never given out: no position
    {"as_of": 5, "pinned": False, "at": "2026-01-01T00:00:00+00:00", "id": 1},
    {"as_of": "2026-01-01T00:00:00+00:00", "pinned": [], "at": "2026-01-01T00:00:00+00:00", "id": 1},
    {"as_of": "2026-01-01T00:00:00+00:00", "pinned": False, "at": None, "id": 1},
    {"as_of": "2026-01-01T00:00:00+00:00", "pinned": False, "at": "2026-01-01T00:00:00+00:00", "id": 2**40},
    {"as_of": "2026-01-01T00:00:00+00:00", "pinned": False, "at": "2026-01-01T00:00:00+00:00", "id": -1},
    {"as_of": "9999-12-31T23:59:59-14:00", "pinned": False, "at": "2026-01-01T00:00:00+00:00", "id": 1},
    {"as_of": "2026-01-01T00:00:00+00:00", "pinned": False, "at": "0001-01-01T00:00:00+14:00", "id": 1},
    {"as_of": "2026-01-01T00:00:00+00:00", "pinned": False, "at": "2026-01-01T00:00:00+00:00", "id": 1, "x": 1},
    [1],
    "x",
]
POST_CURSORS = [
    {"after": -1},
    {"after": 2**63},
    {"after": 1.5},
    {"after": True},
    {"after": "3"},
    {"after": 1, "x": 2},
    {"as_of": "2026-01-01T00:00:00+00:00"},  # a topics cursor
    {},
]


@pytest.fixture
def forum_world(any_forum):  # noqa: F811
    any_forum.app.testing = False
    category = any_forum.category()
    author = any_forum.person()
    topic = author.topic(category)
    author.reply(topic["id"])
    staff = any_forum.person("Podpora", staff=True)
    return any_forum, category, author, topic["id"], staff


@pytest.mark.parametrize("cursor", TOPIC_CURSORS, ids=range(len(TOPIC_CURSORS)))
def test_a_bad_topics_cursor_is_a_client_error(forum_world, cursor):
    _forum, category, author, _topic, _staff = forum_world
    answer = author.call("GET", f"/api/v1/forum/categories/{category}/topics", query={"cursor": forum_cursor(cursor)})
    assert_problem(answer, (400, 422))


@pytest.mark.parametrize("cursor", POST_CURSORS, ids=range(len(POST_CURSORS)))
def test_a_bad_posts_or_flags_cursor_is_a_client_error(forum_world, cursor):
    _forum, _category, author, topic, staff = forum_world
    assert_problem(author.call("GET", f"/api/v1/forum/topics/{topic}", query={"cursor": forum_cursor(cursor)}), 422)
    assert_problem(staff.call("GET", "/api/v1/admin/forum/flags", query={"cursor": forum_cursor(cursor)}), 422)


def test_the_forum_cursors_it_gives_out_work(forum_world):
    _forum, category, author, topic, _staff = forum_world
    for n in range(3):
        author.topic(category, title=f"Téma {n}")
    titles, cursor = [], None
    while True:
        query = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = author.call("GET", f"/api/v1/forum/categories/{category}/topics", query=query).get_json()
        titles += [item["title"] for item in page["items"]]
        if not (cursor := page["next"]):
            break
    assert len(titles) == 4 and len(set(titles)) == 4
    first = author.call("GET", f"/api/v1/forum/topics/{topic}", query={"limit": 1}).get_json()
    second = author.call("GET", f"/api/v1/forum/topics/{topic}", query={"limit": 1, "cursor": first["next"]})
    assert second.status_code == 200 and len(second.get_json()["posts"]) == 1


@pytest.mark.parametrize("cursor", [b64(str(2**63)), b64("-5"), "%%%"])
def test_the_portal_starts_the_license_list_again_on_a_bad_cursor(world: World, cursor):
    client = world.gateway.test_client()
    client.set_cookie(COOKIE, world.open_session("member"))
    page = client.get(f"/customers/{world.customer}/licenses", query_string={"cursor": cursor, "sort": "product"})
    assert page.status_code == 303, page.get_data(as_text=True)[:300]
    assert page.headers["Location"].endswith(f"/customers/{world.customer}/licenses?sort=product")
    assert client.get(page.headers["Location"]).status_code == 200
