"""Forum's composition root: `create_app(config)` for gunicorn and tests."""

from __future__ import annotations

from flask import Flask

from forum import admin_api, api
from shared import outbox_api
from shared.config import Settings
from shared.web import service_app


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env("forum")
    app, openapi = service_app(settings, "Customer Center — forum")
    openapi.register_blueprint(api.forum)
    openapi.register_blueprint(admin_api.admin)
    outbox_api.register(app, openapi)  # held events for operators, outbox gauges on /metrics
    return app
