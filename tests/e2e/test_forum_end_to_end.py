"""The forum through the real gateway and processes: people from identity's events, and
digest mails written by forum-notifier and sent by forum-mailer over real SMTP."""

from __future__ import annotations

import re

import pytest
import requests

from tests.e2e.conftest import STAFF
from tests.e2e.test_identity_end_to_end import administrator_of
from tests.support import SmtpInbox, running_suite, valid_company_id, wait_until


@pytest.fixture(scope="module")
def suite(amqp_url, new_database, tmp_path_factory, mailbox):
    with running_suite(
        amqp_url,
        new_database,
        tmp_path_factory,
        "forum-e2e",
        STAFF,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(mailbox.port),
        FORUM_DIGEST_DELAY="0",  # mail at once: the batching itself is tested in tests/forum
    ) as suite:
        yield suite


def _topic(gateway, headers, topic_id) -> dict:
    return requests.get(f"{gateway}/api/v1/forum/topics/{topic_id}", headers=headers, timeout=10).json()


def test_people_their_names_and_digest_mails_across_the_suite(gateway, staff, mailbox: SmtpInbox):
    category = requests.post(
        f"{gateway}/api/v1/admin/forum/categories", json={"name": "Mzdy", "product": "mzdy"}, headers=staff, timeout=10
    ).json()["id"]
    _, jana = administrator_of(gateway, staff, mailbox, valid_company_id(4101), "Novák a syn s.r.o.", "jana@firma.cz")
    _, petr = administrator_of(gateway, staff, mailbox, valid_company_id(4102), "Stavby Petr a.s.", "petr@stavby.cz")

    started = requests.post(
        f"{gateway}/api/v1/forum/topics",
        json={"category_id": category, "title": "Zálohy na mzdy", "body": "Jak zaúčtovat **zálohy**?"},
        headers=jana,
        timeout=10,
    )
    assert started.status_code == 201, started.text
    topic_id = started.json()["id"]
    wait_until(
        lambda: _topic(gateway, petr, topic_id)["author"]["company_name"] == "Novák a syn s.r.o.",
        message="Jana's company from identity.user.changed",
    )
    for text in ("Účet 333.", "Nebo 335, podle smlouvy."):
        assert (
            requests.post(
                f"{gateway}/api/v1/forum/topics/{topic_id}/posts", json={"body": text}, headers=petr, timeout=10
            ).status_code
            == 201
        )

    digest = mailbox.wait_for("jana@firma.cz", count=2)  # her confirmation mail came first
    assert "Zálohy na mzdy" in digest.get_body(("plain",)).get_content()
    token = re.search(r"/forum/unsubscribe\?token=(\S+)", digest.get_body(("plain",)).get_content()).group(1)
    assert requests.post(f"{gateway}/api/v1/forum/unsubscribe", json={"token": token}, timeout=10).status_code == 200
    assert requests.get(f"{gateway}/api/v1/forum/subscriptions", headers=jana, timeout=10).json()["items"] == []
    assert len(mailbox.to("petr@stavby.cz")) == 1  # only his confirmation: nobody wrote after him

    renamed = requests.patch(f"{gateway}/api/v1/me", json={"name": "Jana Dvořáková"}, headers=jana, timeout=10)
    assert renamed.status_code == 200, renamed.text
    wait_until(
        lambda: _topic(gateway, petr, topic_id)["author"]["name"] == "Jana Dvořáková",
        message="the new name in the forum",
    )
