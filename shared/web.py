"""The Flask base every service is built on.

`service_app(settings, ...)` gives a Flask app with: the service's settings and database
on `app.extensions`, a flask-smorest `Api` (OpenAPI at `/openapi.json`, docs at `/docs`),
problem+json for every error (documented as such in the OpenAPI document), JSON-only request
bodies (415 otherwise, 413 past `MAX_CONTENT_LENGTH`, 400 for anything `shared.strict_json`
refuses: duplicate names, NaN, deep nesting...), a correlation id per request (from
`X-Correlation-ID` when well formed, `shared.logs.CORRELATION_ID`, or new), `/healthz` (alive),
`/readyz` (database and broker reachable), `/metrics` (Prometheus text, `shared.metrics`; not on
the public gateway), and no-store caching on API answers. Services add their blueprints and
nothing else of this kind.
"""

from __future__ import annotations

import logging
import time
from http import HTTPStatus

from flask import Flask, g, jsonify, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from marshmallow import INCLUDE, Schema, fields
from sqlalchemy.exc import DataError, DBAPIError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from shared import amqp, logs, problems, strict_json
from shared import metrics as shared_metrics
from shared.config import Settings
from shared.db import Database
from shared.problems import Problem

log = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
READINESS_CACHE_SECONDS = 2.0
MAX_ID = 2**31 - 1  # the largest id an Integer column holds on PostgreSQL


class FieldErrorSchema(Schema):
    field = fields.String(required=True)
    message = fields.String(required=True)


class ProblemSchema(Schema):
    """An error as every component answers it (`shared.problems`, RFC 9457)."""

    class Meta:
        unknown = INCLUDE  # extension members, e.g. `service` on a 503 or `right` on a 403

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.List(fields.Nested(FieldErrorSchema), metadata={"description": "validation failures"})


