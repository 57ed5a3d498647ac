"""Passwords: argon2id at the parameters quality.md asks for, and the rules a new one meets.

Rules (NIST 800-63B style): 8 to 128 characters, no composition rules, not on the list of
common passwords shipped beside this file (Django's list of 19,646, BSD licence), and the
length is checked before anything is hashed, so a 10 kB "password" costs nothing.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 128

hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

# Verified against when the e-mail is unknown, so that answer takes as long as a wrong password.
_DUMMY_HASH = hasher.hash("not-a-real-password-only-for-timing")


@functools.cache
def common_passwords() -> frozenset[str]:
    raw = resources.files("identity").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(raw).decode().split())


def problems_with(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters (12 or more is better)."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if password.lower() in common_passwords() or password.strip().lower() in common_passwords():
        return "This password is too common; choose another."
    return None


def hash_password(password: str) -> str:
    return hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return hasher.check_needs_rehash(password_hash)
