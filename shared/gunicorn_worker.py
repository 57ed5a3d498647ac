"""The gunicorn worker every web component runs (`worker_class` in gunicorn.conf.py): gthread's,
except that the errors gunicorn answers itself, before any application sees the request (a
request line past `limit_request_line`: 414; too many or too large headers: 431; a request it
cannot parse: 400; an unsupported transfer coding: 501; ...), are problem+json like every
other error of ours, not gunicorn's HTML page.

gunicorn decides the status (`Worker.handle_error`) and writes its page with one `sendall` on
the client's socket; the socket it is handed here turns that page into a problem document.
"""

from __future__ import annotations

import json
import socket
from http import HTTPStatus

from gunicorn.workers.gthread import ThreadWorker

from shared.problems import MEDIA_TYPE, STATUS_TYPES, TYPE_PREFIX

# Stable types for the statuses only gunicorn (or the edge server) answers with.
SERVER_TYPES = {
    **STATUS_TYPES,
    408: "request-timeout",
    414: "uri-too-long",
    417: "expectation-failed",
    431: "request-header-fields-too-large",
    501: "not-implemented",
    505: "http-version-not-supported",
}
DETAILS = {
    400: "The request could not be read: it is not well-formed HTTP/1.1.",
    403: "The request was refused.",
    414: "The request line (method, path and query) is too long.",
    417: "The expectation in the Expect header cannot be met.",
    431: "The header fields of the request are too many or too large.",
    501: "The request uses a transfer coding that is not supported.",
}


def problem_answer(status: int) -> bytes:
    """A whole HTTP/1.1 answer (closing the connection) with the problem document for `status`."""
    phrase = _phrase(status)
    body = json.dumps(
        {
            "type": TYPE_PREFIX + SERVER_TYPES.get(status, "error"),
            "title": phrase,
            "status": status,
            "detail": DETAILS.get(status, "Something went wrong on our side." if status >= 500 else phrase + "."),
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {MEDIA_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Cache-Control: no-store\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class _ProblemSocket:
    """The client's socket, as `handle_error` writes to it: its error page becomes a problem."""

    def __init__(self, sock: socket.socket):
        self._sock = sock

    def sendall(self, data: bytes) -> None:
        status_line = data.split(b"\r\n", 1)[0].split(b" ")
        if len(status_line) >= 2 and status_line[0].startswith(b"HTTP/") and status_line[1].isdigit():
            data = problem_answer(int(status_line[1]))
        self._sock.sendall(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class ProblemThreadWorker(ThreadWorker):
    def handle_error(self, req, client, addr, exc):
        super().handle_error(req, _ProblemSocket(client), addr, exc)
