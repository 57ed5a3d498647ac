"""A service's outbox for its operators: the rows its relay held, and the outbox gauges.

`register(app, api)`, one line in each service's `app.py`, adds:
- `GET /internal/v1/outbox/held`: the rows the relay set aside (`shared.outbox`), with why;
- `POST /internal/v1/outbox/held/{event_id}/release`: one back to the relay, its attempts reset;
- `cc_outbox_pending` and `cc_outbox_held` on the service's `/metrics`, counted when scraped.

The endpoints answer only a signed service token from the gateway (its dead-letter endpoints)
or from `python -m ops.deadletters` (`ops.deadletters.HeldEvents` is the client for both); the
gateway never forwards `/internal/...` or `/metrics`.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask
from flask.views import MethodView
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared import metrics, outbox
from shared.auth import service_only
from shared.db import Database
from shared.problems import Problem
from shared.web import database, settings

# Who may call these: the gateway, for vendor staff, and the operators' command line.
CALLERS = ("gateway", "ops")

internal_outbox = Blueprint(
    "internal_outbox", __name__, url_prefix="/internal/v1/outbox", description="Held events (the gateway and ops only)"
)


class HeldEventSchema(Schema):
    id = fields.String(metadata={"description": "the event's id"})
    type = fields.String(metadata={"description": "the event type (routing key)"})
    producer = fields.String(metadata={"description": "the service whose relay holds it"})
    reason = fields.String(allow_none=True, metadata={"description": "why it could not be published, last time"})
    attempts = fields.Integer()
    created_at = fields.DateTime()


class HeldEventListSchema(Schema):
    items = fields.List(fields.Nested(HeldEventSchema))
    next = fields.String(allow_none=True, metadata={"description": "always null: the whole list at once"})


class ReleasedSchema(Schema):
    id = fields.String()
    released = fields.Boolean()


@internal_outbox.route("/held")
class HeldEvents(MethodView):
    @service_only(*CALLERS)
    @internal_outbox.response(200, HeldEventListSchema)
    def get(self):
        """Every event the relay set aside, oldest first; nothing changes."""
        producer = settings().service
        with database().unit_of_work() as session:
            held = outbox.held_events(session)
        items = [
            {
                "id": event.event_id,
                "type": event.event_type,
                "producer": producer,
                "reason": event.reason,
                "attempts": event.attempts,
                "created_at": event.created_at,
            }
            for event in held
        ]
        return {"items": items, "next": None}


@internal_outbox.route("/held/<event_id>/release")
class ReleaseHeldEvent(MethodView):
    @service_only(*CALLERS)
    @internal_outbox.response(200, ReleasedSchema)
    def post(self, event_id: str):
        """Give a held event back to the relay (after the cause is fixed): it is published once."""
        with database().unit_of_work() as session:
            released = outbox.release(session, event_id)
        if not released:
            raise Problem(404, "not-found", "Not found", "No held event has this id.")
        return {"id": event_id, "released": True}


class OutboxGauges(Collector):
    """`cc_outbox_pending` and `cc_outbox_held` for one service, from its database when scraped."""

    def __init__(self, service: str, db: Database):
        self.service, self.db = service, db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.db.engine.connect() as connection:
            pending, held = outbox.counts(connection)
        for name, text, value in (
            ("cc_outbox_pending", "Outbox rows waiting for the relay", pending),
            ("cc_outbox_held", "Outbox rows the relay set aside (see the dead letters)", held),
        ):
            gauge = GaugeMetricFamily(name, text, labels=["service"])
            gauge.add_metric([self.service], value)
            yield gauge


def register(app: Flask, api: Api) -> None:
    api.register_blueprint(internal_outbox)
    metrics.add(app, OutboxGauges(app.extensions["settings"].service, app.extensions["database"]))
