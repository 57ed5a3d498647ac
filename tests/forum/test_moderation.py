"""Moderation: staff pin, lock, move and hide; users flag. Enforced in the forum service itself."""

from __future__ import annotations


def test_moderation_is_for_staff_only_whatever_the_caller_claims(forum):
    category = forum.category()
    jana = forum.person("Jana")
    topic = jana.topic(category)
    post_id = topic["posts"][0]["id"]
    attempts = [
        ("PATCH", f"/api/v1/admin/forum/topics/{topic['id']}", {"pinned": True}),
        ("PATCH", f"/api/v1/admin/forum/topics/{topic['id']}", {"locked": True}),
        ("PATCH", f"/api/v1/admin/forum/posts/{post_id}", {"hidden": True}),
        ("GET", "/api/v1/admin/forum/flags", None),
        ("POST", "/api/v1/admin/forum/categories", {"name": "Moje"}),
        ("PATCH", f"/api/v1/admin/forum/categories/{category}", {"name": "Moje"}),
        ("POST", "/api/v1/admin/forum/flags/1/resolve", {"action": "hide"}),
    ]
    for method, path, body in attempts:
        assert jana.call(method, path, body).status_code == 403, path
        assert forum.call(method, path, body).status_code == 401, path
    shown = jana.call("GET", f"/api/v1/forum/topics/{topic['id']}").get_json()
    assert not shown["pinned"] and not shown["locked"] and not shown["posts"][0]["hidden"]
    # A non-staff topic author cannot pin by sneaking the field into a public call either.
    sneaky = jana.call("POST", f"/api/v1/forum/topics/{topic['id']}/posts", {"body": "x", "pinned": True})
    assert sneaky.status_code == 422


def test_pinned_topics_come_first_and_locked_ones_take_no_replies(forum):
    category = forum.category()
    jana, petr, support = forum.person("Jana"), forum.person("Petr"), forum.person("Podpora", staff=True)
    rules = jana.topic(category, "Pravidla fóra")
    question = petr.topic(category, "Novější dotaz")
    assert support.call("PATCH", f"/api/v1/admin/forum/topics/{rules['id']}", {"pinned": True}).status_code == 200
    listed = petr.call("GET", f"/api/v1/forum/categories/{category}/topics").get_json()["items"]
    assert [t["id"] for t in listed] == [rules["id"], question["id"]] and listed[0]["pinned"]

    assert support.call("PATCH", f"/api/v1/admin/forum/topics/{question['id']}", {"locked": True}).status_code == 200
    refused = petr.call("POST", f"/api/v1/forum/topics/{question['id']}/posts", {"body": "ještě"})
    assert refused.status_code == 409 and refused.get_json()["type"].endswith("topic-locked")
    own_post = question["posts"][0]["id"]
    assert petr.call("PATCH", f"/api/v1/forum/posts/{own_post}", {"body": "změna"}).status_code == 409
    assert support.reply(question["id"], "Uzavřeno, viz návod.")["author"]["staff"] is True


def test_staff_move_and_rename_topics(forum):
    general, pohoda = forum.category("Obecné", None), forum.category("POHODA", "pohoda")
    jana, support = forum.person("Jana"), forum.person("Podpora", staff=True)
    topic = jana.topic(general, "Dotaz k DPH")
    moved = support.call(
        "PATCH", f"/api/v1/admin/forum/topics/{topic['id']}", {"category_id": pohoda, "title": "DPH v POHODĚ"}
    )
    assert moved.status_code == 200 and moved.get_json()["category_id"] == pohoda
    assert jana.call("GET", f"/api/v1/forum/categories/{general}/topics").get_json()["items"] == []
    assert [t["title"] for t in jana.call("GET", f"/api/v1/forum/categories/{pohoda}/topics").get_json()["items"]] == [
        "DPH v POHODĚ"
    ]
    hits = jana.call("GET", "/api/v1/forum/search", query={"q": "pohode"}).get_json()["items"]
    assert [h["title"] for h in hits] == ["DPH v POHODĚ"]  # the new title is searchable
    bad = support.call("PATCH", f"/api/v1/admin/forum/topics/{topic['id']}", {"category_id": 999})
    assert bad.status_code == 404


