"""Identity's composition root: `create_app(config)` for gunicorn and tests."""

from __future__ import annotations

from flask import Flask

from identity import api, gateway_notices
from shared import outbox_api
from shared.config import Settings
from shared.web import service_app


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env("identity")
    app, openapi = service_app(settings, "Customer Center — identity")
    for blueprint in (api.accounts_api, api.profiles_api, api.internal, api.admin):
        openapi.register_blueprint(blueprint)
    outbox_api.register(app, openapi)  # held events for operators, outbox gauges on /metrics
    gateway_notices.register(app)
    return app
