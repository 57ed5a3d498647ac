"""The one reading of a JSON request body every component agrees on (quality.md: bad input is a
`400`, never a `5xx`).

Python's `json` reads more than JSON and fails on some of it in ways that become a `500`:

- a name twice in one object is taken silently (the last one wins), so two readers of the
  same text may disagree about it (`{"staff": false, "staff": true}`): refused;
- `NaN`, `Infinity` and `-Infinity` are not JSON, and a number beyond a double (`1e400`)
  becomes infinity: refused;
- an integer of more than 4,300 digits raises a `ValueError` that no parser expects, and
  deep nesting (`[[[[...`) a `RecursionError`: refused, and anything nested deeper than
  `MAX_DEPTH` is too (no request of ours nests more than a few levels);
- a lone surrogate (`"\\ud800"`) is no character and cannot be stored or answered as UTF-8:
  refused. So are bodies that are not UTF-8 (RFC 8259).

`loads` raises `MalformedJSON` (a `ValueError`) with a short reason for each of these.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class MalformedJSON(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedJSON(f"the name {_shown(key)} appears twice in one object")
        result[key] = value
    return result


def _constant(name: str) -> Any:
    raise MalformedJSON(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise MalformedJSON("a number is too large")
    return value


def _shown(key: str) -> str:
    return json.dumps(key if len(key) <= 40 else key[:40] + "…")


def loads(data: bytes | str) -> Any:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedJSON("the body is not UTF-8") from None
    try:
        value = json.loads(data, object_pairs_hook=_object, parse_constant=_constant, parse_float=_float)
    except MalformedJSON:
        raise
    except RecursionError:
        raise MalformedJSON(f"it is nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as error:
        raise MalformedJSON(f"{error.msg} at character {error.pos}") from None
    except ValueError:  # an integer with more digits than Python converts
        raise MalformedJSON("a number has too many digits") from None
    _check(value)
    return value


def _check(value: Any) -> None:
    """Depth and strings, without recursion."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise MalformedJSON("a string holds an unpaired surrogate")
            continue
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > MAX_DEPTH:
            raise MalformedJSON(f"it is nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, level + 1) for child in children)