def test_hidden_posts_and_topics_disappear_for_users_not_for_staff(forum):
    category = forum.category()
    jana, petr, support = forum.person("Jana"), forum.person("Petr"), forum.person("Podpora", staff=True)
    topic = jana.topic(category, "Reklama zde")
    spam = petr.reply(topic["id"], "Kupte levné hodinky")
    assert support.call("PATCH", f"/api/v1/admin/forum/posts/{spam['id']}", {"hidden": True}).status_code == 200

    shown = jana.call("GET", f"/api/v1/forum/topics/{topic['id']}").get_json()
    assert shown["replies"] == 0
    placeholder = shown["posts"][1]
    assert placeholder["hidden"] and placeholder["body"] == "" and placeholder["body_html"] == ""
    assert jana.call("GET", "/api/v1/forum/search", query={"q": "hodinky"}).get_json()["items"] == []
    assert support.call("GET", f"/api/v1/forum/topics/{topic['id']}").get_json()["posts"][1]["body"]

    assert support.call("PATCH", f"/api/v1/admin/forum/topics/{topic['id']}", {"hidden": True}).status_code == 200
    assert jana.call("GET", f"/api/v1/forum/topics/{topic['id']}").status_code == 404
    assert jana.call("GET", f"/api/v1/forum/categories/{category}/topics").get_json()["items"] == []
    assert support.call("GET", f"/api/v1/forum/topics/{topic['id']}").status_code == 200


def test_users_flag_posts_and_staff_resolve_the_flags(forum):
    category = forum.category()
    jana, petr, eva = forum.person("Jana"), forum.person("Petr"), forum.person("Eva")
    support = forum.person("Podpora", staff=True)
    topic = jana.topic(category, "Licence")
    rude = petr.reply(topic["id"], "Hloupý dotaz")
    fine = eva.reply(topic["id"], "Zkuste aktualizaci")

    first = jana.call("POST", f"/api/v1/forum/posts/{rude['id']}/flags", {"reason": "Urážka"})
    again = jana.call("POST", f"/api/v1/forum/posts/{rude['id']}/flags", {"reason": "Urážka"})
    assert first.status_code == 201 and again.get_json()["id"] == first.get_json()["id"]
    eva.call("POST", f"/api/v1/forum/posts/{rude['id']}/flags", {"reason": "Nevhodné"})
    other = jana.call("POST", f"/api/v1/forum/posts/{fine['id']}/flags", {"reason": "omyl"}).get_json()

    queue = support.call("GET", "/api/v1/admin/forum/flags").get_json()["items"]
    assert [(f["post_id"], f["reason"]) for f in queue] == [
        (rude["id"], "Urážka"),
        (rude["id"], "Nevhodné"),
        (fine["id"], "omyl"),
    ]
    assert queue[0]["flagged_by"]["name"] == "Jana" and queue[0]["post"]["body"] == "Hloupý dotaz"

    hidden = support.call("POST", f"/api/v1/admin/forum/flags/{queue[0]['id']}/resolve", {"action": "hide"})
    assert hidden.status_code == 200 and hidden.get_json()["status"] == "hidden"
    dismissed = support.call("POST", f"/api/v1/admin/forum/flags/{other['id']}/resolve", {"action": "dismiss"})
    assert dismissed.get_json()["status"] == "dismissed"
    assert support.call("GET", "/api/v1/admin/forum/flags").get_json()["items"] == []  # both flags on it resolved
    assert len(support.call("GET", "/api/v1/admin/forum/flags", query={"status": "hidden"}).get_json()["items"]) == 2
    assert jana.call("GET", f"/api/v1/forum/posts/{rude['id']}").status_code == 404
