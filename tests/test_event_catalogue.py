"""The event catalogue (shared/events.yaml) and the code agree: every event the code writes
is in it with that producer, every handler a service registers is for an event the catalogue
says it consumes, and the other way round."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from marshmallow import ValidationError

from shared.events import catalogue, consumed_by, new_envelope
from shared.topology import Topology

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("identity", "licensing", "distribution", "forum")
SERVICE_SOURCES = {name: ROOT / "services" / name / name for name in SERVICES}


def events_written_in_code() -> set[tuple[str, str]]:
    """(event type, producer) of every event the services' code writes: the literal type of
    each add_event(...) call, or, where a helper passes the type on (licensing's announce),
    every string in that module shaped like one of the service's event types."""
    found = set()
    for service, folder in SERVICE_SOURCES.items():
        shaped = re.compile(rf"^{service}\.[a-z_]+\.[a-z_]+$")
        for path in folder.rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "id", getattr(node.func, "attr", None)) == "add_event"
                ):
                    producer = next(k.value for k in node.keywords if k.arg == "producer")
                    assert isinstance(producer, ast.Constant), f"{path}:{node.lineno}: name the producer literally"
                    assert producer.value == service, f"{path}:{node.lineno}: {service} writes as {producer.value}"
                    if isinstance(node.args[1], ast.Constant):
                        found.add((node.args[1].value, service))
                    else:
                        found |= {
                            (constant.value, service)
                            for constant in ast.walk(tree)
                            if isinstance(constant, ast.Constant)
                            and isinstance(constant.value, str)
                            and shaped.match(constant.value)
                        }
    return found


def test_every_event_written_is_in_the_catalogue_with_its_producer():
    written = events_written_in_code()
    for type_, producer in written:
        assert type_ in catalogue(), f"{type_} is written but not in the catalogue"
        assert catalogue()[type_].producer == producer


def test_every_catalogued_event_has_a_producer_in_the_code():
    written = {type_ for type_, _ in events_written_in_code()}
    assert set(catalogue()) <= written, f"catalogued but never written: {set(catalogue()) - written}"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_handles_exactly_what_the_catalogue_says_it_consumes(service):
    try:
        handlers = importlib.import_module(f"{service}.handlers").HANDLERS
    except ModuleNotFoundError:
        handlers = {}
    assert sorted(handlers) == consumed_by(service)


def test_routing_keys_follow_service_aggregate_event():
    for name, event in catalogue().items():
        service, aggregate, verb = name.split(".")
        assert service == event.producer and aggregate and verb


def test_a_payload_that_breaks_the_catalogue_is_refused_at_the_producer():
    with pytest.raises(ValidationError):
        new_envelope("licensing.customer.created", {"customer_number": "1"}, "licensing", None)


def test_every_consumer_gets_a_queue_bound_to_its_events():
    consumers = Topology("x.").consumers()
    for name, event in catalogue().items():
        for consumer in event.consumers:
            assert name in consumers[consumer]
