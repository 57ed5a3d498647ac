"""`python -m licensing.partner_inbox`: partners' sales published over RabbitMQ.

A partner's system may publish a sale, the same JSON body as `POST /api/v1/partner/sales`, to
the fanout exchange `cc.partner-sales` with a broker user of its own that may write to that
exchange only (the README shows operators how to make one). The message lands in the quorum
queue `licensing.partner-sales`, which this process consumes with the suite's idempotent
consumer loop (`shared.consumer.EventConsumer`: acks after commit, retries, the DLQ, waiting
out a database outage); only what one message means is decided here, in `handle`:

1. Who sent it: the `user_id` property, which RabbitMQ checks against the user the publishing
   connection authenticated as (a message claiming another user is refused by the broker and
   never reaches us), names the partner by its `broker_user`. A message without `user_id`, or
   from a user no partner is registered with, cannot be attributed to anyone: rejected. So is
   one from the application's own broker user (`AMQP_URL`), even if a partner was registered
   with it before registrations were checked (licensing/broker_users.py).
2. The idempotency key: the `message_id` property (required), per partner, stored in the
   `idempotent_requests` table the REST API keys its writes in, under a channel of its own
   (`amqp`; the REST API's keys are `rest`, so `Idempotency-Key: X` never meets message X),
   with the SHA-256 of the body. The same message again (a redelivery, or the partner
   publishing it twice) changes nothing; the same id with another body is rejected.
   Independently of that, one `partner_sale_id` makes one license, by either channel.
3. The body is validated with the REST API's own `SaleSchema`; then the sale is recorded by
   `accept_partner_sale`, as the REST API records it (an unregistered license,
   `licensing.license.issued` in the outbox and the answer), all in one transaction with the
   idempotency row. Commit, then ack.

A rejected message (any of the above, or an unknown product) is never retried: in one
transaction the rejection is stored on its idempotency row (when it has one) and
`licensing.partner_sale.rejected` is written to the outbox; after the commit the message is
copied to `licensing.partner-sales.dlq` with the reason in `x-failure-reason` (and the
partner's user in `x-original-user-id`), then acked. A crash between the commit and the ack
redelivers the message: the stored rejection dead-letters it again without a second event,
so the event is never lost and is raised once per partner and message id (a message without
a partner or message id, or reusing another message's id, has no key of its own and may then
be announced twice; consumers of events tolerate duplicates). A failure that is not the
message's fault (a bug, the database) is retried like any event, and after
`MAX_DELIVERY_ATTEMPTS` dead-lettered without an event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal

import pika
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.api import SALE_SCHEMA, sale_from
from licensing.broker_users import application_user
from licensing.licenses import UnknownProduct, accept_partner_sale
from licensing.models import Partner
from licensing.partners import AMQP, claim_request_key, record_answer
from shared import logs, strict_json
from shared.config import Settings
from shared.consumer import EventConsumer, Poison
from shared.db import Database
from shared.outbox import add_event
from shared.topology import Topology

log = logging.getLogger(__name__)

CONSUMER = "licensing-partner-sales"
# Message ids are idempotency keys of their own channel (AMQP), in the REST API's table.
MAX_MESSAGE_ID = 200
REJECTED = 422


class PartnerInbox(EventConsumer):
    # One message per transaction: a rejection is committed before its message is dead-lettered.
    max_batch = 1

    def __init__(self, settings: Settings, database: Database | None = None, prefetch: int = 20):
        queue = Topology(settings.events_namespace).partner_sales_queue
        super().__init__(settings, {}, database, prefetch, name=CONSUMER, queue=queue)
        self.application_user = application_user(settings.amqp_url)

    def handle(self, properties: pika.BasicProperties, body: bytes) -> None:
        token = logs.correlation_id.set(logs.valid_correlation_id(properties.correlation_id))
        try:
            with self.database.unit_of_work() as session:
                rejection = self.record(session, properties, body)
        finally:
            logs.correlation_id.reset(token)
        if rejection is not None:
            raise Poison(rejection)  # committed first: now to the DLQ, then acked

    def record(self, session: Session, properties: pika.BasicProperties, body: bytes) -> str | None:
        """Record one message's sale, or its rejection; returns the reason when rejected."""
        user, message_id = properties.user_id, _text(properties.message_id)
        if not user:
            return _reject(session, None, None, message_id, "no user_id property: the sender cannot be identified")
        if user == self.application_user:  # whoever is registered with it: the broker vouches for no partner here
            return _reject(session, None, user, message_id, "sent as the application's own broker user, no partner's")
        partner = session.scalars(select(Partner).where(Partner.broker_user == user)).one_or_none()
        if partner is None:
            return _reject(session, None, user, message_id, f"no partner is registered with broker user {user!r}")
        if not message_id or len(message_id) > MAX_MESSAGE_ID:
            reason = f"a unique message_id property (1 to {MAX_MESSAGE_ID} characters) is required"
            return _reject(session, partner, user, message_id, reason)

        key, fingerprint = message_id, hashlib.sha256(body).hexdigest()
        # A concurrent delivery of the same message id waits here for the first to commit.
        earlier = claim_request_key(session, partner.id, AMQP, key, fingerprint)
        if earlier is not None:
            if earlier.request_hash != fingerprint:
                reason = f"message_id {message_id!r} was used before for another message"
                return _reject(session, partner, user, message_id, reason)
            if earlier.status == REJECTED:
                log.info("rejected message delivered again", extra={"event_id": message_id})
                return earlier.response  # dead-letter it again, announced already
            log.info("duplicate partner message ignored", extra={"event_id": message_id})
            return None

        try:
            sale = sale_from(SALE_SCHEMA.load(_json(body)))
        except ValidationError as error:
            return _refuse(session, partner, key, user, message_id, f"invalid sale: {_messages(error)}")
        try:
            with session.begin_nested():  # nothing of a refused sale stays
                recorded = accept_partner_sale(session, partner, AMQP, key, sale)
        except UnknownProduct as error:
            return _refuse(session, partner, key, user, message_id, f"invalid sale: {error}")
        log.info("partner sale %s", "recorded" if recorded.created else "known already", extra={"event_id": message_id})
        return None


