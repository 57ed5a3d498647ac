"""The event envelope and the catalogue that says what each event carries.

Every message on the bus is an envelope (JSON): `id` (UUID, also the AMQP message_id),
`type` (= routing key), `version`, `occurred_at`, `producer`, `correlation_id`, `data`.
Both ends validate it: the envelope with `EnvelopeSchema`, `data` with the fields the
catalogue (`events.yaml`) lists for that type. Unknown fields are ignored, so producers can
add fields without breaking consumers.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import yaml
from marshmallow import EXCLUDE, Schema, ValidationError, fields

from shared.logs import valid_correlation_id

FIELD_TYPES = {
    "string": fields.String,
    "integer": fields.Integer,
    "boolean": fields.Boolean,
    "date": fields.Date,
    "datetime": fields.AwareDateTime,
    "object": fields.Dict,
    "list": fields.List,
}


class EnvelopeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.UUID(required=True)
    type = fields.String(required=True)
    version = fields.Integer(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    producer = fields.String(required=True)
    correlation_id = fields.String(load_default=None, allow_none=True)
    data = fields.Dict(required=True)


@dataclass(frozen=True)
class EventType:
    name: str
    producer: str
    version: int
    consumers: tuple[str, ...]
    fields: dict[str, dict[str, Any]]

    @functools.cached_property
    def data_schema(self) -> Schema:
        declared = {}
        for name, spec in self.fields.items():
            kind = FIELD_TYPES[spec["type"]]
            options = {"required": bool(spec.get("required")), "allow_none": not spec.get("required")}
            declared[name] = kind(fields.Raw(), **options) if kind is fields.List else kind(**options)
        return Schema.from_dict(declared, name=f"{self.name}.data")(unknown=EXCLUDE)


@functools.cache
def catalogue() -> dict[str, EventType]:
    raw = yaml.safe_load(resources.files("shared").joinpath("events.yaml").read_text(encoding="utf-8"))
    return {
        name: EventType(
            name=name,
            producer=spec["producer"],
            version=int(spec["version"]),
            consumers=tuple(spec.get("consumers") or ()),
            fields=spec.get("data") or {},
        )
        for name, spec in raw.items()
    }


def consumed_by(consumer: str) -> list[str]:
    return sorted(name for name, event in catalogue().items() if consumer in event.consumers)


class UnknownEvent(LookupError):
    pass


def event_type(name: str) -> EventType:
    try:
        return catalogue()[name]
    except KeyError:
        raise UnknownEvent(f"{name} is not in the event catalogue (shared/events.yaml)") from None


def new_envelope(type_: str, data: dict[str, Any], producer: str, correlation_id: str | None) -> dict[str, Any]:
    """Build and validate an envelope; raises ValidationError if `data` breaks the catalogue."""
    spec = event_type(type_)
    if spec.producer != producer:
        raise UnknownEvent(f"{type_} is produced by {spec.producer}, not {producer}")
    errors = spec.data_schema.validate(data)
    if errors:
        raise ValidationError(errors)
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "version": spec.version,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": producer,
        "correlation_id": valid_correlation_id(correlation_id),
        "data": data,
    }


@dataclass(frozen=True)
class Event:
    """What a consumer's handler receives: a validated envelope."""

    id: str
    type: str
    version: int
    occurred_at: datetime
    producer: str
    correlation_id: str | None
    data: dict[str, Any]


def parse_envelope(body: bytes) -> Event:
    """Parse and validate a message; raises ValidationError (never retried: it cannot heal)."""
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValidationError(f"not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ValidationError("an envelope must be a JSON object")
    envelope = EnvelopeSchema().load(raw)
    spec = event_type(envelope["type"])
    data = spec.data_schema.load(envelope["data"])
    # Keep fields the catalogue does not list yet as they came (newer producer, older consumer).
    data = {**envelope["data"], **data}
    return Event(
        id=str(envelope["id"]),
        type=envelope["type"],
        version=envelope["version"],
        occurred_at=envelope["occurred_at"],
        producer=envelope["producer"],
        # Another component's id is taken only if well formed (it is logged and may be copied on).
        correlation_id=valid_correlation_id(envelope["correlation_id"]),
        data=data,
    )
