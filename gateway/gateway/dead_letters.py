"""Dead letters for the vendor's operators, over HTTP: `GET /api/v1/admin/dead-letters` and
`POST /api/v1/admin/dead-letters/{id}/replay` (api.md), what `python -m ops.deadletters` does
on the command line.

The gateway answers these itself: the dead-letter queues belong to every consumer at once, not
to one service. A listing looks at every consumer's `.dlq` and the partners' sales inbox's and
leaves each message where it is. A replay puts the event back on the queue of each consumer
whose DLQ holds it (only there, so no other consumer sees it twice). A partner's refused sale
is listed but cannot be replayed: the partner sends it again (`ops.deadletters`).

Events a service's relay held (it could not publish them, `shared.outbox`) are listed after
them, as `<service>.outbox`, asked of each service's internal endpoint; their replay releases
them to that relay, which publishes each once. A service that does not answer is a 503 naming it.

Looking at a queue means taking its messages and giving them back, so for the milliseconds a
listing runs, a replay or a second listing at the same moment does not see them (a 404 or a
shorter list: asking again answers right). Nothing is lost or reordered for the consumers.
"""

from __future__ import annotations

import logging

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from pika.exceptions import AMQPError

from gateway.sessions import SessionStore, require_csrf
from shared.dead_letters import OUTBOX, DeadLetter, DeadLetters, HeldEvent, HeldEvents, ServiceUnavailable
from shared.problems import Problem
from shared.web import accepts_raw_body

log = logging.getLogger(__name__)

dead_letters = Blueprint(
    "dead_letters", __name__, url_prefix="/api/v1/admin", description="Dead letters (vendor staff)"
)


class DeadLetterSchema(Schema):
    id = fields.String(allow_none=True, metadata={"description": "the event's id (a partner sale: its message id)"})
    consumer = fields.String(metadata={"description": "whose queue refused it"})
    type = fields.String(allow_none=True, metadata={"description": "the event type"})
    failed_at = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    replayable = fields.Boolean()
    producer = fields.String(
        allow_none=True, metadata={"description": "a held event: the service whose relay holds it"}
    )
    attempts = fields.Integer(allow_none=True, metadata={"description": "a held event: its publishing attempts"})
    created_at = fields.String(allow_none=True, metadata={"description": "a held event: when it was written"})


class DeadLetterListSchema(Schema):
    items = fields.List(fields.Nested(DeadLetterSchema))
    next = fields.String(allow_none=True, metadata={"description": "always null: the whole list at once"})


class ReplaySchema(Schema):
    id = fields.String()
    replayed_to = fields.List(
        fields.String(), metadata={"description": "the consumers it went back to (a held event: `<service>.outbox`)"}
    )


def _operators() -> DeadLetters:
    settings = current_app.extensions["settings"]
    return DeadLetters(settings.amqp_url, settings.events_namespace)


def _held() -> HeldEvents:
    return HeldEvents(current_app.extensions["settings"], caller="gateway")


def _staff_only() -> None:
    store: SessionStore = current_app.extensions["sessions"]
    caller = store.signed_in(request)
    if not caller.session.staff:
        raise Problem(403, "forbidden", "Forbidden", "This resource is for the vendor's staff.")
    require_csrf(caller, request)


def _broker_unavailable(error: Exception) -> Problem:
    log.warning("dead letters: the broker is unavailable: %s", error)
    return Problem(
        503,
        "service-unavailable",
        "Temporarily unavailable",
        "The message broker cannot be reached right now. Try again shortly.",
        headers={"Retry-After": "5"},
    )


def _service_unavailable(error: ServiceUnavailable) -> Problem:
    log.warning("dead letters: %s", error)
    return Problem(
        503,
        "service-unavailable",
        "Temporarily unavailable",
        f"This part of the Customer Center ({error.service}) is not available right now. Try again shortly.",
        headers={"Retry-After": "5"},
        service=error.service,
    )


def _held_view(event: HeldEvent) -> dict:
    return {
        "id": event.event_id,
        "consumer": event.consumer,
        "type": event.event_type,
        "failed_at": None,
        "reason": event.reason,
        "replayable": True,
        "producer": event.producer,
        "attempts": event.attempts,
        "created_at": event.created_at,
    }


def _view(letter: DeadLetter, replayable: bool) -> dict:
    return {
        "id": letter.event_id,
        "consumer": letter.consumer,
        "type": letter.event_type,
        "failed_at": letter.failed_at,
        "reason": letter.reason,
        "replayable": replayable,
        "producer": None,
        "attempts": None,
        "created_at": None,
    }


@dead_letters.route("/dead-letters")
class DeadLetterList(MethodView):
    @dead_letters.response(200, DeadLetterListSchema)
    def get(self):
        """Every dead letter of every consumer, oldest first per consumer; nothing is removed."""
        _staff_only()
        operators = _operators()
        try:
            items = [_view(letter, True) for consumer in operators.consumers() for letter in operators.list(consumer)]
            items += [_view(letter, False) for letter in operators.list_partner_sales()]
        except AMQPError as error:
            raise _broker_unavailable(error) from None
        held = _held()
        try:
            items += [_held_view(event) for service in held.services() for event in held.list(service)]
        except ServiceUnavailable as error:
            raise _service_unavailable(error) from None
        return {"items": items, "next": None}


@dead_letters.route("/dead-letters/<event_id>/replay")
class DeadLetterReplay(MethodView):
    @dead_letters.response(200, ReplaySchema)
    @accepts_raw_body  # no body is read; a browser's form may carry the CSRF token as a field
    def post(self, event_id: str):
        """Send the event back to each consumer whose DLQ holds it, or release it to the relay
        that held it (after the cause is fixed)."""
        _staff_only()
        operators = _operators()
        try:
            replayed_to = [consumer for consumer in operators.consumers() if operators.replay(consumer, {event_id})]
            refused_sale = not replayed_to and any(x.event_id == event_id for x in operators.list_partner_sales())
        except AMQPError as error:
            raise _broker_unavailable(error) from None
        if not replayed_to and not refused_sale:
            held = _held()
            try:
                replayed_to = [service + OUTBOX for service in held.services() if held.release(service, event_id)]
            except ServiceUnavailable as error:
                raise _service_unavailable(error) from None
        if refused_sale:
            raise Problem(
                409,
                "not-replayable",
                "Cannot be replayed",
                "A partner's refused sale cannot be replayed; the partner sends it again.",
            )
        if not replayed_to:
            raise Problem(404, "not-found", "Not found", "No dead letter has this id.")
        log.info("dead letter %s replayed to %s", event_id, ", ".join(replayed_to))
        return {"id": event_id, "replayed_to": replayed_to}
