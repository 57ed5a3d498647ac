"""Throttling limits, configurable per deployment (`<NAME>_LIMIT=attempts/seconds`)."""

from __future__ import annotations

import os

from shared.throttle import Limit


def _limit(name: str, attempts: int, seconds: int) -> Limit:
    raw = os.environ.get(f"{name}_LIMIT")
    if raw:
        count, _, window = raw.partition("/")
        return Limit(int(count), int(window or seconds))
    return Limit(attempts, seconds)


# Wrong customer-number/company-ID pairs: the company ID is public, the pair is guessable.
REGISTRATION_PER_CLIENT = _limit("REGISTRATION_CLIENT", 10, 15 * 60)
REGISTRATION_PER_CUSTOMER = _limit("REGISTRATION_CUSTOMER", 10, 15 * 60)
# Failed sign-ins.
SIGN_IN_PER_ACCOUNT = _limit("SIGN_IN_ACCOUNT", 10, 15 * 60)
SIGN_IN_PER_CLIENT = _limit("SIGN_IN_CLIENT", 50, 15 * 60)
# Password-reset requests per client (each sends a mail).
PASSWORD_RESET_PER_CLIENT = _limit("PASSWORD_RESET_CLIENT", 10, 15 * 60)
