"""Import customers and their direct-sale licenses from a CSV, all or nothing.

One row per license and its customer: company_id, company_name, street, city, postal_code,
country (optional, CZ), product, edition, add_ons ("|" or "," between them), seats (optional,
1), support_until (optional, YYYY-MM-DD or D.M.YYYY). UTF-8 with or without a BOM; comma or
semicolon between columns (Czech Excel writes semicolons), told apart by the header.

Every row is checked first with the API's own schemas and the catalogue (`check_product`).
If any row is rejected nothing is written and the rejections (line, column, reason) are
returned. Otherwise one transaction creates the missing customers (`create_customer`; a
company ID that is a customer already is reused) and issues the licenses (`issue_direct`,
announced through the outbox like the API), and the installation numbers go to an output CSV.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TextIO

from marshmallow import ValidationError, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import Session

from licensing.api import NewCustomerSchema, NewLicenseSchema
from licensing.customers import CustomerExists, create_customer
from licensing.licenses import UnknownProduct, check_product, issue_direct
from licensing.models import Customer, Product
from shared import spreadsheet
from shared.db import Database

REQUIRED_COLUMNS = ("company_id", "company_name", "street", "city", "postal_code", "product", "edition")
OPTIONAL_COLUMNS = ("country", "add_ons", "seats", "support_until")
ADDRESS_COLUMNS = ("street", "city", "postal_code", "country")
OUTPUT_COLUMNS = (
    "line",
    "company_id",
    "company_name",
    "customer_number",
    "customer",
    "installation_number",
    "product",
    "edition",
    "add_ons",
    "seats",
    "support_until",
)


class _SpreadsheetLicenseSchema(NewLicenseSchema):
    # A cell is text: "3" is 3 seats here (the API wants a JSON integer); "2.5" is still refused.
    seats = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10000))


_CUSTOMER_SCHEMA = NewCustomerSchema()
_LICENSE_SCHEMA = _SpreadsheetLicenseSchema(exclude=("customer_number",))  # the customer comes from the row
_CZECH_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unreadable, no header, output in the way)."""


@dataclass(frozen=True)
class Rejection:
    line: int
    column: str
    reason: str


@dataclass(frozen=True)
class Row:
    line: int
    customer: dict  # NewCustomerSchema's output
    license: dict  # NewLicenseSchema's output without customer_number


@dataclass(frozen=True)
class Issued:
    line: int
    company_id: str
    company_name: str
    customer_number: str
    customer: str  # "created" or "reused"
    installation_number: str
    product: str
    edition: str
    add_ons: list[str]
    seats: int
    support_until: date | None


@dataclass
class ImportResult:
    rows: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    customers_created: int = 0
    customers_reused: int = 0
    issued: list[Issued] = field(default_factory=list)
    output: Path | None = None
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.rejected


class Progress:
    """A one-line progress bar on a terminal; silent when the stream is not one."""

    WIDTH = 30

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._label, self._total, self._done, self._drawn_at = "", 0, 0, 0.0

    def start(self, label: str, total: int) -> None:
        self._label, self._total, self._done, self._drawn_at = label, total, 0, 0.0
        self._draw()

    def advance(self) -> None:
        self._done += 1
        if self._done == self._total or time.monotonic() - self._drawn_at >= 0.1:
            self._draw()

    def finish(self) -> None:
        if self.enabled and self._label:
            self.stream.write("\n")
            self.stream.flush()
        self._label = ""

    def _draw(self) -> None:
        if not self.enabled:
            return
        self._drawn_at = time.monotonic()
        share = self._done / self._total if self._total else 1.0
        bar = "#" * int(share * self.WIDTH)
        self.stream.write(f"\r{self._label:<10} [{bar:<{self.WIDTH}}] {self._done}/{self._total} {share:4.0%}")
        self.stream.flush()


