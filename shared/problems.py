"""Errors as `application/problem+json` (RFC 9457), the same shape in every component.

`type` is a stable URN per kind of problem, `title` a short human summary, `detail` says
what happened this time, and validation failures add `errors: [{field, message}]`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:customer-center:problem:"

# Stable types for the statuses werkzeug or flask-smorest raise on their own.
STATUS_TYPES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    410: "gone",
    413: "payload-too-large",
    415: "unsupported-media-type",
    416: "range-not-satisfiable",
    422: "validation-failed",
    429: "too-many-requests",
    500: "internal-error",
    502: "bad-gateway",
    503: "service-unavailable",
    504: "gateway-timeout",
}


class Problem(Exception):
    """Raise from anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        type_: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(detail or title)
        self.status = status
        self.type = type_ or STATUS_TYPES.get(status, "error")
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        from http import HTTPStatus

        body: dict[str, Any] = {
            "type": self.type if ":" in self.type else TYPE_PREFIX + self.type,
            "title": self.title or HTTPStatus(self.status).phrase,
            "status": self.status,
            "detail": self.detail or self.title or HTTPStatus(self.status).phrase,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def problem_response(problem: Problem) -> Response:
    response = Response(json.dumps(problem.to_dict()), status=problem.status, mimetype=MEDIA_TYPE)
    for key, value in problem.headers.items():
        response.headers[key] = value
    return response


def field_errors(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    """Flatten marshmallow's nested messages into [{field, message}]."""
    errors: list[dict[str, str]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            errors += field_errors(value, name)
    elif isinstance(messages, list):
        for item in messages:
            if isinstance(item, (dict, list)):
                errors += field_errors(item, prefix)
            else:
                errors.append({"field": prefix or "_body", "message": str(item)})
    else:
        errors.append({"field": prefix or "_body", "message": str(messages)})
    return errors


def _from_http_exception(error: HTTPException) -> Problem:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") if isinstance(data, dict) else None
    headers = {k: v for k, v in (error.get_headers() or []) if k.lower() not in ("content-type", "content-length")}
    headers.update((data.get("headers") or {}) if isinstance(data, dict) else {})
    if messages is not None:
        # webargs/flask-smorest: {"json": {"field": ["msg"]}} - the location is not a field.
        flat = {}
        for location_messages in messages.values():
            if isinstance(location_messages, dict):
                flat.update(location_messages)
            else:
                flat.setdefault("_body", location_messages)
        if status == 400 or any(e["message"].startswith("Invalid JSON") for e in field_errors(flat)):
            return Problem(
                400, "malformed-json", "Malformed JSON", "The request body is not valid JSON.", headers=headers
            )
        return Problem(
            422,
            "validation-failed",
            "Validation failed",
            "Some fields are missing or invalid.",
            errors=field_errors(flat),
            headers=headers,
        )
    return Problem(status, STATUS_TYPES.get(status), error.name, error.description, headers=headers)


def register(app: Flask) -> None:
    from marshmallow import ValidationError

    app.register_error_handler(Problem, problem_response)

    @app.errorhandler(ValidationError)
    def _schema(error: ValidationError):
        # A schema loaded by hand in a view (not through flask-smorest) failed.
        return problem_response(
            Problem(
                422,
                "validation-failed",
                "Validation failed",
                "Some fields are missing or invalid.",
                errors=field_errors(error.messages),
            )
        )

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        return problem_response(_from_http_exception(error))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error")
        return problem_response(Problem(500, "internal-error", "Internal error", "Something went wrong on our side."))
