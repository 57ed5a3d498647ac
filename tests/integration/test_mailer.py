"""The shared mailer (shared.mailer) against a real SMTP server (aiosmtpd) and a migrated
identity database, on SQLite and PostgreSQL: what was queued in a committed transaction is
delivered exactly once, what was rolled back never; an SMTP outage or a refused recipient
loses nothing. Any service whose migration calls `shared.mail.create_table(op)` gets the same."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Row, func, select

from shared import mail, migrations
from shared.db import Database
from shared.mail import outgoing_mail
from shared.mailer import Mailer, main
from tests.support import Background, SmtpInbox, wait_until

ROOT = Path(__file__).resolve().parents[2]
SENDER = "Zákaznické centrum <zakaznicke-centrum@example.cz>"
SUBJECT = "Potvrďte registraci do Zákaznického centra / Confirm your registration"
BODY = "Dobrý den, Jiří Čermák,\n\nděkujeme za registraci firmy Žluťoučký kůň s.r.o.\n\nZákaznické centrum\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def identity_url(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'identity.db'}" if request.param == "sqlite" else None
    if url is None:
        url = request.getfixturevalue("new_database")("mailer")
    migrations.upgrade("identity", url)
    return url


@pytest.fixture
def database(identity_url):
    database = Database(identity_url)
    yield database
    database.dispose()


def queue(database: Database, recipient: str, subject: str = SUBJECT, body: str = BODY) -> None:
    with database.unit_of_work() as session:
        mail.queue(session, recipient, subject, body)


def rows(database: Database) -> list[Row]:
    with database.unit_of_work() as session:
        return list(session.execute(select(outgoing_mail).order_by(outgoing_mail.c.id)))


def make_mailer(settings_for, database: Database, port: int, **options) -> Mailer:
    settings = settings_for(
        "identity", database.url, smtp_host="127.0.0.1", smtp_port=port, mail_from=SENDER, **options
    )
    return Mailer(settings, database)


def test_a_queued_mail_is_delivered_intact(settings_for, database, smtp_inbox):
    queue(database, "jiri.cermak@example.com")
    with Background(make_mailer(settings_for, database, smtp_inbox.port)):
        message = smtp_inbox.wait_for("jiri.cermak@example.com")
        wait_until(lambda: rows(database)[0].sent_at is not None, timeout=10)
    assert str(message["To"]) == "jiri.cermak@example.com"
    assert str(message["Subject"]) == SUBJECT
    assert str(message["From"]) == SENDER
    assert message["From"].addresses[0].display_name == "Zákaznické centrum"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == BODY  # CRLF on the wire
    assert message.get_content_charset() == "utf-8"
    assert message["Date"].datetime is not None and message["Message-ID"].endswith("@example.cz>")
    assert not message.defects
    [row] = rows(database)
    assert row.attempts == 0 and row.last_error is None
    assert len(smtp_inbox.messages) == 1


def test_the_message_on_the_wire_is_7bit_with_encoded_headers(settings_for, database):
    queue(database, "jiri.cermak@example.com")
    [row] = rows(database)
    raw = make_mailer(settings_for, database, 25).build_message(row).as_bytes()
    assert raw.isascii()
    headers = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "From: =?utf-8?q?Z=C3=A1kaznick=C3=A9?= centrum <zakaznicke-centrum@example.cz>" in headers
    assert "Content-Transfer-Encoding: quoted-printable" in headers


def test_a_mail_queued_in_a_rolled_back_transaction_is_never_sent(settings_for, database, smtp_inbox):
    with pytest.raises(RuntimeError), database.unit_of_work() as session:
        mail.queue(session, "never@example.com", SUBJECT, BODY)
        session.flush()
        raise RuntimeError("the change failed")
    queue(database, "after@example.com")
    with Background(make_mailer(settings_for, database, smtp_inbox.port)):
        smtp_inbox.wait_for("after@example.com")
        time.sleep(0.5)  # a few more polls
    assert smtp_inbox.to("never@example.com") == []
    assert [row.recipient for row in rows(database)] == ["after@example.com"]


def test_mail_waits_out_an_smtp_outage_and_is_delivered_once(settings_for, database):
    inbox = SmtpInbox()  # its port is chosen (free_port) but nothing listens there yet
    queue(database, "first@example.com")
    queue(database, "second@example.com")
    with Background(make_mailer(settings_for, database, inbox.port)):
        wait_until(lambda: rows(database)[0].attempts >= 2, timeout=10)
        first, second = rows(database)
        assert first.sent_at is None and first.last_error.startswith("unavailable: ")
        assert second.sent_at is None and second.attempts == 0  # the rest stay queued, untouched
        inbox.start()
        try:
            inbox.wait_for("first@example.com", timeout=30)
            inbox.wait_for("second@example.com", timeout=30)
            wait_until(lambda: all(row.sent_at is not None for row in rows(database)), timeout=10)
            time.sleep(0.5)
        finally:
            inbox.stop()
    assert sorted(str(message["To"]) for message in inbox.messages) == ["first@example.com", "second@example.com"]


class RefusingInbox(SmtpInbox):
    """Answers 550 to any recipient at nowhere.example."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@nowhere.example"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_refused_recipient_is_given_up_without_blocking_the_queue(settings_for, database):
    inbox = RefusingInbox().start()
    try:
        queue(database, "nobody@nowhere.example")
        queue(database, "somebody@example.com")
        mailer = make_mailer(settings_for, database, inbox.port)
        mailer.max_attempts = 3
        with Background(mailer):
            inbox.wait_for("somebody@example.com")
            wait_until(lambda: rows(database)[0].attempts >= 3, timeout=20)
            time.sleep(1.5)  # past the back-off: it must not try again
            queue(database, "later@example.com")
            inbox.wait_for("later@example.com")
        refused, somebody, later = rows(database)
        assert refused.attempts == 3 and refused.sent_at is None
        assert refused.last_error.startswith("rejected: recipient refused: 550")
        assert somebody.sent_at is not None and later.sent_at is not None
        assert len(inbox.messages) == 2
    finally:
        inbox.stop()


