"""Calling the services: one pooled HTTP client, a timeout per call, a signed identity.

A service that cannot be reached (the connection refused or not made within a second), or a
call the bulkhead refuses, is a `503` problem with `Retry-After` for that route alone: nothing
was done. A service that got the request but did not answer within its timeout is a `504`
(`upstream-timeout`, with `Retry-After`): it may have acted on it, the outcome is unknown, and
a write is retried with the same `Idempotency-Key` (`shared.idempotency`), which answers the
first answer again instead of acting twice.

A bulkhead keeps one hung service from taking every thread of a gateway worker: at most
`UPSTREAM_MAX_IN_FLIGHT` calls per service are in flight in one worker process (by default half
of its threads, gunicorn.conf.py), taken without waiting; past that the call is a `503` at once. A slot
bounds the wait for a service's answer: a streamed answer (a download) gives it back as soon as
the service's headers arrived, so long downloads never crowd each other or anyone else out of a
service's share (they hold gateway threads; in compose the edge server sends the files itself).
"""

from __future__ import annotations

import logging
import threading
import time

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.exceptions import HTTPError, MaxRetryError, ProtocolError, ReadTimeoutError
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


class Bulkhead:
    """Slots for calls in flight, `limit` per service, taken without waiting."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._refusals_logged: dict[str, float] = {}

    def _semaphore(self, service: str) -> threading.BoundedSemaphore:
        slots = self._slots.get(service)
        if slots is None:
            with self._lock:
                slots = self._slots.setdefault(service, threading.BoundedSemaphore(self.limit))
        return slots

    def try_acquire(self, service: str) -> bool:
        if self._semaphore(service).acquire(blocking=False):
            return True
        now = time.monotonic()
        if now - self._refusals_logged.get(service, 0.0) > 1.0:  # a refusal storm logs once a second
            self._refusals_logged[service] = now
            log.warning("%s has %d calls in flight, its share of this worker: refusing more", service, self.limit)
        return False

    def release(self, service: str) -> None:
        self._semaphore(service).release()


def unavailable(service: str, detail: str | None = None) -> Problem:
    return Problem(
        503,
        "service-unavailable",
        "Temporarily unavailable",
        detail or f"This part of the Customer Center ({service}) is not available right now. Try again shortly.",
        headers={"Retry-After": "5"},
        service=service,
    )


def timed_out(service: str, method: str) -> Problem:
    """The service did not answer in time: it may have done what it was asked."""
    retry = (
        "Send it again with the same Idempotency-Key: a request that was done is answered as it was, not done twice."
        if method not in ("GET", "HEAD", "OPTIONS")
        else "Try again shortly."
    )
    return Problem(
        504,
        "upstream-timeout",
        "No answer in time",
        f"This part of the Customer Center ({service}) did not answer in time, so whether the request "
        f"was done is unknown. {retry}",
        headers={"Retry-After": "5"},
        service=service,
    )


class Upstream:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.bulkhead = Bulkhead(settings.upstream_max_in_flight)
        self.secret = settings.require_secret()
        self.timeout = urllib3.Timeout(connect=min(1.0, settings.upstream_timeout), read=settings.upstream_timeout)
        # One connection pool per service, reused across requests and threads (urllib3 is
        # thread-safe), held here so that a request goes straight to its pool: the
        # PoolManager we used before parsed the whole URL and looked the pool up every time.
        self._pools: dict[str, urllib3.HTTPConnectionPool] = {}
        self._pools_lock = threading.Lock()
        self._tokens: dict[tuple[str, Principal], tuple[float, str]] = {}
        self._answer_hooks: dict[str, list] = {}

    def on_answer(self, service: str, hook) -> None:
        """Run `hook(headers)` on every answer from `service` before it is used (identity's
        notices to the gateway, see `gateway.identity_notices`)."""
        self._answer_hooks.setdefault(service, []).append(hook)

    def _pool(self, service: str) -> urllib3.HTTPConnectionPool:
        pool = self._pools.get(service)
        if pool is None:
            with self._pools_lock:
                pool = self._pools.get(service)
                if pool is None:
                    # The bulkhead keeps at most `limit` calls to a service in flight: as many
                    # connections are kept for reuse.
                    pool = urllib3.connection_from_url(
                        self.settings.service_urls[service], maxsize=self.bulkhead.limit, block=False, retries=RETRIES
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
        pool = self._pool(service)
        if not self.bulkhead.try_acquire(service):
            raise unavailable(
                service, f"This part of the Customer Center ({service}) is too busy right now. Try again shortly."
            )
        try:
            answer = pool.urlopen(
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
            # urllib3 hands a timeout over in a MaxRetryError when the retries (none) run out
            cause = error.reason if isinstance(error, MaxRetryError) else error
            if isinstance(cause, ReadTimeoutError):  # sent, and no answer in time: the outcome is unknown
                log.warning("%s did not answer %s %s in time: %s", service, method, path, error)
                raise timed_out(service, method) from None
            log.warning("%s unavailable: %s", service, error)
            raise unavailable(service) from None
        finally:
            # Answered (headers at least, for a stream), refused or timed out: the slot is free.
            self.bulkhead.release(service)
        try:
            for hook in self._answer_hooks.get(service, ()):
                hook(answer.headers)
        except BaseException:
            answer.release_conn()
            raise
        return answer

    def call(
        self,
        service: str,
        method: str,
        path: str,
        json_body=None,
        principal: Principal | None = GATEWAY,
        headers: dict[str, str] | None = None,
        **kw,
    ):
        """A JSON call; `headers` are sent too (the portal's `Idempotency-Key`)."""
        import json

        body = None if json_body is None else json.dumps(json_body).encode()
        all_headers = (
            {"Content-Type": "application/json", "Accept": "application/json"}
            if body is not None
            else {"Accept": "application/json"}
        )
        all_headers.update(headers or {})
        return self.request(service, method, path, body=body, headers=all_headers, principal=principal, **kw)
