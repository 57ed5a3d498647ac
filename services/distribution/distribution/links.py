"""Signed, time-limited download links: HMAC-SHA256 over (file, customer, expiry).

A link is `{PUBLIC_URL}/api/v1/files/<file id>/<name>?customer=<n>&expires=<unix time>&signature=<hex>`;
it works for anyone who has it until it expires (a download manager, the desktop program),
and nothing in it can be changed without breaking the signature (compared in constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode


class Tampered(Exception):
    pass


class Expired(Exception):
    pass


def _key(secret: str) -> bytes:
    # A key of its own, derived from the deployment's secret: a link signature is useless as anything else.
    return hmac.new(secret.encode(), b"download-links", hashlib.sha256).digest()


def signature(secret: str, file_id: int, customer_number: str, expires: int) -> str:
    message = f"{file_id}:{customer_number}:{expires}".encode()
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def make(secret: str, public_url: str, file_id: int, name: str, customer_number: str, ttl: int) -> str:
    expires = int(time.time()) + ttl
    query = urlencode(
        {
            "customer": customer_number,
            "expires": expires,
            "signature": signature(secret, file_id, customer_number, expires),
        }
    )
    return f"{public_url}/api/v1/files/{file_id}/{quote(name)}?{query}"


def verify(secret: str, file_id: int, customer_number: str, expires: str, given: str) -> None:
    try:
        expires_at = int(expires)
    except (TypeError, ValueError):
        raise Tampered() from None
    expected = signature(secret, file_id, customer_number or "", expires_at)
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, once a 500).
    if not hmac.compare_digest(expected.encode(), (given or "").encode("utf-8", "replace")):
        raise Tampered()
    if expires_at < time.time():
        raise Expired()
