"""Prometheus metrics of a web component, served by `shared.web` at `GET /metrics` (text format).

Each app has a registry of its own (`registry(app)`: tests run several apps in one process), to
which a component adds collectors, e.g. a service's outbox gauges (`shared.outbox_api`). The
collectors read their values when scraped (from the database), so every gunicorn worker answers
the same and nothing is kept between scrapes.
"""

from __future__ import annotations

from flask import Flask, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector


def registry(app: Flask) -> CollectorRegistry:
    # auto_describe off: registering a collector must not run its query (at start, maybe without a database).
    return app.extensions.setdefault("metrics", CollectorRegistry(auto_describe=False))


def add(app: Flask, collector: Collector) -> None:
    registry(app).register(collector)


def response(app: Flask) -> Response:
    # The text format every Prometheus reads (our names need nothing newer).
    return Response(generate_latest(registry(app)), content_type=CONTENT_TYPE_PLAIN_0_0_4)
