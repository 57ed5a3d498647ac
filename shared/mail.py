"""The e-mail outbox: mails a service queues in the transaction that causes them.

A mail about a change (a registration to confirm, an invitation, a digest of new forum posts)
must go out exactly when the change happened. Sending it from the request would mail about
changes that then roll back, or lose the mail when the SMTP server is away or the process
dies after the commit. So `queue()` only writes an `outgoing_mail` row in the caller's
session, next to the change: if the transaction commits the mail will go out, if it rolls
back no mail mentions a change that never happened. The service's mailer
(`python -m shared.mailer <service>`, shared/mailer.py) sends the rows after commit.

The table lives in each sending service's own database. Services create it with
`create_table(op)` in a migration (identity's 0002 created it with these very columns
before the table moved here, so its databases need nothing new) and add `metadata` to
their migrations' `extra_metadata`. What a mail says stays in the service (identity/mail.py).

Header values are built here and in the mailer so that no stored value can break a header
(`header_text`): a company name is part of many subjects, and old rows may predate the checks.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert
from sqlalchemy.orm import Session

from shared import names
from shared.db import utc_now

metadata = MetaData()

outgoing_mail = Table(
    "outgoing_mail",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recipient", String(254), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, default=utc_now),
    # NULL until an SMTP server accepted the mail; the mailer looks for these (indexed).
    Column("sent_at", DateTime(timezone=True), index=True),
    Column("attempts", Integer, nullable=False, default=0),
    # Why the last attempt failed; its prefix says the kind (shared/mailer.py).
    Column("last_error", Text),
)


def create_table(op) -> None:
    metadata.create_all(bind=op.get_bind(), checkfirst=False)


SUBJECT_LENGTH = outgoing_mail.c.subject.type.length


def header_text(value: str) -> str:
    """`value` as the text of one header line, whatever it holds: what a name may not hold
    (CR, LF, other control characters, ...) becomes a space, and the start of an RFC 2047
    encoded word (`=?`) is broken up, since the email package would decode one, CR/LF
    included, into the header it writes."""
    return names.one_line(value).replace("=?", "= ?")


def queue(session: Session, recipient: str, subject: str, body: str) -> None:
    """Queue one plain-text mail in `session`'s transaction; it is sent only if that commits.
    The subject is made one line and, past its column's length, shortened."""
    subject = header_text(subject)
    if len(subject) > SUBJECT_LENGTH:
        subject = subject[: SUBJECT_LENGTH - 1].rstrip() + "…"
    session.execute(
        insert(outgoing_mail).values(recipient=recipient, subject=subject, body=body, created_at=utc_now(), attempts=0)
    )
