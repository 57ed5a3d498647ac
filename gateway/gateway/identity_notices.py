"""What identity's answers tell the gateway to do before the caller hears of them.

Identity writes two headers on an answer whose change must count from the very next request
(see `identity.gateway_notices`): `X-Access-Versions` (a person's memberships or rights
changed: their sessions carry the new number, so services with an older copy ask identity
first) and `X-End-Sessions` (a password changed or reset: the person's other sessions end).
`Upstream` runs `apply` on every answer from identity, whichever page or API call caused it,
before the answer goes on; the headers themselves never leave the gateway (forwarding passes
an allow-list of headers).
"""

from __future__ import annotations

import logging
import re

from gateway.sessions import SessionStore

log = logging.getLogger(__name__)

ACCESS_HEADER = "X-Access-Versions"
END_SESSIONS_HEADER = "X-End-Sessions"
_ACCESS = re.compile(r"\s*([0-9a-fA-F-]{1,36})=(\d{1,12})\s*\Z")
_END = re.compile(r"\s*([0-9a-fA-F-]{1,36})(?:;keep=([0-9a-fA-F-]{1,36}))?\s*\Z")


def applier(store: SessionStore):
    """The hook for identity's answers (`Upstream.on_answer("identity", ...)`)."""

    def apply(headers) -> None:
        for item in _items(headers.get(ACCESS_HEADER)):
            match = _ACCESS.match(item)
            if match:
                store.raise_access_version(match[1], int(match[2]))
            else:
                log.error("identity sent an unreadable %s item: %r", ACCESS_HEADER, item)
        for item in _items(headers.get(END_SESSIONS_HEADER)):
            match = _END.match(item)
            if match:
                store.end_all(match[1], keep=match[2])
            else:
                log.error("identity sent an unreadable %s item: %r", END_SESSIONS_HEADER, item)

    return apply


def _items(value: str | None) -> list[str]:
    return [item for item in (value or "").split(",") if item.strip()]
