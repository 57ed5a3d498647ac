"""The JSON rule itself (shared/strict_json.py), at its edges: what is still JSON and what is not."""

from __future__ import annotations

import pytest

from shared.strict_json import MAX_DEPTH, MalformedJSON, loads


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": {"a": 2}}',  # the same name in different objects
        '["\\ud83d\\ude00", "😀"]',  # a surrogate pair is a character
        '{"n": 1.7976931348623157e308, "i": ' + "9" * 4000 + "}",  # the largest double; a long integer
        "[" * MAX_DEPTH + "]" * MAX_DEPTH,
        '"\\u0000"',  # valid JSON; storing it is the service's question (a 422 there)
        " \n\t{} ",
    ],
)
def test_still_json(text: str):
    loads(text.encode())


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": {"b": 1, "b": 2}}', "appears twice"),
        ('[{"staff": false, "staff": true}]', "appears twice"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested deeper"),
        ("[" * 100_000, "nested deeper"),
        ('{"x": [NaN]}', "not a JSON number"),
        ("-Infinity", "not a JSON number"),
        ("[1e309]", "too large"),
        ("9" * 5000, "too many digits"),
        ('{"\\udc00": 1}', "unpaired surrogate"),
        ('["a\\ud800b"]', "unpaired surrogate"),
        ("", "Expecting value"),
        ("{} {}", "Extra data"),
    ],
)
def test_not_json(text: str, reason: str):
    with pytest.raises(MalformedJSON, match=reason):
        loads(text.encode())


def test_bytes_must_be_utf8():
    with pytest.raises(MalformedJSON, match="not UTF-8"):
        loads('"Nováková"'.encode("cp1250"))
