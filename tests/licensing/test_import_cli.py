"""Operators import customers and licenses from a CSV (all rows or none) and handle
licensing's dead letters with `python -m licensing`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pika
import pytest
from licensing import installation_numbers
from licensing.__main__ import main
from licensing.importer import ImportFileError, Progress, import_file
from licensing.models import Customer, License
from sqlalchemy import func, select

from shared.messaging import outbox
from shared.topology import Topology
from tests.support import drain, queue_depth, valid_company_id

COLUMNS = "company_id,company_name,street,city,postal_code,country,product,edition,add_ons,seats,support_until"
NEW_COMPANY = valid_company_id(1234567)
OTHER_COMPANY = valid_company_id(7654321)
EXISTING_COMPANY = "25083325"


def write(path, lines, delimiter=",", bom=False):
    text = "\n".join(line.replace(",", delimiter) if delimiter != "," else line for line in lines) + "\n"
    path.write_text(text, encoding="utf-8-sig" if bom else "utf-8")
    return path


def good_lines():
    return [
        COLUMNS,
        f"{NEW_COMPANY},Pekárna Novák s.r.o.,Dlouhá 1,Praha,11000,CZ,ucetnictvi,Jazz,kasa,3,2027-12-31",
        f'{NEW_COMPANY},Pekárna Novák s.r.o.,Dlouhá 1,Praha,11000,CZ,ucetnictvi,Standard,"síťová verze,kasa",,',
        f"{EXISTING_COMPANY},Stávající a.s.,Nová 5,Brno,60200,,ucetnictvi,Mini,,1,31.12.2026",
    ]


def counts(database) -> tuple[int, int, int]:
    with database.unit_of_work() as session:
        return (
            session.scalar(select(func.count()).select_from(Customer)),
            session.scalar(select(func.count()).select_from(License)),
            session.scalar(select(func.count()).select_from(outbox)),
        )


def read_output(path, delimiter=","):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM: spreadsheet programs read the Czech letters right
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=delimiter))


def test_the_cli_imports_customers_and_licenses_and_reuses_existing_customers(licensing, tmp_path):
    existing = licensing.customer(EXISTING_COMPANY)
    source = write(tmp_path / "sales.csv", good_lines())
    env = {**os.environ, "LICENSING_DATABASE_URL": licensing.database.url}
    done = subprocess.run(
        [sys.executable, "-m", "licensing", "import", str(source)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "1 customer(s) created, 1 reused, 3 license(s) issued" in done.stdout
    assert "checking" not in done.stderr and "\r" not in done.stderr  # no progress bar without a terminal

    rows = read_output(tmp_path / "sales.imported.csv")
    assert [row["line"] for row in rows] == ["2", "3", "4"]
    for row in rows:
        assert installation_numbers.normalise(row["installation_number"]) == row["installation_number"]
    assert [row["customer"] for row in rows] == ["created", "created", "reused"]
    assert rows[2]["customer_number"] == existing and rows[0]["customer_number"] != existing
    assert rows[1]["add_ons"] == "síťová verze|kasa" and rows[2]["support_until"] == "2026-12-31"

    created = licensing.events("licensing.customer.created")
    assert [c["company_id"] for c in created] == [EXISTING_COMPANY, NEW_COMPANY]
    assert created[1]["billing_address"] == {
        "street": "Dlouhá 1",
        "city": "Praha",
        "postal_code": "11000",
        "country": "CZ",
    }
    issued = licensing.events("licensing.license.issued")
    assert [i["installation_number"] for i in issued] == [row["installation_number"] for row in rows]
    assert {i["channel"] for i in issued} == {"direct"} and {i["status"] for i in issued} == {"registered"}
    assert issued[0]["seats"] == 3 and issued[1]["seats"] == 1 and issued[1]["support_until"] is None

    listed = licensing.staff("GET", f"/api/v1/admin/licenses?customer_number={existing}").get_json()["items"]
    assert [item["installation_number"] for item in listed] == [rows[2]["installation_number"]]

    # importing the same file again is refused while its output is there (no duplicate licenses)
    again = subprocess.run(
        [sys.executable, "-m", "licensing", "import", str(source)], env=env, capture_output=True, text=True
    )
    assert again.returncode == 2 and "imported already" in again.stderr
    assert counts(licensing.database)[1] == 3


@pytest.mark.parametrize(
    ("bad_row", "column", "reason"),
    [
        (
            f"{NEW_COMPANY[:7]}{(int(NEW_COMPANY[7]) + 1) % 10},Firma,Ulice 1,Praha,11000,,ucetnictvi,Jazz,,1,",
            "company_id",
            "check digit",
        ),
        (f"{OTHER_COMPANY},Firma,Ulice 1,Praha,11000,,ucetnictvi,Gold,,1,", "edition", "no edition 'Gold'"),
        (f"{OTHER_COMPANY},Firma,Ulice 1,Praha,11000,,ucetnictvi,Jazz,,1,31.2.2027", "support_until", "not a date"),
        (f"{OTHER_COMPANY},Firma,Ulice 1,Praha,11000,,ucetnictvi,Jazz,bufet,1,", "add_ons", "no add-on 'bufet'"),
        (f"{OTHER_COMPANY},Firma,,Praha,11000,,ucetnictvi,Jazz,,1,", "street", "Missing data"),
        (f"{OTHER_COMPANY},Firma,Ulice 1,Praha,11000,,ucetnictvi,Jazz,,0,", "seats", "1"),
        (f"{OTHER_COMPANY},Firma,Ulice 1,Praha,11000,,mzdy,Jazz,,1,", "product", "no product 'mzdy'"),
    ],
    ids=["check-digit", "unknown-edition", "bad-date", "unknown-add-on", "empty-street", "no-seats", "no-product"],
)
def test_one_bad_row_imports_nothing_and_names_the_row(licensing, tmp_path, bad_row, column, reason):
    source = write(tmp_path / "sales.csv", [*good_lines(), bad_row])
    before = counts(licensing.database)
    result = import_file(licensing.database, source)
    assert not result.ok
    [rejection] = result.rejected
    assert rejection.line == 5 and rejection.column == column and reason in rejection.reason
    assert counts(licensing.database) == before
    assert not (tmp_path / "sales.imported.csv").exists()
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


def test_the_cli_reports_every_rejected_row_with_line_column_and_reason(licensing, tmp_path, monkeypatch, capsys):
    lines = good_lines()
    lines[1] = lines[1].replace("Jazz", "Gold")
    lines[3] = lines[3].replace("31.12.2026", "2026-13-01")
    source = write(tmp_path / "sales.csv", lines)
    monkeypatch.setenv("LICENSING_DATABASE_URL", licensing.database.url)
    assert main(["import", str(source)]) == 1
    out = capsys.readouterr().out
    assert "2 problem(s) in 3 row(s); nothing was imported" in out
    assert "line 2, edition: Účetní systém has no edition 'Gold'" in out
    assert "line 4, support_until: '2026-13-01' is not a date" in out
    assert counts(licensing.database) == (0, 0, 0)


def test_semicolons_a_bom_and_czech_letters_as_czech_excel_writes_them(licensing, tmp_path):
    lines = [
        COLUMNS.upper().replace(",", ";"),  # header names in any case
        f"{NEW_COMPANY};Účetní kancelář Šťastná;Řeznická 7;České Budějovice;370 01;cz;ucetnictvi;Komplet;"
        "síťová verze | kasa;2;1. 3. 2027",
        f"{OTHER_COMPANY[:4]} {OTHER_COMPANY[4:]};Žlutý kůň s.r.o.;Ďáblická 2;Praha 8;182 00;;ucetnictvi;Premium;;;",
    ]
    source = tmp_path / "prodeje.csv"
    source.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8-sig")
    result = import_file(licensing.database, source)
    assert result.ok, result.rejected
    assert result.customers_created == 2 and len(result.issued) == 2
    rows = read_output(tmp_path / "prodeje.imported.csv", delimiter=";")
    assert rows[0]["company_name"] == "Účetní kancelář Šťastná" and rows[1]["company_id"] == OTHER_COMPANY
    [first, second] = licensing.events("licensing.customer.created")
    assert first["billing_address"]["city"] == "České Budějovice" and first["billing_address"]["country"] == "CZ"
    assert second["company_name"] == "Žlutý kůň s.r.o."
    [kompl, premium] = licensing.events("licensing.license.issued")
    assert kompl["add_ons"] == ["síťová verze", "kasa"] and kompl["support_until"] == "2027-03-01"
    assert kompl["seats"] == 2 and premium["seats"] == 1


def test_a_dry_run_checks_everything_and_writes_nothing(licensing, tmp_path, monkeypatch, capsys):
    licensing.customer(EXISTING_COMPANY)
    before = counts(licensing.database)
    source = write(tmp_path / "sales.csv", good_lines())
    result = import_file(licensing.database, source, dry_run=True)
    assert result.ok and result.dry_run and result.issued == []
    assert (result.customers_created, result.customers_reused) == (1, 1)
    monkeypatch.setenv("LICENSING_DATABASE_URL", licensing.database.url)
    assert main(["import", str(source), "--dry-run"]) == 0
    assert "would create 1 customer(s), reuse 1 and issue 3 license(s)" in capsys.readouterr().out
    assert counts(licensing.database) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sales.csv"]


def test_one_company_id_must_be_one_customer_within_the_file(licensing, tmp_path):
    lines = good_lines()
    lines[2] = lines[2].replace("Pekárna Novák s.r.o.", "Pekárna Nováková s.r.o.")
    result = import_file(licensing.database, write(tmp_path / "sales.csv", lines))
    [rejection] = result.rejected
    assert rejection.line == 3 and rejection.column == "company_name" and "line 2" in rejection.reason
    assert counts(licensing.database) == (0, 0, 0)


def test_whole_file_problems_and_the_output_option(licensing, tmp_path):
    with pytest.raises(ImportFileError, match="lacks the column"):
        import_file(licensing.database, write(tmp_path / "a.csv", ["company_id,company_name", "x,y"]))
    (tmp_path / "cp1250.csv").write_bytes((COLUMNS + "\n").encode() + "Účetní".encode("cp1250"))
    with pytest.raises(ImportFileError, match="line 2 is not UTF-8"):
        import_file(licensing.database, tmp_path / "cp1250.csv")
    with pytest.raises(ImportFileError, match="cannot write"):
        import_file(licensing.database, write(tmp_path / "b.csv", good_lines()), output=tmp_path / "no" / "out.csv")
    assert counts(licensing.database) == (0, 0, 0)  # the output is written before the commit
    result = import_file(licensing.database, tmp_path / "b.csv", output=tmp_path / "numbers.csv")
    assert result.output == tmp_path / "numbers.csv" and len(read_output(result.output)) == 3


def test_the_progress_bar_draws_on_a_terminal_only():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    shown, hidden = Terminal(), io.StringIO()
    for stream in (shown, hidden):
        progress = Progress(stream)
        progress.start("checking", 3)
        for _ in range(3):
            progress.advance()
        progress.finish()
    assert shown.getvalue().endswith("3/3 100%\n") and "\rchecking" in shown.getvalue()
    assert hidden.getvalue() == ""


def test_dead_letters_of_licensing_and_its_partner_inbox_are_listed_and_replayed(
    amqp_url, namespace, monkeypatch, capsys
):
    topology = Topology(namespace)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    topology.declare(channel)
    dead = [(topology.dead_letter_queue("licensing"), "evt-1"), (topology.dead_letter_queue("licensing"), "evt-2")]
    dead.append((topology.dead_letter_queue_of(topology.partner_sales_queue), "sale-1"))
    for queue, event_id in dead:
        channel.basic_publish(
            "",
            queue,
            b"{}",
            pika.BasicProperties(
                message_id=event_id,
                delivery_mode=2,
                headers={"x-failure-reason": "ValueError: no such customer", "x-original-routing-key": "x.y.z"},
            ),
        )
    connection.close()
    monkeypatch.setenv("AMQP_URL", amqp_url)
    monkeypatch.setenv("EVENTS_NAMESPACE", namespace)

    assert main(["dead-letters", "list"]) == 0
    letters = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["consumer"], x["event_id"], x["reason"]) for x in letters] == [
        ("licensing", "evt-1", "ValueError: no such customer"),
        ("licensing", "evt-2", "ValueError: no such customer"),
        ("licensing.partner-sales", "sale-1", "ValueError: no such customer"),
    ]
    assert main(["dead-letters", "replay", "evt-2"]) == 0
    assert "replayed 1 message(s)" in capsys.readouterr().err
    [(headers, _body)] = drain(amqp_url, topology.queue("licensing"))
    assert "x-failure-reason" not in headers
    assert queue_depth(amqp_url, topology.dead_letter_queue("licensing")) == 1
    # a partner's dead-lettered sale is listed, never replayed (it lost its checked user_id)
    assert queue_depth(amqp_url, topology.dead_letter_queue_of(topology.partner_sales_queue)) == 1
