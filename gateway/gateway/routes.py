"""Which service owns which public path: the gateway's route table, in one place.

First match wins, so more specific patterns come first. A path that matches nothing is a
404 at the gateway. Paths the gateway answers itself (sessions, the profile view, dead
letters, the portal) are Flask routes and never reach this table.
"""

from __future__ import annotations

import re

ROUTES: list[tuple[str, str]] = [
    # vendor staff
    (r"/api/v1/admin/(customers|products|licenses|partners)(/.*)?", "licensing"),
    (
        r"/api/v1/admin/(releases|shipments|shipments\.csv|news|documents|trainings|download-counts)(/.*)?",
        "distribution",
    ),
    (r"/api/v1/admin/forum(/.*)?", "forum"),
    (r"/api/v1/admin/(customer-profiles|users|staff)(/.*)?", "identity"),
    # a customer profile: each part goes to the service that owns that data
    (r"/api/v1/customers/[^/]+/(licenses|licenses\.csv|product-registrations)(/.*)?", "licensing"),
    (r"/api/v1/customers/[^/]+/(downloads|download-history|documents|news|trainings)(/.*)?", "distribution"),
    (r"/api/v1/customers/[^/]+/(profile|addresses|delivery-method|users)(/.*)?", "identity"),
    # accounts
    (r"/api/v1/(registrations|password-resets|invitations|me|password)(/.*)?", "identity"),
    # partners' systems, the desktop program, files
    (r"/api/v1/partner(/.*)?", "licensing"),
    (r"/api/v1/(updates|downloads|files|news)(/.*)?", "distribution"),
    (r"/api/v1/forum(/.*)?", "forum"),
]

_COMPILED = [(re.compile(pattern + r"\Z"), service) for pattern, service in ROUTES]

# Requests to these keep their own Authorization header (partner API keys, checked by the
# owning service), since they are not sessions of ours.
PASS_AUTHORIZATION = re.compile(r"/api/v1/partner(/.*)?\Z")


def service_for(path: str) -> str | None:
    for pattern, service in _COMPILED:
        if pattern.match(path):
            return service
    return None