def counting(mailer, send_pending, sent: dict):
    def wrapped():
        result = send_pending()
        sent[mailer] += result.sent
        return result

    return wrapped


def test_two_mailers_on_postgresql_deliver_each_mail_exactly_once(settings_for, new_database, smtp_inbox):
    url = new_database("mailers")
    migrations.upgrade("identity", url)
    database = Database(url)
    try:
        recipients = [f"customer{number:03d}@example.com" for number in range(100)]
        with database.unit_of_work() as session:
            for recipient in recipients:
                mail.queue(session, recipient, SUBJECT, BODY)
        first = make_mailer(settings_for, database, smtp_inbox.port)
        second = make_mailer(settings_for, Database(url), smtp_inbox.port)
        sent = {first: 0, second: 0}
        for mailer in (first, second):
            mailer.batch_size = 10
            mailer.send_pending = counting(mailer, mailer.send_pending, sent)
        with Background(first), Background(second):
            wait_until(lambda: len(smtp_inbox.messages) >= 100, timeout=60)
            wait_until(lambda: all(row.sent_at is not None for row in rows(database)), timeout=10)
            time.sleep(1)  # any duplicate would arrive now
        second.database.dispose()
        delivered = sorted(str(message["To"]) for message in smtp_inbox.messages)
        assert delivered == recipients
        assert sum(sent.values()) == 100
        assert min(sent.values()) > 0, f"both mailers should have worked side by side: {sent}"
        with database.unit_of_work() as session:
            assert session.scalar(select(func.count()).where(outgoing_mail.c.attempts != 0)) == 0
    finally:
        database.dispose()


def test_the_mailer_touches_its_heartbeat(settings_for, database, smtp_inbox, tmp_path):
    beat = tmp_path / "mailer-heartbeat"
    with Background(make_mailer(settings_for, database, smtp_inbox.port, heartbeat_file=str(beat))):
        wait_until(beat.exists, timeout=10)
        first = beat.stat().st_mtime
        wait_until(lambda: beat.stat().st_mtime > first, timeout=10)  # it keeps beating


def run_mailer_process(service: str, url: str, smtp_inbox, recipient: str):
    """`python -m shared.mailer <service>` as the Procfile runs it, until it delivered to
    `recipient` and then stopped on SIGTERM: (the message, the process's stderr, its exit code)."""
    env = {
        **os.environ,
        f"{service.upper()}_DATABASE_URL": url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_inbox.port),
        "MAIL_FROM": SENDER,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.mailer", service], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        message = smtp_inbox.wait_for(recipient)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return message, stderr, process.returncode


def log_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_python_m_shared_mailer_identity_sends_and_stops_on_sigterm(tmp_path, smtp_inbox):
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    migrations.upgrade("identity", url)
    database = Database(url)
    try:
        queue(database, "process@example.com")
        message, stderr, returncode = run_mailer_process("identity", url, smtp_inbox, "process@example.com")
        assert rows(database)[0].sent_at is not None
    finally:
        database.dispose()
    assert returncode == 0, stderr
    assert str(message["From"]) == SENDER
    assert message["Message-ID"].startswith("<identity.1.")
    lines = log_lines(stderr)
    assert lines and all(line["component"] == "identity-mailer" for line in lines)


def create_with_helper(url: str) -> None:
    """What a service's migration does: `shared.mail.create_table(op)`."""
    database = Database(url)
    try:
        with database.engine.begin() as connection:
            mail.create_table(Operations(MigrationContext.configure(connection)))
    finally:
        database.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_create_table_builds_the_table_identitys_migration_built(backend, request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'other.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("new_database")("mailtable")
    )
    create_with_helper(url)
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), mail.metadata) == []
    finally:
        database.dispose()


def test_another_service_runs_its_own_mailer_on_its_own_table(tmp_path, smtp_inbox):
    """The forum (or any service) queues into its own database; its mailer names itself."""
    url = f"sqlite:///{tmp_path / 'forum.db'}"
    create_with_helper(url)
    database = Database(url)
    try:
        queue(database, "digest@example.com", "Novinky ve fóru / Forum digest", "Nové příspěvky.\n")
        message, stderr, returncode = run_mailer_process("forum", url, smtp_inbox, "digest@example.com")
    finally:
        database.dispose()
    assert returncode == 0, stderr
    assert str(message["Subject"]) == "Novinky ve fóru / Forum digest"
    assert message["Message-ID"].startswith("<forum.1.")
    lines = log_lines(stderr)
    assert lines and all(line["component"] == "forum-mailer" for line in lines)


def test_the_mailer_needs_a_service_name():
    with pytest.raises(SystemExit, match="usage: python -m shared.mailer <service>"):
        main([])