# --- reading ------------------------------------------------------------------------------
def read_csv(path: Path) -> tuple[str, list[tuple[int, dict[str, str]]]]:
    """(delimiter, [(line number, {column: stripped value})]); blank rows are skipped."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ImportFileError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ImportFileError(
            f"{path}: line {line} is not UTF-8 (save the sheet as 'CSV UTF-8', not as plain 'CSV')"
        ) from None
    header_line = text.split("\n", 1)[0]
    delimiter = _delimiter(header_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{path} is empty") from None
    columns = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ImportFileError(
            f"{path}: the header (line 1) lacks the column(s) {', '.join(missing)}; "
            f"the columns are {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}"
        )
    duplicated = sorted({name for name in columns if name and columns.count(name) > 1})
    if duplicated:
        raise ImportFileError(f"{path}: the header (line 1) has {', '.join(duplicated)} more than once")
    rows = []
    line = reader.line_num + 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(columns) if name}
                rows.append((line, values))
            line = reader.line_num + 1
    except csv.Error as error:
        raise ImportFileError(f"{path}: line {line}: {error}") from None
    return delimiter, rows


def _delimiter(header_line: str) -> str:
    """Semicolon or comma: whichever splits the header into the known column names."""
    known = set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)

    def hits(separator: str) -> int:
        return sum(1 for name in header_line.split(separator) if name.strip().strip('"').lower() in known)

    return ";" if hits(";") > hits(",") else ","


# --- checking -----------------------------------------------------------------------------
def check_row(session: Session, line: int, values: dict[str, str]) -> tuple[Row | None, list[Rejection]]:
    rejections: list[Rejection] = []
    address = {name: values[name] for name in ADDRESS_COLUMNS if values.get(name)}
    if "country" in address:
        address["country"] = address["country"].upper()
    customer_input = {name: values[name] for name in ("company_id", "company_name") if values.get(name)}
    customer_input["billing_address"] = address
    customer = _load(_CUSTOMER_SCHEMA, customer_input, line, rejections)

    license_input: dict = {name: values[name] for name in ("product", "edition", "seats") if values.get(name)}
    license_input["add_ons"] = [a.strip() for a in re.split(r"[|,]", values.get("add_ons", "")) if a.strip()]
    if values.get("support_until"):
        day = parse_date(values["support_until"])
        if day is None:
            rejections.append(
                Rejection(line, "support_until", f"{values['support_until']!r} is not a date (YYYY-MM-DD or D.M.YYYY)")
            )
        else:
            license_input["support_until"] = day.isoformat()
    license_ = _load(_LICENSE_SCHEMA, license_input, line, rejections)

    if license_ is not None:
        try:
            check_product(session, license_["product"], license_["edition"], license_["add_ons"])
        except UnknownProduct as error:
            product = session.get(Product, license_["product"])
            column = (
                "product"
                if product is None
                else "edition"
                if license_["edition"] not in product.editions
                else "add_ons"
            )
            rejections.append(Rejection(line, column, str(error)))
    if rejections or customer is None or license_ is None:
        return None, rejections
    return Row(line, customer, license_), []


def parse_date(text: str) -> date | None:
    """YYYY-MM-DD, or the Czech D.M.YYYY (spaces allowed: "1. 12. 2027")."""
    compact = text.replace(" ", "")
    try:
        if _ISO_DATE.match(compact):
            return date.fromisoformat(compact)
        match = _CZECH_DATE.match(compact)
        if match:
            day, month, year = map(int, match.groups())
            return date(year, month, day)
    except ValueError:
        return None
    return None


def _load(schema, data: dict, line: int, rejections: list[Rejection]) -> dict | None:
    try:
        return schema.load(data)
    except ValidationError as error:
        for column, reason in _flatten(error.messages):
            rejections.append(Rejection(line, column, reason))
        return None


def _flatten(messages, prefix: str = "") -> list[tuple[str, str]]:
    """marshmallow's nested messages -> (column, reason); the address's fields are columns."""
    if isinstance(messages, list):
        return [(prefix or "-", " ".join(str(m) for m in messages))]
    found = []
    for key, value in messages.items():
        column = "add_ons" if prefix == "add_ons" else str(key) if key != "billing_address" else ""
        found += _flatten(value, column or prefix)
    return found


def _check_same_customer(rows: list[Row]) -> list[Rejection]:
    """One company ID is one customer: its rows in the file must agree on name and address."""
    first: dict[str, Row] = {}
    rejections = []
    for row in rows:
        company_id = row.customer["company_id"]
        earlier = first.setdefault(company_id, row)
        if earlier is row:
            continue
        for column in ("company_name", *ADDRESS_COLUMNS):
            mine = row.customer["billing_address"].get(column) if column in ADDRESS_COLUMNS else row.customer[column]
            theirs = (
                earlier.customer["billing_address"].get(column)
                if column in ADDRESS_COLUMNS
                else earlier.customer[column]
            )
            if mine != theirs:
                rejections.append(
                    Rejection(
                        row.line,
                        column,
                        f"company ID {company_id} is on line {earlier.line} with {column} {theirs!r}, "
                        f"here with {mine!r} (one company ID is one customer)",
                    )
                )
    return rejections


# --- importing ----------------------------------------------------------------------------
def default_output(path: Path) -> Path:
    return path.with_name(f"{path.stem if path.suffix.lower() == '.csv' else path.name}.imported.csv")


def import_file(
    database: Database,
    path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportResult:
    """Check every row; import them all in one transaction, or nothing if any is rejected.

    Raises ImportFileError when the file as a whole cannot be read or the output is in the way."""
    path = Path(path)
    output_path = Path(output) if output else default_output(path)
    progress = progress or Progress(enabled=False)
    if not dry_run and output_path.exists():
        raise ImportFileError(
            f"{output_path} exists: was this file imported already? Move it away or choose another --output."
        )
    delimiter, raw_rows = read_csv(path)
    result = ImportResult(rows=len(raw_rows), dry_run=dry_run)

    session = database.sessions()
    try:
        rows: list[Row] = []
        progress.start("checking", len(raw_rows))
        for line, values in raw_rows:
            row, rejections = check_row(session, line, values)
            if row is not None:
                rows.append(row)
            result.rejected += rejections
            progress.advance()
        progress.finish()
        result.rejected += _check_same_customer(rows)
        result.rejected.sort(key=lambda r: r.line)
        if result.rejected:
            session.rollback()
            return result
        if dry_run:
            company_ids = {row.customer["company_id"] for row in rows}
            existing = set(session.scalars(select(Customer.company_id).where(Customer.company_id.in_(company_ids))))
            result.customers_reused, result.customers_created = len(existing), len(company_ids - existing)
            session.rollback()
            return result

        progress.start("importing", len(rows))
        customers: dict[str, tuple[Customer, str]] = {}
        for row in rows:
            company_id = row.customer["company_id"]
            if company_id not in customers:
                customers[company_id] = _customer(session, row.customer)
                if customers[company_id][1] == "created":
                    result.customers_created += 1
                else:
                    result.customers_reused += 1
            customer, how = customers[company_id]
            license_ = issue_direct(session, customer.customer_number, **row.license)
            result.issued.append(
                Issued(
                    line=row.line,
                    company_id=customer.company_id,
                    company_name=customer.company_name,
                    customer_number=customer.customer_number,
                    customer=how,
                    installation_number=license_.installation_number,
                    product=license_.product_code,
                    edition=license_.edition,
                    add_ons=list(license_.add_ons or []),
                    seats=license_.seats,
                    support_until=license_.support_until,
                )
            )
            progress.advance()
        progress.finish()
        # Written before the commit (a full disk or a missing folder rolls everything back)
        # and moved into place after it, so the output never lists numbers that do not exist.
        temporary = output_path.with_name(f".{output_path.name}.partial")
        _write_output(temporary, result.issued, delimiter)
        try:
            session.commit()
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        os.replace(temporary, output_path)
        result.output = output_path
        return result
    except BaseException:
        session.rollback()
        progress.finish()
        raise
    finally:
        session.close()


def _customer(session: Session, data: dict) -> tuple[Customer, str]:
    """The company's customer, reused if it exists, else created and announced."""
    existing = session.scalars(select(Customer).where(Customer.company_id == data["company_id"])).one_or_none()
    if existing is not None:
        return existing, "reused"
    try:
        created = create_customer(
            session, data["company_id"], data["company_name"], data["billing_address"], created_by="import"
        )
        return created, "created"
    except CustomerExists:  # created by someone else a moment ago
        return session.scalars(select(Customer).where(Customer.company_id == data["company_id"])).one(), "reused"


