"""Signed, time-limited download links: HMAC-SHA256 over (file, customer, expiry[, person]).

A link is `{PUBLIC_URL}/api/v1/files/<file id>/<name>?customer=<n>&expires=<unix time>[&user=<id>]&signature=<hex>`;
it works for anyone who has it until it expires (a download manager, the desktop program),
and nothing in it can be changed without breaking the signature (compared in constant time).
A link handed to a signed-in person names them (`user`): it works only while they still hold
the right it was given for (checked with identity at each download), so revoking a right or
removing the person ends the links they fetched before. The desktop program's links (the
update check: no person) are bound to the installation's entitlement instead.
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


def signature(secret: str, file_id: int, customer_number: str, expires: int, user_id: str | None = None) -> str:
    message = f"{file_id}:{customer_number}:{expires}"
    if user_id is not None:
        message += f":user:{user_id}"
    return hmac.new(_key(secret), message.encode(), hashlib.sha256).hexdigest()


def make(
    secret: str,
    public_url: str,
    file_id: int,
    name: str,
    customer_number: str,
    ttl: int,
    user_id: str | None = None,
) -> str:
    expires = int(time.time()) + ttl
    query = {"customer": customer_number, "expires": expires}
    if user_id is not None:
        query["user"] = user_id
    query["signature"] = signature(secret, file_id, customer_number, expires, user_id)
    return f"{public_url}/api/v1/files/{file_id}/{quote(name)}?{urlencode(query)}"


def verify(
    secret: str, file_id: int, customer_number: str, expires: str, given: str, user_id: str | None = None
) -> None:
    try:
        expires_at = int(expires)
    except (TypeError, ValueError):
        raise Tampered() from None
    expected = signature(secret, file_id, customer_number or "", expires_at, user_id)
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, once a 500).
    if not hmac.compare_digest(expected.encode(), (given or "").encode("utf-8", "replace")):
        raise Tampered()
    if expires_at < time.time():
        raise Expired()
