"""Licensing's composition root: `create_app(config)` for gunicorn and tests."""

from __future__ import annotations

from flask import Flask

from licensing import api
from shared import outbox_api
from shared.config import Settings
from shared.web import service_app


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env("licensing")
    app, openapi = service_app(settings, "Customer Center — licensing")
    for blueprint in (api.admin, api.partner_api, api.customer_api):
        openapi.register_blueprint(blueprint)
    outbox_api.register(app, openapi)  # held events for operators, outbox gauges on /metrics
    return app
