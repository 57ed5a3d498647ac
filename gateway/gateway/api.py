"""The gateway's own API (sessions) and the forwarding of every other `/api/v1/...` path."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import quote, urlsplit, urlunsplit

from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from gateway.models import Session
from gateway.routes import PASS_AUTHORIZATION, service_for
from gateway.sessions import COOKIE, Caller, SessionStore, expires_in, require_csrf
from gateway.upstream import GATEWAY, Upstream
from shared.auth import Principal
from shared.problems import Problem
from shared.web import accepts_raw_body

sessions = Blueprint("sessions", __name__, url_prefix="/api/v1", description="Signing in and out")
forwarding = Blueprint("forwarding", __name__)

# Request headers a service may need; everything else (cookies, our Authorization) stays here.
FORWARD_REQUEST_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Accept",
    "Accept-Language",
    "Idempotency-Key",
    "Range",
    "If-Range",
    "If-None-Match",
    "If-Modified-Since",
    "User-Agent",
)
FORWARD_RESPONSE_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Content-Range",
    "Content-Disposition",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
    "Location",
    "Retry-After",
    "Cache-Control",
    # A creation answered again for a retried Idempotency-Key (shared.idempotency).
    "Idempotent-Replayed",
    # An edge web server in front of us (compose) serves the file itself.
    "X-Accel-Redirect",
)
# Staff's file uploads, streamed through whole (the service limits their size).
UPLOADS = re.compile(r"/api/v1/admin/(releases|documents)/\d+/files/[^/]+\Z")
# Services learn an anonymous caller's address from us, signed, for their throttling.
ANONYMOUS = Principal(subject="anonymous", kind="anonymous")
# RFC 3986 pchar and "/": left as they are when the decoded path is encoded again.
PATH_SAFE = "/:@!$&'()*+,;=-._~"
# Answers up to this size are read whole; larger ones (downloads) are streamed through.
BUFFER_LIMIT = 256 * 1024


def public_location(location: str, service: str) -> str | None:
    """A service's `Location` as a client may see it: a path of ours or a `PUBLIC_URL` one as it
    is, the service's own address turned into our path (the gateway serves the same paths), and
    anything else (another host, a scheme-relative `//host`, a relative path) None."""
    settings = current_app.extensions["settings"]
    parts = urlsplit(location)
    if parts.scheme or parts.netloc:
        origin = (parts.scheme.lower(), parts.netloc.lower())
        if origin == _origin(settings.public_url):
            return location
        if origin != _origin(settings.service_urls[service]):
            current_app.logger.warning("dropped %s's Location to another host: %s", service, location)
            return None
        location = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    # Browsers read a backslash as a slash: "/\\host" is a scheme-relative URL to them, as "//host" is.
    return location if location.startswith("/") and location[1:2] not in ("/", "\\") else None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def store() -> SessionStore:
    return current_app.extensions["sessions"]


def upstream() -> Upstream:
    return current_app.extensions["upstream"]


class SignInSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class SessionSchema(Schema):
    token = fields.String()
    expires_at = fields.DateTime()
    csrf_token = fields.String()


def _generic_sign_in_failure() -> Problem:
    return Problem(401, "invalid-credentials", "Sign-in failed", "The e-mail or password is not right.")


def sign_in(credentials: dict) -> tuple[str, Session]:
    """Check e-mail and password with identity and open a session: the API and the portal's
    sign-in form both call this. Raises a `Problem` (401, 429 or 503) when it cannot."""
    # identity throttles failed sign-ins per account and per client: it needs the address.
    gateway = replace(GATEWAY, client=request.remote_addr)
    try:
        answer = upstream().call("identity", "POST", "/internal/v1/credentials/verify", credentials, principal=gateway)
    except Problem as problem:
        if problem.status != 504:
            raise
        answer = None  # no answer in time: no session was opened, so nothing is unknown here
    if answer is None or answer.status >= 500:
        raise Problem(
            503,
            "service-unavailable",
            "Temporarily unavailable",
            "Sign-in is not available right now.",
            headers={"Retry-After": "5"},
        )
    if answer.status == 429:
        raise Problem(
            429,
            "too-many-requests",
            "Too many attempts",
            "Wait a while before trying again.",
            headers={"Retry-After": answer.headers.get("Retry-After", "60")},
        )
    if answer.status != 200:
        raise _generic_sign_in_failure()
    return store().open(answer.json())


def sign_out(caller: Caller, response: Response) -> None:
    """End the caller's session and drop the browser's cookie (API and portal alike)."""
    store().close(caller.session.id)
    response.delete_cookie(COOKIE, path="/")


@sessions.route("/sessions")
class Sessions(MethodView):
    @sessions.arguments(SignInSchema)
    @sessions.response(201, SessionSchema)
    def post(self, credentials):
        token, session = sign_in(credentials)
        response = current_app.json.response(
            {"token": token, "expires_at": session.expires_at.isoformat(), "csrf_token": session.csrf_token}
        )
        response.status_code = 201
        set_session_cookie(response, token, session.expires_at)
        return response


@sessions.route("/sessions/current")
class CurrentSession(MethodView):
    @sessions.response(204)
    def delete(self):
        caller = store().signed_in(request, "There is no session to end.")
        require_csrf(caller, request)
        response = Response(status=204)
        sign_out(caller, response)
        return response


def set_session_cookie(response: Response, token: str, expires_at) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=expires_in(expires_at),
        httponly=True,
        samesite="Lax",
        secure=current_app.extensions["settings"].public_url.startswith("https://"),
        path="/",
    )


@forwarding.route("/api/v1/<path:_rest>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
@accepts_raw_body  # the owning service checks the body; we only pass it on
def forward(_rest: str):
    # Dot segments would be routed by one reading of the path and resolved by another
    # downstream ("/api/v1/forum/../admin/..."), and empty ones ("//", a trailing "/") merged
    # by some readers: no public path has them, so none pass.
    segments = request.path.split("/")
    odd = "." in segments or ".." in segments or "" in segments[1:]
    service = None if odd else service_for(request.path)
    if service is None:
        raise Problem(404, "not-found", "Not found", "No such resource.")
    caller = store().caller(request)
    if caller is not None:
        require_csrf(caller, request)
    headers = {name: request.headers[name] for name in FORWARD_REQUEST_HEADERS if name in request.headers}
    headers["X-Forwarded-For"] = request.remote_addr or ""
    headers["X-Forwarded-Proto"] = request.scheme
    if PASS_AUTHORIZATION.match(request.path) and "Authorization" in request.headers:
        headers["Authorization"] = request.headers["Authorization"]
    if UPLOADS.match(request.path):
        request.max_content_length = 1 << 40  # installers are GBs: the owning service sets the limit
    # A chunked body has no Content-Length; it is passed on chunked (urllib3 frames a stream of
    # unknown length so), and werkzeug holds MAX_CONTENT_LENGTH while it is read.
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    body = request.stream if request.content_length or chunked else None
    answer = upstream().request(
        service,
        request.method,
        quote(request.path, safe=PATH_SAFE),  # the decoded path as the service will decode it
        query=request.query_string.decode("latin-1"),
        body=body,
        headers=headers,
        principal=replace(caller.principal if caller else ANONYMOUS, client=request.remote_addr),
        stream=True,
    )
    response_headers = {name: answer.headers[name] for name in FORWARD_RESPONSE_HEADERS if name in answer.headers}
    if "Location" in response_headers:
        location = public_location(response_headers.pop("Location"), service)
        if location is not None:
            response_headers["Location"] = location
    length = int(answer.headers.get("Content-Length") or -1)
    if 0 <= length <= BUFFER_LIMIT:
        data = answer.read()
        answer.release_conn()
        return Response(data, status=answer.status, headers=response_headers)

    def chunks():
        try:
            yield from answer.stream(64 * 1024)
        finally:
            answer.release_conn()

    return Response(
        stream_with_context(chunks()), status=answer.status, headers=response_headers, direct_passthrough=True
    )
