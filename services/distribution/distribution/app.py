"""Distribution's composition root: `create_app(config)` for gunicorn and tests."""

from __future__ import annotations

from flask import Flask

from distribution import api, documents_api, downloads_api
from shared import outbox_api
from shared.config import Settings
from shared.web import service_app


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env("distribution")
    app, openapi = service_app(settings, "Customer Center — distribution")
    for blueprint in (
        api.news,
        downloads_api.admin,
        downloads_api.customer_api,
        downloads_api.public,
        documents_api.documents,
    ):
        openapi.register_blueprint(blueprint)
    outbox_api.register(app, openapi)  # held events for operators, outbox gauges on /metrics
    return app
