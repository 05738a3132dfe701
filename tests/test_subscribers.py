"""Subscriber files as spreadsheets export them, the suppression list, and the subscribers CLI."""

from __future__ import annotations

import codecs
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohesion_mail.cli import app, common
from cohesion_mail.errors import SubscriberError
from cohesion_mail.store import Store
from cohesion_mail.store.subscribers import (
    SubscriberRow,
    audience,
    counts,
    export_csv,
    import_csv,
    list_subscribers,
    normalise_language,
    read_csv,
    set_status,
    suppressed,
)

FIXTURES = Path(__file__).parent / "fixtures" / "csv"
EXAMPLE = Path(__file__).parent.parent / "subscribers.csv.example"


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "state.db") as s:
        yield s


@pytest.fixture
def write(tmp_path: Path):
    """Write bytes or text to a file in tmp_path and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", newline="")
        else:
            path.write_bytes(content)
        return path

    return _write


def emails(rows: list[SubscriberRow]) -> list[str]:
    return [row.email for row in rows]


# --- reading --------------------------------------------------------------------------------


def test_example_list_reads_cleanly():
    result = read_csv(EXAMPLE)
    assert len(result.rows) == 12
    assert result.rejected == [] and result.warnings == []
    francesco = next(r for r in result.rows if r.email.startswith("francesco"))
    assert francesco.organisation == "Fincalabra S.p.A., Innovation Unit"
    assert francesco.fields == {"region": "Calabria"}
    assert {r.language for r in result.rows} >= {"es", "it", "ro", "en", "de", "sv", "pl"}


def test_bom_and_semicolons_from_excel():
    result = read_csv(FIXTURES / "bom_semicolon.csv")
    assert emails(result.rows) == ["ane.etxeberria@example.org", "giulia.romano@example.org"]
    assert result.rows[0].organisation == "BEAZ Bizkaia"
    assert result.rows[1].line == 3
    assert result.warnings == []


def test_cp1252_falls_back_with_a_warning_naming_the_file():
    path = FIXTURES / "cp1252_semicolon.csv"
    result = read_csv(path)
    names = [r.name for r in result.rows]
    assert names[1:] == ["Björn Lindqvist", "François « Fran » Dupré"]
    assert result.rows[2].organisation == "Société Générale"
    [warning] = result.warnings
    assert str(path) in warning and "Windows-1252" in warning and "line 3" in warning


def test_tab_delimited_keeps_commas_inside_values():
    result = read_csv(FIXTURES / "tab_delimited.tsv")
    assert result.rows[0].organisation == "Business Metropole Ruhr, Essen"
    assert [r.language for r in result.rows] == ["de", "de"]


def test_utf16_unicode_text_export(write):
    text = "email\tname\nbjorn@example.net\tBjörn Lindqvist\n"
    path = write("unicode.txt", codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    [row] = read_csv(path).rows
    assert (row.email, row.name) == ("bjorn@example.net", "Björn Lindqvist")


def test_excel_sep_line_names_the_delimiter(write):
    path = write("sep.csv", "sep=;\nemail;name\nane@example.org;Ane\n")
    [row] = read_csv(path).rows
    assert (row.email, row.name, row.line) == ("ane@example.org", "Ane", 3)


def test_wrong_delimiter_is_an_error_that_says_so():
    path = FIXTURES / "pipe_delimited.csv"
    with pytest.raises(SubscriberError) as info:
        read_csv(path)
    message = str(info.value)
    assert str(path) in message
    assert "'email|name|country'" in message
    assert "wrong delimiter?" in message


def test_missing_email_column_lists_the_columns_found():
    path = FIXTURES / "no_email_column.csv"
    with pytest.raises(SubscriberError) as info:
        read_csv(path)
    message = str(info.value)
    assert str(path) in message and "line 1" in message
    assert "'name', 'organisation', 'country'" in message
    assert "name the address column 'email'" in message


def test_header_missing_altogether_is_spotted():
    with pytest.raises(SubscriberError, match="add a header line"):
        read_csv(FIXTURES / "no_header.csv")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"PK\x03\x04\x14\x00\x06\x00", "workbook"),
        (b"e\x00m\x00a\x00i\x00l\x00\n\x00", "NUL"),
    ],
)
def test_unusable_files_are_errors(write, content, match):
    with pytest.raises(SubscriberError, match=match):
        read_csv(write("bad.csv", content))


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(SubscriberError, match="nope.csv: cannot read"):
        read_csv(tmp_path / "nope.csv")


def test_header_variants_and_name_composed_from_parts():
    ioana, rhys = read_csv(FIXTURES / "header_variants.csv").rows
    assert ioana.email == "ioana.popescu@example.org"
    assert (ioana.first_name, ioana.last_name, ioana.name) == ("Ioana", "Popescu", "Ioana Popescu")
    assert (ioana.organisation, ioana.country, ioana.language) == (
        "North-West RDA",
        "Romania",
        "ro",
    )
    assert (rhys.first_name, rhys.name) == ("", "Morgan")


def test_name_column_wins_over_parts(write):
    path = write("both.csv", "Mail,Name,First name,Surname\nx@example.org,Dr X Y,X,Y\n")
    [row] = read_csv(path).rows
    assert (row.name, row.first_name, row.last_name) == ("Dr X Y", "X", "Y")


def test_invalid_empty_and_duplicate_addresses_reported_with_line_numbers():
    result = read_csv(FIXTURES / "invalid_and_duplicates.csv")
    assert [(r.line, r.reason.split(":")[0]) for r in result.rejected] == [
        (3, "invalid address 'not-an-address'"),
        (4, "empty email"),
        (7, "invalid address 'bjorn@example..net'"),
    ]
    assert "must have an @-sign" in result.rejected[0].reason
    assert result.rejected[1].raw == ",Giulia Romano,Regione Calabria,Italy"
    assert emails(result.rows) == ["ane.etxeberria@example.org", "jörg.müller@example.de"]
    ane = result.rows[0]
    # first row wins (Spain), the duplicate only filled the blank organisation
    assert (ane.country, ane.organisation, ane.line) == ("Spain", "BEAZ Bizkaia", 2)
    [duplicate] = [w for w in result.warnings if "duplicates" in w]
    assert duplicate.startswith("line 6:") and "line 2" in duplicate
    assert result.rows[1].smtputf8 and not ane.smtputf8  # non-ASCII local part: SMTPUTF8


def test_normalised_address_keeps_local_case_lowers_domain(write):
    [row] = read_csv(write("a.csv", "email\n  Maria.Garcia@Example.ORG \n")).rows
    assert row.email == "Maria.Garcia@example.org"


@pytest.mark.parametrize(
    "address",
    [
        "Maria.Garcia@Example.ORG",
        "o'brien+news@example.ie",
        "a..b@example.org",
        ".a@example.org",
        "a@example.org.",
        "a@-example.org",
        "a@example",
        "a@localhost",
        "a@[192.0.2.1]",
        '"quoted local"@example.org',
        "x" * 65 + "@example.org",
        "x@" + "a" * 64 + ".org",
        "y@" + ".".join(["a" * 60] * 5) + ".org",
        "jörg@example.de",
        "info@münchen.example",
        "a@xn--mnchen-3ya.example",
        "a@exa_mple.org",
    ],
)
def test_address_shortcut_agrees_with_email_validator(address):
    from email_validator import EmailNotValidError, validate_email

    from cohesion_mail.store.csvio import normalise_address

    try:
        expected = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        with pytest.raises(EmailNotValidError) as info:
            normalise_address(address)
        assert str(info.value) == str(exc)
    else:
        assert normalise_address(address) == (expected.normalized, bool(expected.smtputf8))


def test_line_breaks_in_names_can_never_inject_a_header():
    siobhan, rhys, carys = read_csv(FIXTURES / "crlf_in_names.csv").rows
    assert siobhan.name == "Siobhán Ní Bhriain"
    assert rhys.name == "Rhys Morgan Bcc: everyone@example.com"
    assert rhys.organisation == "Welsh Government"
    for row in (siobhan, rhys, carys):
        assert "\r" not in row.name and "\n" not in row.name
    # physical line numbers: Siobhán's quoted name spans lines 2-3
    assert [r.line for r in (siobhan, rhys, carys)] == [2, 4, 7]
    warnings = read_csv(FIXTURES / "crlf_in_names.csv").warnings
    assert any(w.startswith("line 4: the name contained a line break") for w in warnings)


def test_line_break_inside_the_email_cell_is_rejected(write):
    path = write("e.csv", 'email,name\n"a@example.org\r\nBcc: b@example.org",A\n')
    result = read_csv(path)
    assert result.rows == []
    [bad] = result.rejected
    assert bad.line == 2 and "line break" in bad.reason


def test_unbalanced_quote_reports_the_swallowed_lines():
    result = read_csv(FIXTURES / "unbalanced_quote.csv")
    assert result.rows == []
    [bad] = result.rejected
    assert bad.line == 2 and "unbalanced double quote: lines 2–4" in bad.reason


def test_unquoted_delimiter_shifting_columns_is_rejected():
    result = read_csv(FIXTURES / "unquoted_delimiter.csv")
    assert emails(result.rows) == ["ane.etxeberria@example.org"]
    [bad] = result.rejected
    assert bad.line == 3 and "5 values but the header has 4 columns" in bad.reason


def test_language_normalisation():
    result = read_csv(FIXTURES / "languages.csv")
    assert [r.language for r in result.rows] == ["es", "it", "pt", "de", "sv", "", ""]
    [warning] = result.warnings
    assert warning.startswith("line 7: language 'Klingon'")


@pytest.mark.parametrize(
    ("value", "code"),
    [("es-ES", "es"), ("EN_gb", "en"), ("cy", "cy"), ("Polski", "pl"), ("", ""), ("zz", None)],
)
def test_normalise_language(value, code):
    assert normalise_language(value) == code


def test_extra_columns_become_merge_fields():
    result = read_csv(FIXTURES / "extra_columns.csv")
    jan, lena = result.rows
    assert jan.fields == {"region_nuts": "DEA1 Ruhr", "sector": "Health"}
    assert lena.fields == {"region_nuts": "DEA1 Ruhr", "sector": ""}
    assert jan.merge_values()["region_nuts"] == "DEA1 Ruhr"
    assert jan.merge_values()["email"] == "jan.schneider@example.de"
    text = "\n".join(result.warnings)
    assert "'Unsubscribe URL' is the merge field 'unsubscribe_url'" in text  # never from a CSV
    assert "'2020 budget' cannot be a merge field" in text
    assert "line 3: column 7 has no header" in text


def test_empty_lines_and_blank_spreadsheet_rows_are_skipped_silently(write):
    path = write("gaps.csv", "email,name\n\na@example.org,A\n,,\n   \nb@example.org,B\n")
    result = read_csv(path)
    assert [(r.email, r.line) for r in result.rows] == [("a@example.org", 3), ("b@example.org", 6)]
    assert result.rejected == [] and result.warnings == []


# --- the store ------------------------------------------------------------------------------


def test_import_adds_then_updates_and_blank_cells_never_erase(store, write):
    first = import_csv(
        store, write("a.csv", "email,name,organisation,sector\nA@example.org,A,Org,x\n")
    )
    assert (first.added, first.updated, first.unchanged) == (1, 0, 0)
    again = import_csv(
        store, write("b.csv", "email,name,organisation,sector\na@example.org,A,Org,x\n")
    )
    assert (again.added, again.updated, again.unchanged) == (0, 0, 1)
    later = import_csv(store, write("c.csv", "email,name,country\na@example.org,,Spain\n"))
    assert later.updated == 1
    [sub] = list_subscribers(store)
    assert (sub.email, sub.name, sub.organisation, sub.country) == (
        "a@example.org",
        "A",
        "Org",
        "Spain",
    )
    assert sub.fields == {"sector": "x"}


def test_suppression_survives_reimport(store):
    import_csv(store, EXAMPLE)
    assert set_status(store, "Giulia.Romano@example.org", "unsubscribed", "asked") == "subscribed"
    set_status(store, "rhys.morgan@example.org", "bounced", "550 no such user")
    result = import_csv(store, EXAMPLE)
    assert result.kept_suppressed == 2
    assert suppressed(store) == {"giulia.romano@example.org", "rhys.morgan@example.org"}
    assert counts(store) == {"subscribed": 10, "unsubscribed": 1, "bounced": 1, "complained": 0}
    to_send, skipped = audience(store, read_csv(EXAMPLE).rows)
    assert len(to_send) == 10
    assert sorted(emails(skipped)) == ["giulia.romano@example.org", "rhys.morgan@example.org"]


def test_unsubscribe_before_import_stays_suppressed(store):
    assert set_status(store, "Ane.Etxeberria@EXAMPLE.org", "unsubscribed") is None
    import_csv(store, EXAMPLE)
    [ane] = list_subscribers(store, "unsubscribed")
    assert ane.email == "ane.etxeberria@example.org"
    assert ane.organisation == "BEAZ Bizkaia"  # the import filled in the details
    assert "ane.etxeberria@example.org" not in emails(audience(store, read_csv(EXAMPLE).rows)[0])


def test_set_status_keeps_the_first_unsubscribe(store):
    set_status(store, "a@example.org", "unsubscribed", "first")
    assert set_status(store, "a@example.org", "unsubscribed", "second") == "unsubscribed"
    [sub] = list_subscribers(store)
    assert sub.status_reason == "first"


def test_set_status_rejects_bad_input(store):
    with pytest.raises(SubscriberError, match="not a valid email address"):
        set_status(store, "not-an-address", "unsubscribed")
    with pytest.raises(SubscriberError, match="unknown subscriber status 'gone'"):
        set_status(store, "a@example.org", "gone")


def test_list_by_status(store):
    import_csv(store, EXAMPLE)
    set_status(store, "carys.evans@example.com", "complained")
    assert len(list_subscribers(store)) == 12
    assert emails(list_subscribers(store, "suppressed")) == ["carys.evans@example.com"]
    assert len(list_subscribers(store, "subscribed")) == 11


def test_a_list_that_marks_rows_unsubscribed_suppresses_them(store, write):
    path = write("l.csv", "email,status\na@example.org,unsubscribed\nb@example.org,subscribed\n")
    rows = read_csv(path).rows
    to_send, skipped = audience(store, rows)
    assert emails(to_send) == ["b@example.org"] and emails(skipped) == ["a@example.org"]
    import_csv(store, path)
    assert suppressed(store) == {"a@example.org"}


def test_export_is_safe_against_formula_injection_and_round_trips(store, tmp_path, write):
    path = write(
        "evil.csv",
        "email,name,organisation,Note\n"
        '=1+1@example.org,=HYPERLINK("http://x.example"),+Org,@SUM(A1)\n'
        "b@example.org,-2,Plain,ok\n",
    )
    import_csv(store, path)
    set_status(store, "b@example.org", "bounced", "=cmd")
    out = tmp_path / "export" / "subscribers.csv"
    assert export_csv(store, out) == 2
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["email"] == "'=1+1@example.org"
    assert rows[0]["name"] == '\'=HYPERLINK("http://x.example")'
    assert rows[0]["organisation"] == "'+Org" and rows[0]["note"] == "'@SUM(A1)"
    assert rows[1]["name"] == "'-2" and rows[1]["status"] == "bounced"
    assert rows[1]["status_reason"] == "'=cmd"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))
    # and it imports back unchanged, suppression included
    with Store(tmp_path / "other.db") as other:
        import_csv(other, out)
        again = {s.email: s for s in list_subscribers(other)}
    assert again["=1+1@example.org"].name == '=HYPERLINK("http://x.example")'
    assert again["=1+1@example.org"].fields == {"note": "@SUM(A1)"}
    assert again["b@example.org"].status == "bounced"


def test_export_to_an_unwritable_place_is_an_error(store, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SubscriberError, match="cannot write the export"):
        export_csv(store, blocker / "out.csv")


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run ``cohesion-mail …`` in tmp_path with its own state file and a wide console."""
    monkeypatch.chdir(tmp_path)
    for name in ("COHESION_MAIL_STATE", "COHESION_MAIL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(common.console, "width", 200)
    runner = CliRunner()
    state = str(tmp_path / "state.db")

    def run(*args: str):
        return runner.invoke(app, ["subscribers", *args, "--state", state])

    return run


def test_cli_import_reports_rejects_and_exits_zero(cli):
    result = cli("import", str(FIXTURES / "invalid_and_duplicates.csv"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "2 new, 0 updated, 0 unchanged" in out
    assert "3 rows were rejected and not imported" in out
    assert "empty email" in out and "must have an @-sign" in out
    assert "line 6: Ane.Etxeberria@example.org duplicates line 2" in out


def test_cli_import_of_unusable_file_fails_with_the_reason(cli):
    result = cli("import", str(FIXTURES / "pipe_delimited.csv"))
    assert result.exit_code == 1
    assert "Error:" in result.output and "wrong delimiter?" in result.output
    assert "Traceback" not in result.output


def test_cli_list_table_and_json(cli):
    cli("import", str(EXAMPLE))
    table = cli("list")
    assert table.exit_code == 0
    assert "agnieszka.wisniewska@example.net" in table.stdout
    assert "12 subscribed, 0 unsubscribed" in table.stdout
    as_json = cli("list", "--json", "--status", "subscribed")
    people = json.loads(as_json.stdout)
    assert len(people) == 12 and people[0]["status"] == "subscribed"
    bad = cli("list", "--status", "gone")
    assert bad.exit_code == 1 and "unknown subscriber status" in bad.output


def test_cli_unsubscribe(cli):
    cli("import", str(EXAMPLE))
    first = cli("unsubscribe", "Lena.Hoffmann@example.de", "--reason", "asked by phone")
    assert first.exit_code == 0 and "(was subscribed)" in first.stdout
    assert "already unsubscribed" in cli("unsubscribe", "lena.hoffmann@example.de").stdout
    unknown = cli("unsubscribe", "someone@example.org")
    assert "recorded as unsubscribed" in unknown.stdout
    suppressed_list = json.loads(cli("list", "--json", "--status", "suppressed").stdout)
    assert {(p["email"], p["status_reason"]) for p in suppressed_list} == {
        ("lena.hoffmann@example.de", "asked by phone"),
        ("someone@example.org", "command line"),
    }
    assert cli("unsubscribe", "nope").exit_code == 1


def test_cli_export(cli, tmp_path):
    cli("import", str(EXAMPLE))
    cli("unsubscribe", "ane.etxeberria@example.org")
    result = cli("export", "out.csv")
    assert result.exit_code == 0 and "Exported 12 subscribers" in result.stdout
    with (tmp_path / "out.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = {row["email"]: row for row in csv.DictReader(f)}
    assert rows["ane.etxeberria@example.org"]["status"] == "unsubscribed"
    assert rows["bjorn.lindqvist@example.net"]["region"] == "Västerbotten"


def test_cli_group_help_as_a_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "cohesion_mail", "subscribers", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for command in ("import", "list", "unsubscribe", "export"):
        assert command in result.stdout