def _text(value) -> str | None:
    """A property that is not UTF-8 (pika leaves it as bytes) counts as missing."""
    return value if isinstance(value, str) else None


def _json(body: bytes):
    """Read as the REST API reads a body (`shared.strict_json`): no duplicate names, NaN or deep nesting."""
    try:
        return strict_json.loads(body)
    except strict_json.MalformedJSON as error:
        raise ValidationError(f"not JSON: {error}") from None


def _messages(error: ValidationError) -> str:
    if isinstance(error.messages, dict):
        return json.dumps(error.messages, ensure_ascii=False, sort_keys=True)
    return "; ".join(map(str, error.messages)) if isinstance(error.messages, list) else str(error.messages)


def _refuse(session: Session, partner: Partner, key: str, user: str, message_id: str, reason: str) -> str:
    """Reject a message that has an idempotency row: the row keeps the reason for redeliveries."""
    record_answer(session, partner.id, AMQP, key, REJECTED, reason[:1000])
    return _reject(session, partner, user, message_id, reason)


def _reject(session: Session, partner: Partner | None, user: str | None, message_id: str | None, reason: str) -> str:
    """Announce the rejection in the caller's transaction; returns the reason."""
    reason = reason[:1000]
    add_event(
        session,
        "licensing.partner_sale.rejected",
        {
            "partner": partner.id if partner else None,
            "broker_user": user or None,
            "message_id": message_id or None,
            "reason": reason,
        },
        producer="licensing",
    )
    log.warning("partner message rejected: %s", reason, extra={"event_id": message_id})
    return reason


def main() -> None:
    logs.configure("licensing-partner-inbox")
    inbox = PartnerInbox(Settings.from_env("licensing"))
    signal.signal(signal.SIGTERM, inbox.stop)
    signal.signal(signal.SIGINT, inbox.stop)
    inbox.run_forever()


if __name__ == "__main__":
    main()
