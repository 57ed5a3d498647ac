"""Installation numbers: the key of one license, read aloud on the phone and typed by hand.

`ABCDEF-GHJKMN-PQRST7`: 17 random characters and a check character, in groups of six, from
an alphabet without look-alikes (no 0/O, 1/I/L, U): 30^17 ≈ 2^83 possible numbers, so they
cannot be guessed. The check character (Luhn mod 30) catches every single-character typo and
most swaps of neighbours before anything is looked up.
"""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_LENGTH = 17
GROUP = 6
_VALUE = {char: index for index, char in enumerate(ALPHABET)}


class InvalidInstallationNumber(ValueError):
    pass


def check_character(payload: str) -> str:
    """Luhn mod N over the payload (N = len(ALPHABET))."""
    base = len(ALPHABET)
    total, factor = 0, 2
    for char in reversed(payload):
        addend = factor * _VALUE[char]
        total += addend // base + addend % base
        factor = 1 if factor == 2 else 2
    return ALPHABET[(base - total % base) % base]


def new() -> str:
    payload = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return format_number(payload + check_character(payload))


def format_number(chars: str) -> str:
    return "-".join(chars[i : i + GROUP] for i in range(0, len(chars), GROUP))


def normalise(typed: str) -> str:
    """What a person typed (any case, spaces or dashes anywhere) -> the canonical form.

    Raises InvalidInstallationNumber for a wrong length, a character outside the alphabet or
    a wrong check character."""
    chars = "".join(typed.split()).replace("-", "").upper()
    if len(chars) != RANDOM_LENGTH + 1:
        raise InvalidInstallationNumber(f"An installation number has {RANDOM_LENGTH + 1} characters.")
    wrong = sorted({c for c in chars if c not in _VALUE})
    if wrong:
        raise InvalidInstallationNumber(f"These characters do not occur in installation numbers: {' '.join(wrong)}.")
    if check_character(chars[:-1]) != chars[-1]:
        raise InvalidInstallationNumber("This installation number has a typo (its check character does not match).")
    return format_number(chars)