class ProblemApi(Api):
    """flask-smorest's Api, documenting errors the way they are answered: `application/problem+json`
    with `ProblemSchema` (flask-smorest's own error schema and media type are not what we send)."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        for status in HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, problems.MEDIA_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error (application/problem+json)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, problems.MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def service_app(
    settings: Settings,
    title: str,
    database: Database | None = None,
    needs_broker: bool = True,
    metrics: bool = True,
) -> tuple[Flask, Api]:
    settings.require_secret()
    app = Flask(settings.service, static_folder=None)  # no /static: the portal serves its assets itself
    # werkzeug answers `//` in a path, or a missing trailing slash, with a redirect to an absolute
    # URL built from the request's Host (a service's own address, or any Host a client sends):
    # never. `//` is a 404 (_refuse_double_slashes), a trailing slash is matched as if absent.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.url_map.converters["int"] = DatabaseId
    app.config.update(
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_REDOC_PATH="/docs",
        OPENAPI_REDOC_URL="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js",
        MAX_CONTENT_LENGTH=settings.max_content_length,
        JSON_SORT_KEYS=False,
    )
    app.json.ensure_ascii = False
    app.extensions["settings"] = settings
    app.extensions["database"] = database or Database(settings.database_url)
    api = ProblemApi(app)
    problems.register(app)
    _register_database_outage(app)
    _register_request_hooks(app)
    _register_health(app, settings, needs_broker)
    _refuse_double_slashes(app)
    _register_unreadable_bodies(app)
    if metrics:
        _register_metrics(app)
    return app, api


def database() -> Database:
    from flask import current_app

    return current_app.extensions["database"]


def settings() -> Settings:
    from flask import current_app

    return current_app.extensions["settings"]


def accepts_raw_body(view):
    """Mark a view that takes a non-JSON body (an uploaded file)."""
    view.accepts_raw_body = True
    return view


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _start():
        g.started = time.perf_counter()
        # A caller's id only when well formed and short (shared.logs); otherwise our own.
        logs.correlation_id.set(logs.correlation_id_or_new(request.headers.get(CORRELATION_HEADER)))
        if request.method in ("POST", "PUT", "PATCH") and _has_body() and request.routing_exception is None:
            view = app.view_functions.get(request.endpoint)
            view_class = getattr(view, "view_class", None)
            method = getattr(view_class, request.method.lower(), None) if view_class else None
            raw_ok = any(getattr(part, "accepts_raw_body", False) for part in (view, view_class, method))
            if raw_ok:
                return
            if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
                raise Problem(
                    415, "unsupported-media-type", "Unsupported media type", "Send the body as application/json."
                )
            # Read (and cached for the view's parser) once here, strictly: whatever parses it
            # next then sees a body on which every reader agrees.
            data = request.get_data(cache=True)
            limit = request.max_content_length
            if request.content_length is None and limit is not None and len(data) >= limit:
                # A chunked body has no Content-Length to refuse up front, and werkzeug stops
                # reading it quietly at the limit: what was read would pass for the whole body.
                raise RequestEntityTooLarge()
            try:
                strict_json.loads(data)
            except strict_json.MalformedJSON as error:
                raise Problem(
                    400, "malformed-json", "Malformed JSON", f"The request body is not valid JSON: {error}."
                ) from None

    @app.after_request
    def _finish(response):
        response.headers[CORRELATION_HEADER] = logs.current_correlation_id()
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        log.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            (time.perf_counter() - g.get("started", time.perf_counter())) * 1000,
            extra={"status": response.status_code, "path": request.path, "method": request.method},
        )
        return response


def _refuse_double_slashes(app: Flask) -> None:
    @app.before_request
    def _double_slash():
        # the path as it came: werkzeug's `request.path` drops leading slashes
        if "//" in request.environ.get("PATH_INFO", ""):
            raise Problem(404, "not-found", "Not found", "No such resource.")


def _register_unreadable_bodies(app: Flask) -> None:
    from gunicorn.http.errors import ChunkMissingTerminator, InvalidChunkExtension, InvalidChunkSize, NoMoreData

    # gunicorn parses a chunked body as the application reads it: a broken one is the client's
    # mistake (shared.gunicorn_worker answers what it finds before the application sees it).
    @app.errorhandler(InvalidChunkSize)
    @app.errorhandler(ChunkMissingTerminator)
    @app.errorhandler(InvalidChunkExtension)
    @app.errorhandler(NoMoreData)
    def _unreadable(error: Exception):
        return problems.problem_response(
            Problem(
                400,
                "bad-request",
                "Bad Request",
                "The request body could not be read: cut short, or its chunks are broken.",
            )
        )


def _has_body() -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding") == "chunked"


class DatabaseId(IntegerConverter):
    """`<int:...>` in every service's paths: an id beyond a 32-bit column cannot exist, so it is
    a `404` at routing rather than an overflow in the database."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def _register_database_outage(app: Flask) -> None:
    @app.errorhandler(DataError)
    def _out_of_range(error: DataError):
        # A value the schema let through but the column cannot hold (a number too large, a NUL
        # character in a text): the caller's mistake, never a 500.
        return problems.problem_response(
            Problem(
                422,
                "value-out-of-range",
                "Value out of range",
                "A value is too large for its field or holds a character that cannot be stored (such as NUL).",
            )
        )

    @app.errorhandler(DBAPIError)
    def _database_error(error: DBAPIError):
        if _reachable(app.extensions["database"]):
            app.logger.exception("database error")
            return problems.problem_response(
                Problem(500, "internal-error", "Internal error", "Something went wrong on our side.")
            )
        return problems.problem_response(
            Problem(
                503,
                "service-unavailable",
                "Temporarily unavailable",
                "Our database is unavailable; nothing was changed. Try again shortly.",
                headers={"Retry-After": "5"},
            )
        )


def _reachable(db: Database) -> bool:
    try:
        db.ping()
        return True
    except Exception:
        return False


def _register_health(app: Flask, settings: Settings, needs_broker: bool) -> None:
    state = {"checked": 0.0, "broker": False}

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", service=settings.service)

    @app.get("/readyz")
    def readyz():
        checks = {"database": _reachable(app.extensions["database"])}
        if needs_broker:
            # A broker handshake per probe is costly; remember the answer for a moment.
            if time.monotonic() - state["checked"] > READINESS_CACHE_SECONDS:
                state["broker"] = amqp.broker_reachable(settings.amqp_url)
                state["checked"] = time.monotonic()
            checks["broker"] = state["broker"]
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not ready", "service": settings.service, "checks": checks}
        if ready:
            return jsonify(body)
        response = jsonify(body)
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response


def _register_metrics(app: Flask) -> None:
    @app.get("/metrics")
    def metrics():
        return shared_metrics.response(app)


def list_of(item_schema, name: str):
    """The envelope of every list in the API (api.md): `{items: [...], next: cursor or null}`."""
    from marshmallow import Schema, fields

    return Schema.from_dict(
        {"items": fields.List(fields.Nested(item_schema)), "next": fields.String(allow_none=True)}, name=name
    )
