"""What a name may hold that someone can set and others see: a company, a product and its
editions, a partner, a person, a forum category or title. One line of visible text: no
control characters (C0 with CR, LF and tab, DEL, C1 with NEL), no line or paragraph separators,
no lone surrogates, no bidirectional overrides or isolates (they reorder the text shown around
the name). Such a name goes into mail subjects, CSV files and pages unchanged.

`Name` is the marshmallow field for the API schemas; `refuse_control_characters` the same rule
as a validator for other one-line fields (a street, a partner's sale id); `one_line` makes any
text, such as a value stored before these checks, fit for one line.
"""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields, validate

NOT_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
MESSAGE = "Use letters, digits, spaces and punctuation only (no control characters or line breaks)."


def refuse_control_characters(value: str) -> None:
    """A marshmallow validator: refuses what `NOT_IN_NAMES` matches."""
    if NOT_IN_NAMES.search(value):
        raise ValidationError(MESSAGE)


def one_line(text: str) -> str:
    """`text` with each character a name may not hold as a space, and runs of spaces as one."""
    return " ".join(NOT_IN_NAMES.sub(" ", text).split())


class Name(fields.String):
    """A name: `min_length` to `max_length` characters, none of them `NOT_IN_NAMES`."""

    def __init__(self, max_length: int = 200, min_length: int = 1, **kwargs):
        rules = [validate.Length(min=min_length, max=max_length), refuse_control_characters]
        super().__init__(validate=rules, **kwargs)
