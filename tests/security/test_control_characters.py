"""Control characters in names, and mail headers that no stored value can break (security
review, finding 11). A company name with CR/LF from a partner used to make every mail that
carries it in its subject unbuildable: such names are now refused wherever a partner, staff or
a user sets one, and the mailer builds headers so that no value, old rows included, splits a
header, smuggles one in (an RFC 2047 encoded word decoding to CR/LF) or holds up the queue."""

from __future__ import annotations

import time

import pytest
from licensing.importer import import_file
from sqlalchemy import insert, select

from shared import mail, migrations
from shared.db import Database, utc_now
from shared.mail import outgoing_mail
from shared.mailer import Mailer
from shared.names import NOT_IN_NAMES
from tests.distribution.conftest import distribution  # noqa: F401 (fixture)
from tests.forum.conftest import forum  # noqa: F401 (fixture)
from tests.identity.conftest import identity  # noqa: F401 (fixture)
from tests.licensing.conftest import ADDRESS, PRODUCT, licensing  # noqa: F401 (fixture)
from tests.security.conftest import assert_problem
from tests.support import Background, SmtpInbox, valid_company_id, wait_until

BAD = {
    "CR LF": "Firma\r\nBcc: evil@example.com",
    "LF": "Firma\ns.r.o.",
    "escape": "Firma \x1b[31ms.r.o.",
    "NEL": "Firma\x85s.r.o.",
    "line separator": "Firma\u2028s.r.o.",
    "right-to-left override": "Firma \u202es.r.o.",
    "DEL": "Firma\x7f",
}


def refused(answer, field: str) -> None:
    body = assert_problem(answer, 422)
    assert any(field in error["field"] for error in body.get("errors") or []), body


@pytest.mark.parametrize("text", BAD.values(), ids=BAD.keys())
def test_licensing_refuses_control_characters_in_every_name(licensing, text):  # noqa: F811
    company = valid_company_id(4440001)
    customer = {"company_id": company, "company_name": text, "billing_address": ADDRESS}
    refused(licensing.staff("POST", "/api/v1/admin/customers", customer), "company_name")
    refused(
        licensing.staff(
            "POST",
            "/api/v1/admin/customers",
            customer | {"company_name": "Firma", "billing_address": ADDRESS | {"street": text}},
        ),
        "street",
    )
    number = licensing.customer(company)
    refused(licensing.staff("PATCH", f"/api/v1/admin/customers/{number}", {"company_name": text}), "company_name")
    refused(licensing.staff("POST", "/api/v1/admin/products", PRODUCT | {"code": "jiny", "name": text}), "name")
    refused(
        licensing.staff("POST", "/api/v1/admin/products", PRODUCT | {"code": "jiny", "editions": [text]}), "editions"
    )
    refused(licensing.staff("POST", "/api/v1/admin/products", PRODUCT | {"code": "jiny", "add_ons": [text]}), "add_ons")
    refused(licensing.staff("POST", "/api/v1/admin/partners", {"name": text}), "name")

    key = licensing.partner()
    sale = {
        "partner_sale_id": "S-1",
        "customer": {"company_id": valid_company_id(4440002), "company_name": text, "billing_address": ADDRESS},
        "product": "ucetnictvi",
        "edition": "Jazz",
        "add_ons": [],
        "seats": 1,
        "sold_on": "2026-11-20",
    }
    refused(licensing.sell(key, "k-1", sale), "company_name")
    refused(
        licensing.sell(
            key, "k-2", sale | {"partner_sale_id": text, "customer": sale["customer"] | {"company_name": "Firma"}}
        ),
        "partner_sale_id",
    )
    assert len(licensing.events("licensing.customer.created")) == 1  # the one valid customer


def test_the_importer_refuses_a_company_name_with_a_line_break(licensing, tmp_path):  # noqa: F811
    source = tmp_path / "sales.csv"
    source.write_text(
        "company_id,company_name,street,city,postal_code,product,edition\n"
        f'{valid_company_id(4440003)},"Firma\ns.r.o.",Dlouhá 1,Praha,11000,ucetnictvi,Jazz\n'
        f"{valid_company_id(4440004)},Firma\u2028s.r.o.,Dlouhá 1,Praha,11000,ucetnictvi,Jazz\n",
        encoding="utf-8",
    )
    result = import_file(licensing.database, source)
    assert [(r.line, r.column) for r in result.rejected] == [(2, "company_name"), (4, "company_name")]


@pytest.mark.parametrize("text", BAD.values(), ids=BAD.keys())
def test_identity_refuses_control_characters_in_names_and_addresses(identity, text):  # noqa: F811
    admin = identity.administrator()
    refused(identity.call("PATCH", "/api/v1/me", {"name": text}, user=admin), "name")
    for field in ("street", "city", "postal_code"):
        address = {"street": "Dlouhá 1", "city": "Praha", "postal_code": "11000", field: text}
        body = {"billing_address": address, "delivery_address": address}
        refused(identity.call("PUT", "/api/v1/customers/100001/addresses", body, user=admin), field)