def _write_output(path: Path, issued: list[Issued], delimiter: str) -> None:
    try:
        # With a BOM and the input's delimiter, so the sheet program that wrote it reads it back.
        text = spreadsheet.document(
            OUTPUT_COLUMNS,
            (
                [
                    item.line,
                    item.company_id,
                    item.company_name,
                    item.customer_number,
                    item.customer,
                    item.installation_number,
                    item.product,
                    item.edition,
                    "|".join(item.add_ons),
                    item.seats,
                    item.support_until,
                ]
                for item in issued
            ),
            delimiter,
        )
        with path.open("w", encoding="utf-8", newline="") as file:
            file.write(text)
    except OSError as error:
        path.unlink(missing_ok=True)
        raise ImportFileError(f"cannot write {path}: {error.strerror or error}; nothing was imported") from None


def summary(result: ImportResult, limit: int = 100) -> str:
    """What the operator reads: the rejections, or what was (or would be) imported."""
    if result.rejected:
        lines = [f"{len(result.rejected)} problem(s) in {result.rows} row(s); nothing was imported:"]
        for rejection in result.rejected[:limit]:
            lines.append(f"  line {rejection.line}, {rejection.column}: {rejection.reason}")
        if len(result.rejected) > limit:
            lines.append(f"  ... and {len(result.rejected) - limit} more")
        return "\n".join(lines)
    if result.dry_run:
        return (
            f"dry run: all {result.rows} row(s) are valid; an import would create {result.customers_created} "
            f"customer(s), reuse {result.customers_reused} and issue {result.rows} license(s). Nothing was written."
        )
    return (
        f"imported {result.rows} row(s): {result.customers_created} customer(s) created, "
        f"{result.customers_reused} reused, {len(result.issued)} license(s) issued; "
        f"installation numbers in {result.output}"
    )
