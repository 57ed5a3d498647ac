"""Watching topics and categories: one digest per watcher, real SMTP, PostgreSQL."""

from __future__ import annotations

import re
import threading
from dataclasses import replace

import pytest
from forum.notifier import Notifier

from shared.mailer import Mailer


@pytest.fixture
def mail_out(forum, smtp_inbox):
    """Runs one notifier pass (no batching delay) and sends what it queued to the inbox."""
    settings = replace(forum.app.extensions["settings"], smtp_host="127.0.0.1", smtp_port=smtp_inbox.port)
    notifier = Notifier(settings, delay=0)
    mailer = Mailer(settings, forum.database)

    def deliver(notifier=notifier) -> int:
        digests = notifier.run_once()
        mailer.send_pending()
        return digests

    yield deliver
    notifier.database.dispose()


def _unsubscribe_links(message) -> list[str]:
    body = message.get_body(("plain",)).get_content()
    return re.findall(r"/forum/unsubscribe\?token=(\S+)", body)


def test_each_watcher_gets_one_digest_and_authors_none(forum, smtp_inbox, mail_out):
    category = forum.category()
    jana, petr, eva, karel = (forum.person(n) for n in ("Jana", "Petr", "Eva", "Karel"))
    assert karel.call("PUT", f"/api/v1/forum/categories/{category}/watch").status_code == 204
    topic = jana.topic(category, "Inventura skladu", "Jak na inventuru?")  # Jana watches what she starts
    for n in range(3):
        petr.reply(topic["id"], f"Tip {n}")  # a busy topic: Petr now watches it too
    eva.reply(topic["id"], "Poslední tip")

    assert mail_out() == 3
    assert len(smtp_inbox.to(jana.email)) == 1 and len(smtp_inbox.to(petr.email)) == 1
    assert len(smtp_inbox.to(karel.email)) == 1 and smtp_inbox.to(eva.email) == []
    to_jana = smtp_inbox.to(jana.email)[0]
    assert "(4)" in to_jana["Subject"]
    body = to_jana.get_body(("plain",)).get_content()
    assert "Inventura skladu" in body and "Eva, Petr" in body
    assert f"https://portal.example/forum/topics/{topic['id']}#post-" in body
    assert "(1)" in smtp_inbox.to(petr.email)[0]["Subject"]  # only what came after he joined in
    assert "(5)" in smtp_inbox.to(karel.email)[0]["Subject"]  # the category's new topic and replies

    assert mail_out() == 0 and len(smtp_inbox.messages) == 3  # nothing is mailed twice


def test_digests_wait_for_the_batching_delay(forum, smtp_inbox, mail_out):
    jana, petr = forum.person("Jana"), forum.person("Petr")
    topic = jana.topic(forum.category())
    petr.reply(topic["id"])
    patient = Notifier(forum.app.extensions["settings"], delay=3600)
    assert patient.run_once() == 0  # the note is younger than the delay
    patient.database.dispose()
    assert mail_out() == 1


def test_two_notifiers_at_once_send_each_digest_once(forum, smtp_inbox, mail_out):
    category = forum.category()
    watchers = [forum.person(f"Sledující {n}") for n in range(6)]
    for person in watchers:
        person.call("PUT", f"/api/v1/forum/categories/{category}/watch")
    author = forum.person("Autor")
    for n in range(3):
        author.topic(category, f"Téma {n}")
    settings = forum.app.extensions["settings"]
    notifiers = [Notifier(settings, delay=0) for _ in range(2)]
    counts = []
    threads = [threading.Thread(target=lambda n=n: counts.append(n.run_once())) for n in notifiers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for notifier in notifiers:
        notifier.database.dispose()
    assert sum(counts) == len(watchers)
    assert mail_out() == 0
    assert sorted(len(smtp_inbox.to(p.email)) for p in watchers) == [1] * len(watchers)


def test_the_unsubscribe_link_ends_that_watch_without_signing_in(forum, smtp_inbox, mail_out):
    jana, petr = forum.person("Jana"), forum.person("Petr")
    topic = jana.topic(forum.category(), "Tisk faktur")
    petr.reply(topic["id"])
    mail_out()
    [token] = _unsubscribe_links(smtp_inbox.to(jana.email)[0])

    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert forum.call("POST", "/api/v1/forum/unsubscribe", {"token": forged}).status_code == 404
    ended = forum.call("POST", "/api/v1/forum/unsubscribe", {"token": token})
    assert ended.status_code == 200 and ended.get_json() == {"kind": "topic", "id": topic["id"], "title": "Tisk faktur"}
    assert jana.call("GET", "/api/v1/forum/subscriptions").get_json()["items"] == []

    petr.reply(topic["id"], "Další")
    mail_out()
    assert len(smtp_inbox.to(jana.email)) == 1  # no more mail about it


def test_hidden_posts_and_removed_people_get_no_mail(forum, smtp_inbox, mail_out):
    category = forum.category()
    jana, petr, spammer = forum.person("Jana"), forum.person("Petr"), forum.person("Spammer")
    support = forum.person("Podpora", staff=True)
    topic = jana.topic(category)
    petr.call("PUT", f"/api/v1/forum/topics/{topic['id']}/watch")
    spam = spammer.reply(topic["id"], "Levné hodinky")
    support.call("PATCH", f"/api/v1/admin/forum/posts/{spam['id']}", {"hidden": True})
    forum.announce(petr, active=False)  # Petr left his company meanwhile
    assert mail_out() == 0
    assert smtp_inbox.messages == []


def test_watching_is_listed_and_can_be_ended(forum):
    category = forum.category()
    jana = forum.person("Jana")
    topic = forum.person("Petr").topic(category, "Aktualizace 2027")
    assert jana.call("PUT", f"/api/v1/forum/topics/{topic['id']}/watch").status_code == 204
    assert jana.call("PUT", f"/api/v1/forum/topics/{topic['id']}/watch").status_code == 204  # twice is once
    jana.call("PUT", f"/api/v1/forum/categories/{category}/watch")
    listed = jana.call("GET", "/api/v1/forum/subscriptions").get_json()["items"]
    assert [(s["kind"], s["title"]) for s in listed] == [("category", "POHODA"), ("topic", "Aktualizace 2027")]
    shown = jana.call("GET", f"/api/v1/forum/topics/{topic['id']}").get_json()
    assert shown["watching"] is True and shown["watching_category"] is True
    jana.call("DELETE", f"/api/v1/forum/topics/{topic['id']}/watch")
    shown = jana.call("GET", f"/api/v1/forum/topics/{topic['id']}").get_json()
    assert shown["watching"] is False and shown["watching_category"] is True  # the category still is
    jana.call("DELETE", f"/api/v1/forum/categories/{category}/watch")
    assert jana.call("GET", "/api/v1/forum/subscriptions").get_json()["items"] == []
    assert jana.call("PUT", "/api/v1/forum/topics/999/watch").status_code == 404