@pytest.mark.parametrize("text", BAD.values(), ids=BAD.keys())
def test_distribution_refuses_control_characters_in_titles(distribution, text):  # noqa: F811
    news = {"kind": "news", "title": text, "body": "Nová verze je venku."}
    refused(distribution.staff("POST", "/api/v1/admin/news", news), "title")
    refused(distribution.staff("POST", "/api/v1/admin/documents", {"title": text}), "title")


@pytest.mark.parametrize("text", BAD.values(), ids=BAD.keys())
def test_the_forum_refuses_control_characters_in_titles_and_names(forum, text):  # noqa: F811
    category = forum.category()
    author = forum.person()
    staff = forum.person("Podpora", staff=True)
    topic = {"category_id": category, "title": f"Dotaz {text}", "body": "Text\nna více řádků je v pořádku."}
    refused(author.call("POST", "/api/v1/forum/topics", topic), "title")
    refused(staff.call("POST", "/api/v1/admin/forum/categories", {"name": text}), "name")
    refused(staff.call("PATCH", f"/api/v1/admin/forum/categories/{category}", {"name": text}), "name")
    made = author.topic(category)
    refused(staff.call("PATCH", f"/api/v1/admin/forum/topics/{made['id']}", {"title": f"Dotaz {text}"}), "title")


# --- mail headers ---------------------------------------------------------------------------
class Inbox(SmtpInbox):
    """An SMTP server that also keeps each mail's envelope recipients."""

    def __init__(self):
        super().__init__()
        self.envelopes: list[list[str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(list(envelope.rcpt_tos))
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def mail_database(new_database):
    url = new_database("mail_headers")
    migrations.upgrade("identity", url)
    database = Database(url)
    yield database
    database.dispose()


@pytest.fixture
def inbox():
    inbox = Inbox().start()
    yield inbox
    inbox.stop()


def mailer(settings_for, database: Database, port: int) -> Mailer:
    settings = settings_for("identity", database.url, smtp_host="127.0.0.1", smtp_port=port)
    return Mailer(settings, database, max_attempts=3)


def stored(database: Database, recipient: str, subject: str) -> None:
    """A row as an older release queued it, before subjects were made one line."""
    with database.unit_of_work() as session:
        session.execute(
            insert(outgoing_mail).values(
                recipient=recipient, subject=subject, body="Dobrý den.\n", created_at=utc_now(), attempts=0
            )
        )


def test_an_old_subject_with_a_line_break_is_sent_on_one_line(settings_for, mail_database, inbox):
    stored(mail_database, "jana@example.com", "Pozvánka: Firma\r\nBcc: evil@example.com\r\n")
    with Background(mailer(settings_for, mail_database, inbox.port)):
        message = inbox.wait_for("jana@example.com")
    assert str(message["Subject"]) == "Pozvánka: Firma Bcc: evil@example.com"
    assert message["Bcc"] is None and inbox.envelopes == [["jana@example.com"]]


@pytest.mark.parametrize(
    "company",
    ["=?utf-8?q?Firma=0D=0ABcc:_evil@example.com?=", "Firma =?utf-8?b?QQ0KQmNjOiBldmlsQGV4YW1wbGUuY29t?= s.r.o."],
)
def test_an_encoded_word_cannot_smuggle_a_header_in(settings_for, mail_database, inbox, company):
    with mail_database.unit_of_work() as session:
        mail.queue(session, "jana@example.com", f"Pozvánka do Zákaznického centra: {company}", "Dobrý den.\n")
    with Background(mailer(settings_for, mail_database, inbox.port)):
        message = inbox.wait_for("jana@example.com")
    assert message["Bcc"] is None, message.as_string()[:500]
    assert "\n" not in str(message["Subject"]) and "\r" not in str(message["Subject"])
    assert "Firma" in str(message["Subject"]) and inbox.envelopes == [["jana@example.com"]]


@pytest.mark.parametrize("recipient", ['"', "jana@[1", "jana@example.com\r\nBcc: evil@example.com"])
def test_a_mail_that_cannot_be_built_is_set_aside_and_the_rest_go_out(settings_for, mail_database, inbox, recipient):
    stored(mail_database, recipient, "Pozvánka")
    stored(mail_database, "petr@example.com", "Pozvánka")
    with Background(mailer(settings_for, mail_database, inbox.port)):
        inbox.wait_for("petr@example.com", timeout=20)
        wait_until(lambda: rows(mail_database)[0].attempts >= 3, timeout=30)
        time.sleep(0.5)
    bad, good = rows(mail_database)
    assert good.sent_at is not None
    assert bad.sent_at is None and bad.attempts == 3 and bad.last_error.startswith("rejected: ")


def rows(database: Database) -> list:
    with database.unit_of_work() as session:
        return list(session.execute(select(outgoing_mail).order_by(outgoing_mail.c.id)))


def test_a_subject_longer_than_its_column_is_shortened_not_refused(mail_database):
    company = "Velmi dlouhý název firmy " * 8
    with mail_database.unit_of_work() as session:
        mail.queue(session, "jana@example.com", f"Potvrďte přidání firmy {company} / Confirm adding {company}", "Text")
    [row] = rows(mail_database)
    assert len(row.subject) <= 300 and row.subject.startswith("Potvrďte přidání firmy Velmi")
    assert not NOT_IN_NAMES.search(row.subject)
