"""The mailer: sends the e-mails a service queued in its `outgoing_mail` table, losing none.

Run one beside each service that sends mail: `python -m shared.mailer <service>` (several at
once on PostgreSQL). It reads the service's own database (`<SERVICE>_DATABASE_URL`).
`shared.mail.queue()` writes a row in the transaction that causes the mail, so a mail exists
exactly when its change was committed; this process hands each row to the SMTP server
(`SMTP_HOST`:`SMTP_PORT`, from `MAIL_FROM`) and sets `sent_at` only after the server accepted
it. It is modelled on the outbox relay (shared/relay.py): back-off while the server is away,
a heartbeat while the loop turns, a clean stop on SIGTERM/SIGINT.

Claiming. Each mail is claimed in its own short transaction, oldest first
(`SELECT ... ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED` on PostgreSQL, so several mailers
never send the same row at once), sent, marked and committed before the next one; one SMTP
connection carries a whole pass of up to `batch_size` mails. Committing per mail rather than
per batch means a crash between "the server accepted it" and "sent_at is committed" can
repeat at most that one mail (a mail is sent at least once, never zero times), and on SQLite
the write lock is held for one UPDATE, never across SMTP round trips. Several mailers on one
SQLite file could send a mail twice (SQLite has no row locks); run one there, as the Procfile
does.

Failures. Every failed attempt adds 1 to `attempts` and says why in `last_error`, whose
prefix tells the kind:
- `unavailable:` the server could not be talked to (refused or lost connection, timeout,
  421, our sender refused, ...). Nothing about this mail is wrong: the pass stops, the rest
  stay queued untouched, and the mailer backs off (shared.amqp.Backoff) and tries again for
  as long as the outage lasts. Such failures never give a mail up.
- `deferred:` the server answered 4xx to this mail's recipient or content: retried like the
  above, but the pass goes on with the other mails.
- `rejected:` the server answered 5xx to this mail's recipient or content (or the row cannot
  be made into a message, e.g. an address the email package cannot parse; a subject is always
  made one line, `shared.mail.header_text`). The pass goes on with the other mails; the row
  is retried after the back-off, and once it has `MAX_ATTEMPTS` attempts with a rejection as
  its last error the mailer gives it up: logs an error and skips it from then on, so one bad
  address never blocks the queue.

A given-up mail keeps `sent_at` NULL on purpose: `sent_at` means "a server accepted it", and
a mail nobody accepted must not look delivered. Nothing is deleted and the schema gains
nothing: the row stays as the record of what was not delivered and why. Given-up mails are
`sent_at IS NULL AND attempts >= 10 AND last_error LIKE 'rejected:%'`; after fixing the
cause, `UPDATE outgoing_mail SET attempts = 0 WHERE id = ...` queues one again.
"""

from __future__ import annotations

import logging
import signal
import smtplib
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

from sqlalchemy import and_, func, not_, select, update

from shared import amqp, logs
from shared.config import Settings
from shared.db import Database, as_utc
from shared.heartbeat import Heartbeat
from shared.mail import header_text, outgoing_mail

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
POLL_INTERVAL = 0.2  # seconds between looks at the queue when it is empty (mail is not urgent)
SMTP_TIMEOUT = 30.0  # seconds for one SMTP command; below HEARTBEAT_MAX_AGE's default of 60
REJECTED = "rejected: "
DEFERRED = "deferred: "
UNAVAILABLE = "unavailable: "


class MailServerUnavailable(Exception):
    """The SMTP server could not be talked to; the pass stopped and the mailer backs off."""


@dataclass
class Pass:
    sent: int = 0  # accepted by the server
    failed: int = 0  # deferred or rejected (the pass went on)
    full: bool = False  # it stopped at batch_size: more may be waiting


