"""The Czech/Slovak company ID (IČO): 8 digits, the last a mod-11 check digit.

Weights 8..2 over the first seven digits; r = sum mod 11; check = (11 - r) mod 10.
Identity (registration) and licensing (customers, partner sales) both accept it at their edge.
"""

from __future__ import annotations

from marshmallow import ValidationError, fields


def is_valid(value: str) -> bool:
    if len(value) != 8 or not value.isascii() or not value.isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:7], range(8, 1, -1), strict=True))
    return int(value[7]) == (11 - total % 11) % 10


class CompanyId(fields.String):
    """A marshmallow field that accepts only a valid company ID (spaces are dropped)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).replace(" ", "")
        if not is_valid(text):
            raise ValidationError("Not a valid company ID (8 digits with a correct check digit).")
        return text
