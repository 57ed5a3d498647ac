"""Throttling limits, configurable per deployment (`<NAME>_LIMIT=attempts/seconds`)."""

from __future__ import annotations

from shared.throttle import limit_from_env

# Wrong customer-number/company-ID pairs: the company ID is public, the pair is guessable.
REGISTRATION_PER_CLIENT = limit_from_env("REGISTRATION_CLIENT_LIMIT", "10/900")
REGISTRATION_PER_CUSTOMER = limit_from_env("REGISTRATION_CUSTOMER_LIMIT", "10/900")
# Failed sign-ins.
SIGN_IN_PER_ACCOUNT = limit_from_env("SIGN_IN_ACCOUNT_LIMIT", "10/900")
SIGN_IN_PER_CLIENT = limit_from_env("SIGN_IN_CLIENT_LIMIT", "50/900")
# Password-reset requests per client (each sends a mail).
PASSWORD_RESET_PER_CLIENT = limit_from_env("PASSWORD_RESET_CLIENT_LIMIT", "10/900")
