"""CSV files that people open in a spreadsheet program (shipping lists, license lists, the
importer's output): the one way the suite writes them, safe against formula injection.

A spreadsheet runs a cell that begins with `=`, `+`, `-` or `@` (and, in some programs, a tab
or carriage return first) as a formula, so a company name such as `=HYPERLINK(...)` typed by a
customer or a partner would run on the vendor's or the carrier's desk. Following OWASP ("CSV
Injection"), every text cell that begins with one of those characters gets a single quote in
front (shown as text, the value itself unchanged after it), and every cell is quoted, so no
delimiter or line break inside a value starts a new cell.

Only text is changed: numbers we write as numbers (`seats`, ids: Python `int`, `float`,
`Decimal`) are written as they are, `-3` included, since a number is not a formula and must
stay a number in the sheet. Dates are written as ISO dates, `None` as an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

# OWASP's list: what makes Excel, LibreOffice or Google Sheets read a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Spreadsheet programs read UTF-8 (Czech letters) right only with a byte order mark.
BOM = "\ufeff"


def cell(value: Any) -> str:
    """One value as the text of its cell: inert if it is text that looks like a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class Writer:
    """`csv.writer` with every cell quoted and passed through `cell()`."""

    def __init__(self, file: TextIO, delimiter: str = ","):
        self._writer = csv.writer(file, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\r\n")

    def writerow(self, values: Iterable[Any]) -> None:
        self._writer.writerow([cell(value) for value in values])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def document(header: Iterable[str], rows: Iterable[Iterable[Any]], delimiter: str = ",") -> str:
    """A whole CSV file as text, with a BOM: the header, then the rows."""
    out = io.StringIO()
    writer = Writer(out, delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return BOM + out.getvalue()
