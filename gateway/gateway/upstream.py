"""Calling the services: one pooled HTTP client, a timeout per call, a signed identity.

A service that refuses the connection or does not answer within its timeout becomes a `503`
problem with `Retry-After` for that route alone.
"""

from __future__ import annotations

import logging
import threading
import time

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.exceptions import HTTPError, ProtocolError
from urllib3.util.retry import Retry

from shared import auth
from shared.auth import Principal
from shared.config import Settings
from shared.logs import current_correlation_id
from shared.problems import Problem

log = logging.getLogger(__name__)

GATEWAY = Principal(subject="gateway", kind="service")
# Signing an identity token was a third of the gateway's own CPU per forwarded request. The
# same caller asking the same service reuses its token for this long: every token sent still
# has at least TOKEN_TTL - TOKEN_REUSE seconds to live, and sign-out or a removed right still
# counts on the next request (the session is looked up and the service checks rights each time).
TOKEN_REUSE = 20
TOKEN_CACHE_SIZE = 10_000
# A service closes a keep-alive connection idle for gunicorn's `keepalive` (5 s,
# gunicorn.conf.py). Reusing one just as it does so fails the request before any answer, so a
# pooled connection idle longer than this is opened afresh instead.
REUSE_IDLE_AT_MOST = 2.0


class _FreshConnection(HTTPConnection):
    """A pooled connection that counts as dropped once idle for REUSE_IDLE_AT_MOST seconds."""

    last_used = 0.0

    def request(self, *args, **kwargs):
        self.last_used = time.monotonic()
        return super().request(*args, **kwargs)

    @property
    def is_connected(self) -> bool:
        if self.last_used and time.monotonic() - self.last_used > REUSE_IDLE_AT_MOST:
            return False
        return super().is_connected


class _BrokenReuse(Retry):
    """Retry a GET or HEAD once when its connection broke before the answer (the service closed
    or restarted it); never after a timeout, and never a request with a body, which the
    service may have acted on."""

    def _is_read_error(self, err: Exception) -> bool:
        return isinstance(err, ProtocolError)  # a ReadTimeoutError counts as "other": not retried


RETRIES = _BrokenReuse(total=None, connect=0, read=1, other=0, status=0, redirect=0, allowed_methods={"GET", "HEAD"})


class Upstream:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.secret = settings.require_secret()
        self.timeout = urllib3.Timeout(connect=min(1.0, settings.upstream_timeout), read=settings.upstream_timeout)
        # One connection pool per service, reused across requests and threads (urllib3 is
        # thread-safe), held here so that a request goes straight to its pool: the
        # PoolManager we used before parsed the whole URL and looked the pool up every time.
        self._pools: dict[str, urllib3.HTTPConnectionPool] = {}
        self._pools_lock = threading.Lock()
        self._tokens: dict[tuple[str, Principal], tuple[float, str]] = {}

    def _pool(self, service: str) -> urllib3.HTTPConnectionPool:
        pool = self._pools.get(service)
        if pool is None:
            with self._pools_lock:
                pool = self._pools.get(service)
                if pool is None:
                    pool = urllib3.connection_from_url(
                        self.settings.service_urls[service], maxsize=64, block=False, retries=RETRIES
                    )
                    if type(pool) is urllib3.HTTPConnectionPool:  # the services speak plain HTTP inside
                        pool.ConnectionCls = _FreshConnection
                    self._pools[service] = pool
        return pool

    def identity_header(self, service: str, principal: Principal | None) -> dict[str, str]:
        if principal is None:
            return {}
        key = (service, principal)
        now = time.monotonic()
        cached = self._tokens.get(key)
        if cached is None or now - cached[0] > TOKEN_REUSE:
            if len(self._tokens) >= TOKEN_CACHE_SIZE:
                self._tokens.clear()  # callers come and go; the busy ones are signed again at once
            cached = (now, auth.issue(self.secret, service, principal))
            self._tokens[key] = cached
        return {auth.HEADER: cached[1]}

    def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        principal: Principal | None = None,
        stream: bool = False,
        timeout: float | None = None,
    ) -> urllib3.BaseHTTPResponse:
        all_headers = {"X-Correlation-ID": current_correlation_id(), **(headers or {})}
        all_headers.update(self.identity_header(service, principal))
        try:
            return self._pool(service).urlopen(
                method,
                f"{path}?{query}" if query else path,
                body=body,
                headers=all_headers,
                timeout=urllib3.Timeout(connect=1.0, read=timeout) if timeout else self.timeout,
                preload_content=not stream,
                redirect=False,
                assert_same_host=False,
            )
        except HTTPError as error:
            log.warning("%s unavailable: %s", service, error)
            raise Problem(
                503,
                "service-unavailable",
                "Temporarily unavailable",
                f"This part of the Customer Center ({service}) is not available right now. Try again shortly.",
                headers={"Retry-After": "5"},
                service=service,
            ) from None

    def call(self, service: str, method: str, path: str, json_body=None, principal: Principal | None = GATEWAY, **kw):
        import json

        body = None if json_body is None else json.dumps(json_body).encode()
        headers = (
            {"Content-Type": "application/json", "Accept": "application/json"}
            if body is not None
            else {"Accept": "application/json"}
        )
        return self.request(service, method, path, body=body, headers=headers, principal=principal, **kw)