class Mailer:
    def __init__(
        self,
        settings: Settings,
        database: Database | None = None,
        batch_size: int = 50,
        poll_interval: float = POLL_INTERVAL,
        max_attempts: int = MAX_ATTEMPTS,
    ):
        self.settings = settings
        self._owns_database = database is None
        self.database = database or Database(settings.database_url)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.stopping = threading.Event()
        self.heartbeat = Heartbeat(settings.heartbeat_file)
        self._smtp: smtplib.SMTP | None = None
        self.envelope_from = parseaddr(settings.mail_from)[1]
        domain = self.envelope_from.rpartition("@")[2] or "localhost"
        self._message_id_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
        # A From that cannot be a header would fail every mail alike: refuse to start instead.
        EmailMessage(policy=SMTP_POLICY)["From"] = settings.mail_from

    # --- the message --------------------------------------------------------------------
    def build_message(self, row) -> EmailMessage:
        """The e-mail for one `outgoing_mail` row: UTF-8 plain text; non-ASCII headers (the
        sender's name "Zákaznické centrum", Czech subjects) are RFC 2047 encoded and the body is
        quoted-printable, so the message is 7-bit and needs no 8BITMIME from the server.
        Date is when the mail was queued and Message-ID derives from the service and the row,
        so a mail sent twice (a crash after the server accepted it) is recognisably the same
        mail, and two services' mails with the same row id never share one."""
        message = EmailMessage(policy=SMTP_POLICY)
        message["From"] = self.settings.mail_from
        message["To"] = row.recipient
        message["Subject"] = header_text(row.subject)  # rows queued before subjects were made one line
        created = as_utc(row.created_at)
        message["Date"] = format_datetime(created)
        stamp = f"{created:%Y%m%d%H%M%S%f}"
        message["Message-ID"] = f"<{self.settings.service}.{row.id}.{stamp}@{self._message_id_domain}>"
        message.set_content(row.body, charset="utf-8", cte="quoted-printable")  # 7-bit safe
        return message

    # --- SMTP ---------------------------------------------------------------------------
    def _open_smtp(self) -> smtplib.SMTP:
        if self._smtp is None:
            smtp = smtplib.SMTP(self.settings.smtp_host, self.settings.smtp_port, timeout=SMTP_TIMEOUT)
            try:
                smtp.ehlo()
            except BaseException:
                smtp.close()
                raise
            self._smtp = smtp
        return self._smtp

    def _close_smtp(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except Exception:  # the server may be gone already; the socket is closed either way
            smtp.close()

    def _deliver(self, row) -> str | None:
        """Hand one mail to the server: None when it accepted it, else why this mail failed
        (`rejected: ...` or `deferred: ...`; the connection stays usable). Raises
        MailServerUnavailable when the server cannot be talked to at all."""
        try:
            message = self.build_message(row)
        except Exception as error:  # e.g. a line break in the address; the email package raises many kinds
            return f"{REJECTED}cannot build the message: {_describe(error)}"
        try:
            smtp = self._open_smtp()
            smtp.send_message(message, from_addr=self.envelope_from, to_addrs=[row.recipient])
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            return self._refusal(code, reply, "recipient refused")
        except smtplib.SMTPDataError as error:
            return self._refusal(error.smtp_code, error.smtp_error, "message refused")
        except smtplib.SMTPNotSupportedError as error:  # a non-ASCII address, no SMTPUTF8 there
            return f"{REJECTED}{error}"
        except ValueError as error:  # the message cannot be encoded; nothing was sent yet
            return f"{REJECTED}cannot encode the message: {error}"
        except OSError as error:  # smtplib.SMTPException included: refused, lost, timed out
            self._close_smtp()
            raise MailServerUnavailable(_describe(error)) from error
        except Exception as error:  # the email package failed to write it: this mail's fault, not the server's
            self._close_smtp()  # in whatever state the conversation was left
            return f"{REJECTED}cannot write the message: {_describe(error)}"
        return None

    def _refusal(self, code: int, reply: bytes | str, what: str) -> str:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        detail = f"{what}: {code} {text}"
        if code == 421:  # "service not available, closing channel": the server, not this mail
            self._close_smtp()
            raise MailServerUnavailable(detail)
        return (REJECTED if 500 <= code < 600 else DEFERRED) + detail

    # --- one pass -----------------------------------------------------------------------
    def _sendable(self):
        given_up = and_(
            outgoing_mail.c.attempts >= self.max_attempts,
            func.coalesce(outgoing_mail.c.last_error, "").startswith(REJECTED),
        )
        return and_(outgoing_mail.c.sent_at.is_(None), not_(given_up))

    def send_pending(self) -> Pass:
        """Send up to batch_size queued mails over one SMTP connection, each claimed and
        marked in its own transaction. Raises MailServerUnavailable (after recording the
        attempt on the mail it was sending) when the server cannot be reached."""
        result = Pass()
        last_id = 0
        unavailable: MailServerUnavailable | None = None
        try:
            for _ in range(self.batch_size):
                if self.stopping.is_set():
                    return result
                self.heartbeat.beat()
                with self.database.engine.connect() as connection, connection.begin():
                    row = connection.execute(
                        select(
                            outgoing_mail.c.id,
                            outgoing_mail.c.recipient,
                            outgoing_mail.c.subject,
                            outgoing_mail.c.body,
                            outgoing_mail.c.created_at,
                            outgoing_mail.c.attempts,
                        )
                        .where(self._sendable(), outgoing_mail.c.id > last_id)
                        .order_by(outgoing_mail.c.id)
                        .limit(1)
                        .with_for_update(skip_locked=True)
                    ).first()
                    if row is None:
                        return result
                    last_id = row.id
                    try:
                        error = self._deliver(row)
                    except MailServerUnavailable as failure:
                        unavailable = failure
                        error = UNAVAILABLE + str(failure)
                    if error is None:
                        connection.execute(
                            update(outgoing_mail).where(outgoing_mail.c.id == row.id).values(sent_at=datetime.now(UTC))
                        )
                        result.sent += 1
                        log.info("sent mail %s", row.id)
                    else:
                        self._record_failure(connection, row, error)
                if unavailable is not None:
                    raise unavailable
                if error is not None:
                    result.failed += 1
            result.full = True
            return result
        finally:
            self._close_smtp()

    def _record_failure(self, connection, row, error: str) -> None:
        attempts = row.attempts + 1
        connection.execute(
            update(outgoing_mail)
            .where(outgoing_mail.c.id == row.id)
            .values(attempts=outgoing_mail.c.attempts + 1, last_error=error[:2000])
        )
        if error.startswith(REJECTED) and attempts >= self.max_attempts:
            log.error(
                "gave up on mail %s to %s after %d attempts (kept unsent in outgoing_mail): %s",
                row.id,
                row.recipient,
                attempts,
                error,
            )
        elif not error.startswith(UNAVAILABLE):
            log.warning("mail %s to %s failed (attempt %d), will retry: %s", row.id, row.recipient, attempts, error)

    # --- the loop -----------------------------------------------------------------------
    def run_forever(self) -> None:
        backoff = amqp.Backoff()
        log.info(
            "mailer for %s started: %s:%s", self.settings.service, self.settings.smtp_host, self.settings.smtp_port
        )
        try:
            while not self.stopping.is_set():
                self.heartbeat.beat()
                try:
                    result = self.send_pending()
                except Exception as error:
                    # Mail server or database away: what was not accepted stays queued, so wait
                    # and go again. Anything else is logged with its trace and retried the same way.
                    delay = backoff.next_delay()
                    if isinstance(error, MailServerUnavailable):
                        log.warning("mail server unavailable (%s); retrying in %.1fs", error, delay)
                    else:
                        log.warning(
                            "mailer pass failed (%s: %s); retrying in %.1fs",
                            type(error).__name__,
                            error,
                            delay,
                            exc_info=True,
                        )
                    self.stopping.wait(delay)
                    continue
                if result.failed:
                    # Some mails were refused: give the server (and them) time before the retry.
                    self.stopping.wait(backoff.next_delay())
                    continue
                backoff.reset()
                if not result.full:
                    self.stopping.wait(self.poll_interval)
        finally:
            self._close_smtp()
            if self._owns_database:
                self.database.dispose()
        log.info("mailer stopped")

    def stop(self, *_args) -> None:
        self.stopping.set()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: python -m shared.mailer <service>")
    service = argv[0]
    logs.configure(f"{service}-mailer")
    mailer = Mailer(Settings.from_env(service))
    signal.signal(signal.SIGTERM, mailer.stop)
    signal.signal(signal.SIGINT, mailer.stop)
    mailer.run_forever()


if __name__ == "__main__":
    main()
