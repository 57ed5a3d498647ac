"""The gateway's composition root: `create_app(config)` for gunicorn and tests."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import api, dead_letters, identity_notices, overview, portal
from gateway.sessions import SessionStore
from gateway.upstream import Upstream
from shared.config import Settings
from shared.web import service_app


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env("gateway")
    # No /metrics here: the gateway is the public entrance and has no outbox of its own.
    app, openapi = service_app(settings, "Customer Center — public API", needs_broker=False, metrics=False)
    app.extensions["sessions"] = SessionStore(
        app.extensions["database"], settings.session_idle_timeout, settings.session_absolute_timeout
    )
    app.extensions["upstream"] = Upstream(settings)
    app.extensions["upstream"].on_answer("identity", identity_notices.applier(app.extensions["sessions"]))
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)
    openapi.register_blueprint(api.sessions)
    openapi.register_blueprint(overview.overview)
    openapi.register_blueprint(dead_letters.dead_letters)
    app.register_blueprint(api.forwarding)
    app.register_blueprint(portal.portal)
    portal.i18n.init_app(app)
    return app
