"""Spreadsheets (issue 13): `esms export KIND` read back with openpyxl, odfpy and csv, cell by cell, against what
`esms project show --json`, `project history --json`, `outbox list --json` and the project files say, on SQLite and
PostgreSQL; the default file name, standard output, and the refusals that write nothing."""

from __future__ import annotations

import csv
import io
import os
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import Cli, write_project

PARIS = ZoneInfo("Europe/Paris")
NOW = "2021-05-21T12:00:00+02:00"
TODAY = "2021-05-21"

PROJECT_HEADERS = [
    "N°",
    "Projet",
    "Campagne",
    "Type",
    "État",
    "Groupe",
    "Porteur",
    "Courriel",
    "ESMS",
    "Petits ESMS",
    "Montant total (€)",
    "Versé (€)",
    "Prochaine échéance",
    "Date limite",
]
TRANCHE_HEADERS = ["N°", "Projet", "Campagne", "Tranche", "Pourcentage", "Montant (€)", "État", "Versée le"]
ESMS_HEADERS = ["FINESS", "Nom", "Catégorie", "Petit", "Organisme", "FINESS organisme", "N°", "Projet", "Campagne"]
HISTORY_HEADERS = [
    "N°",
    "Projet",
    "Campagne",
    "Séquence",
    "Date",
    "Événement",
    "De",
    "Vers",
    "Acteur",
    "Forcé",
    "Approuvé par",
    "Motif",
]
OUTBOX_HEADERS = [
    "N°",
    "Modèle",
    "Projet",
    "Destinataires",
    "Objet",
    "État",
    "Tentatives",
    "Prochain essai",
    "Envoyé le",
    "Dernière erreur",
]
FORMATS = ["xlsx", "ods", "csv"]
KIND_LABELS = {"acquisition": "acquisition", "compliance": "mise en conformité"}
DEADLINE_LABELS = {
    "application_deadline": "date limite de dépôt des candidatures",
    "selection_deadline": "date limite de sélection des projets",
    "agreement_deadline": "date limite de signature de la convention",
    "completion_deadline": "date limite d'achèvement du projet",
}
STATUS_LABELS = {"pending": "en attente", "sent": "envoyé", "partial": "envoyé en partie", "dead": "en échec"}


@dataclass(frozen=True)
class Euros:
    """An amount expected in a euro-formatted numeric cell."""

    value: Decimal


@dataclass(frozen=True)
class Share:
    """A percentage expected in a percent cell (40 for 40 %)."""

    value: Decimal


@dataclass
class Desk:
    """A database with a few projects at different steps, and the files they were registered from."""

    cli: Cli
    folder: Path
    ids: list[int]
    files: dict[int, Path]

    def show(self, project: int) -> dict[str, Any]:
        return self.cli.ok("project", "show", str(project), "--json", now=NOW).json()  # type: ignore[no-any-return]

    def export(self, *args: str, now: str = NOW) -> Path:
        result = self.cli.ok("export", *args, now=now)
        return Path(result.out.rsplit(" dans ", 1)[1].strip())


@pytest.fixture
def desk(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Desk:
    folder = tmp_path / "projects"
    folder.mkdir()
    (tmp_path / "exports").mkdir()
    monkeypatch.chdir(tmp_path / "exports")  # where exports go by default
    paths = [
        write_project(folder, name="Grappe du Hainaut", esms=20, small=4),
        write_project(
            folder, name="=Grappe de l'Artois", kind="compliance", esms=16, small=0, owner_email="apf@artois.example"
        ),
        write_project(folder, name="Grappe des Flandres", esms=15, small=15),
    ]
    added = cli.ok("project", "add", *map(str, paths), now="2021-03-01T10:00:00+01:00")
    signed, submitted, applying = map(int, added.out.split())
    files = dict(zip((signed, submitted, applying), paths, strict=True))
    cli.ok("fire", str(signed), "submit", now="2021-03-10T10:00:00+01:00")
    cli.ok("fire", str(signed), "select", "group=A", now="2021-04-20T10:00:00+02:00")
    cli.ok("fire", str(signed), "file_needs", "reference=RESAH-2021-001", now="2021-04-21T10:00:00+02:00")
    cli.ok("fire", str(signed), "sign_contract", "vendor=Éditeur DUI", now="2021-04-22T10:00:00+02:00")
    cli.ok("fire", str(signed), "sign_agreement", now="2021-05-20T16:45:30+02:00")  # tranche 1 released
    cli.ok("fire", str(submitted), "submit", now="2021-03-31T23:59:00+02:00")
    cli.ok("outbox", "send", now="2021-05-20T17:00:00+02:00")  # some messages sent, the later ones pending
    cli.ok("fire", str(applying), "withdraw", "reason=Plus de porteur", now="2021-05-21T09:00:00+02:00")
    return Desk(cli=cli, folder=folder, ids=[signed, submitted, applying], files=files)


# --- reading the files back -----------------------------------------------------------------------------------


def read_xlsx(path: Path) -> list[list[Any]]:
    import openpyxl

    workbook = openpyxl.load_workbook(path)
    sheet = workbook.worksheets[0]
    return [[(cell.value, cell.number_format) for cell in row] for row in sheet.iter_rows()]


def read_ods(path: Path) -> list[list[Any]]:
    from odf.opendocument import load
    from odf.table import Table, TableCell, TableRow

    document = load(str(path))
    tables = document.spreadsheet.getElementsByType(Table)
    assert len(tables) == 1
    rows = []
    for row in tables[0].getElementsByType(TableRow):
        cells = []
        for cell in row.getElementsByType(TableCell):
            kind = cell.getAttribute("valuetype")
            value = {
                None: None,
                "string": str(cell),
                "float": cell.getAttribute("value"),
                "currency": (cell.getAttribute("value"), cell.getAttribute("currency")),
                "percentage": cell.getAttribute("value"),
                "date": cell.getAttribute("datevalue"),
                "boolean": cell.getAttribute("booleanvalue"),
            }[kind]
            cells.append((kind, value, cell.getAttribute("stylename")))
        rows.append(cells)
    return rows


def read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with a byte order mark"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))


def assert_sheet(path: Path, file_format: str, headers: list[str], expected: list[list[Any]]) -> None:
    """The file holds one header row then `expected`, each cell of the type its expected value says."""
    assert path.suffix == f".{file_format}"
    if file_format == "xlsx":
        rows = read_xlsx(path)
        assert [value for value, _ in rows[0]] == headers
        check: Callable[[Any, Any], None] = check_xlsx
    elif file_format == "ods":
        rows = read_ods(path)
        assert [value for _, value, _ in rows[0]] == headers
        check = check_ods
    else:
        rows = read_csv(path)
        assert rows[0] == headers
        check = check_csv
    assert len(rows) == len(expected) + 1
    for number, (row, wanted) in enumerate(zip(rows[1:], expected, strict=True), 2):
        cells = list(row) + [None] * (len(wanted) - len(row))  # a trailing empty cell may be left out
        for column, (cell, value) in enumerate(zip(cells, wanted, strict=False)):
            try:
                check(cell, value)
            except AssertionError as error:
                raise AssertionError(f"row {number}, column {headers[column]!r}: {cell!r} is not {value!r}") from error


def check_xlsx(cell: Any, expected: Any) -> None:
    value, number_format = cell if cell is not None else (None, None)
    if expected is None:
        assert value is None
    elif isinstance(expected, bool):
        assert value == ("Oui" if expected else "Non")
    elif isinstance(expected, int | str):
        assert value == expected and type(value) is type(expected)
    elif isinstance(expected, Euros):
        assert isinstance(value, int | float) and not isinstance(value, bool)
        assert Decimal(str(value)) == expected.value and "€" in number_format
    elif isinstance(expected, Share):
        assert isinstance(value, int | float) and Decimal(str(value)) * 100 == expected.value
        assert "%" in number_format
    elif isinstance(expected, datetime):
        assert value == expected and number_format == "dd/mm/yyyy hh:mm"
    elif isinstance(expected, date):
        assert value == local(expected.year, expected.month, expected.day) and number_format == "dd/mm/yyyy"
    else:
        raise AssertionError(f"unexpected {expected!r}")


def check_ods(cell: Any, expected: Any) -> None:
    kind, value, style = cell if cell is not None else (None, None, None)
    if expected is None:
        assert kind is None
    elif isinstance(expected, bool):
        assert (kind, value) == ("string", "Oui" if expected else "Non")
    elif isinstance(expected, int):
        assert kind == "float" and Decimal(value) == expected
    elif isinstance(expected, str):
        assert (kind, value) == ("string", expected)
    elif isinstance(expected, Euros):
        assert kind == "currency" and Decimal(value[0]) == expected.value and value[1] == "EUR"
        assert style == "Euros"
    elif isinstance(expected, Share):
        assert kind == "percentage" and Decimal(value) * 100 == expected.value
    elif isinstance(expected, datetime):
        assert kind == "date" and datetime.fromisoformat(value) == expected and style == "DateHeure"
    elif isinstance(expected, date):
        assert kind == "date" and value == expected.isoformat() and style == "Date"
    else:
        raise AssertionError(f"unexpected {expected!r}")


def check_csv(cell: Any, expected: Any) -> None:
    text = "" if cell is None else cell
    if expected is None:
        assert text == ""
    elif isinstance(expected, bool):
        assert text == ("Oui" if expected else "Non")
    elif isinstance(expected, int):
        assert text == str(expected)
    elif isinstance(expected, str):
        assert text == ("'" + expected if expected.startswith("=") else expected)
    elif isinstance(expected, Euros):
        assert text == f"{expected.value:.2f}".replace(".", ",")
    elif isinstance(expected, Share):
        assert text == format(expected.value.normalize(), "f").replace(".", ",")
    elif isinstance(expected, datetime):
        assert text == expected.strftime("%d/%m/%Y %H:%M")
    elif isinstance(expected, date):
        assert text == expected.strftime("%d/%m/%Y")
    else:
        raise AssertionError(f"unexpected {expected!r}")


def local(*fields: int) -> datetime:
    """A naive local time, as a spreadsheet holds it."""
    return datetime(*fields, tzinfo=PARIS).replace(tzinfo=None)  # type: ignore[misc]


def paris(iso: str | None) -> datetime | None:
    """An ISO-8601 UTC instant of the JSON as the sheet holds it: Paris local time, to the second."""
    if iso is None:
        return None
    return datetime.fromisoformat(iso).astimezone(PARIS).replace(tzinfo=None, microsecond=0)


# --- each kind, each format -----------------------------------------------------------------------------------


def test_projects_export_matches_project_show(desk: Desk) -> None:
    expected = []
    for project in desk.ids:
        shown = desk.show(project)
        deadline = shown["next_deadline"]
        expected.append(
            [
                shown["id"],
                shown["name"],
                shown["campaign"],
                KIND_LABELS[shown["kind"]],
                shown["state_label"],
                shown["selection_group"],
                shown["owner"]["name"],
                shown["owner"]["email"],
                shown["esms"],
                shown["small_esms"],
                Euros(Decimal(shown["total_eur"])),
                Euros(Decimal(shown["released_eur"])),
                DEADLINE_LABELS[deadline["name"]] if deadline else None,
                date.fromisoformat(deadline["date"]) if deadline else None,
            ]
        )
    # What the sheet says, spelt out for the signed project: tranche 1 of 580 000 € paid, two years to finish.
    assert expected[0][4] == "paramétrage" and expected[0][10:] == [
        Euros(Decimal("580000.00")),
        Euros(Decimal("232000.00")),
        "date limite d'achèvement du projet",
        date(2023, 5, 20),
    ]
    assert expected[1][3:5] == ["mise en conformité", "instruction"] and expected[2][4] == "abandonné"
    for file_format in FORMATS:
        path = desk.export("projects", "--format", file_format)
        assert_sheet(path, file_format, PROJECT_HEADERS, expected)


def test_tranches_export_matches_project_show(desk: Desk) -> None:
    expected = []
    for project in desk.ids:
        shown = desk.show(project)
        for tranche in shown["tranches"]:
            expected.append(
                [
                    shown["id"],
                    shown["name"],
                    shown["campaign"],
                    tranche["number"],
                    Share(Decimal(tranche["percent"])),
                    Euros(Decimal(tranche["amount_eur"])),
                    "versée" if tranche["status"] == "released" else "à verser",
                    paris(tranche["released_at"]),
                ]
            )
    assert len(expected) == 9 and expected[0][6:] == ["versée", local(2021, 5, 20, 16, 45, 30)]
    for file_format in FORMATS:
        path = desk.export("tranches", "--format", file_format)
        assert_sheet(path, file_format, TRANCHE_HEADERS, expected)


def test_esms_export_lists_every_esms_of_every_grappe(desk: Desk) -> None:
    expected = []
    for project in desk.ids:
        shown = desk.show(project)
        grappe = tomllib.loads(desk.files[project].read_text(encoding="utf-8"))
        rows = [
            [esms["finess"], esms["name"], esms["category"], esms["small"], org["name"], org["finess"]]
            for org in grappe["organisations"]
            for esms in org["esms"]
        ]
        expected += [[*row, shown["id"], shown["name"], shown["campaign"]] for row in rows]
    assert len(expected) == 20 + 16 + 15
    for file_format in FORMATS:
        path = desk.export("esms", "--format", file_format)
        assert_sheet(path, file_format, ESMS_HEADERS, expected)


def test_history_export_matches_project_history(desk: Desk) -> None:
    expected = []
    for project in desk.ids:
        shown = desk.show(project)
        for change in desk.cli.ok("project", "history", str(project), "--json", now=NOW).json():
            expected.append(
                [
                    shown["id"],
                    shown["name"],
                    shown["campaign"],
                    change["seq"],
                    paris(change["at"]),
                    change["event"],
                    STATE_LABELS[change["source"]] if change["source"] else None,
                    STATE_LABELS[change["dest"]],
                    change["actor"],
                    change["forced"],
                    change["approved_by"],
                    change["reason"],
                ]
            )
    assert expected[0][3:8] == [1, local(2021, 3, 1, 10), "register", None, "candidature"]
    assert expected[-1][5:8] == ["withdraw", "candidature", "abandonné"] and expected[-1][-1] == "Plus de porteur"
    for file_format in FORMATS:
        path = desk.export("history", "--format", file_format)
        assert_sheet(path, file_format, HISTORY_HEADERS, expected)


STATE_LABELS = {
    "application": "candidature",
    "selection": "instruction",
    "needs_statement": "expression de besoins (RESAH)",
    "vendor_contract": "contrat éditeur",
    "agreement": "convention",
    "configuration": "paramétrage",
    "withdrawn": "abandonné",
}


def test_outbox_export_matches_outbox_list(desk: Desk) -> None:
    messages = sorted(desk.cli.ok("outbox", "list", "--json", now=NOW).json(), key=lambda m: m["id"])
    expected = [
        [
            m["id"],
            m["template"],
            m["project"],
            ", ".join(m["recipients"]),
            m["subject"],
            STATUS_LABELS[m["status"]],
            m["attempts"],
            paris(m["next_attempt_at"]) if m["status"] == "pending" else None,
            paris(m["sent_at"]),
            m["last_error"],
        ]
        for m in messages
    ]
    assert {row[5] for row in expected} == {"envoyé", "en attente"}
    for file_format in FORMATS:
        path = desk.export("outbox", "--format", file_format)
        assert_sheet(path, file_format, OUTBOX_HEADERS, expected)


# --- options ---------------------------------------------------------------------------------------------------


def test_campaign_option_keeps_that_campaign_only(desk: Desk, tmp_path: Path) -> None:
    hdf = desk.export("projects", "--campaign", "hdf-2021", "--format", "csv", "--output", str(tmp_path / "h.csv"))
    assert [row[0] for row in read_csv(hdf)[1:]] == [str(p) for p in desk.ids]
    ara = desk.export("tranches", "--campaign", "ara-2021", "--format", "csv", "--output", str(tmp_path / "a.csv"))
    assert read_csv(ara) == [TRANCHE_HEADERS]
    refused = desk.cli("export", "projects", "--campaign", "nowhere-2099", "--output", str(tmp_path / "n.xlsx"))
    assert refused.code == 2 and not (tmp_path / "n.xlsx").exists()


def test_default_file_name_is_kind_campaign_and_todays_paris_date(
    desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    # 23:30 UTC is already the next day in Paris: the name carries the Paris date.
    result = desk.cli.ok("export", "projects", now="2021-05-21T23:30:00+00:00")
    assert result.out.strip() == "Export « projects » : 3 lignes écrites dans projects-toutes-2021-05-22.xlsx"
    desk.cli.ok("export", "esms", "--campaign", "hdf-2021", "--format", "ods", now=NOW)
    desk.cli.ok("export", "outbox", "--format", "CSV", now=NOW)
    assert sorted(os.listdir(here)) == [
        "esms-hdf-2021-2021-05-21.ods",
        "outbox-toutes-2021-05-21.csv",
        "projects-toutes-2021-05-22.xlsx",
    ]
    assert zipfile.ZipFile(here / "esms-hdf-2021-2021-05-21.ods").read("mimetype") == (
        b"application/vnd.oasis.opendocument.spreadsheet"
    )


def test_output_dash_writes_csv_on_stdout(desk: Desk, tmp_path: Path) -> None:
    result = desk.cli.ok("export", "tranches", "--output", "-", now=NOW)
    assert result.out.startswith("\ufeffN°;Projet;Campagne;Tranche;Pourcentage;Montant (€);État;Versée le\r\n")
    rows = list(csv.reader(io.StringIO(result.out.removeprefix("\ufeff"), newline=""), delimiter=";"))
    assert rows[1] == [
        str(desk.ids[0]),
        "Grappe du Hainaut",
        "hdf-2021",
        "1",
        "40",
        "232000,00",
        "versée",
        "20/05/2021 16:45",
    ]
    assert len(rows) == 10
    assert result.err.strip() == "Export « tranches » : 9 lignes écrites sur la sortie standard"
    refused = desk.cli("export", "tranches", "--output", "-", "--format", "xlsx", now=NOW)
    assert refused.code == 2 and refused.out == ""


def test_csv_is_semicolons_bom_decimal_comma_and_french_dates(desk: Desk, tmp_path: Path) -> None:
    path = desk.export("projects", "--format", "csv", "--output", str(tmp_path / "p.csv"))
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfN\xc2\xb0;Projet;Campagne;Type;\xc3\x89tat;")
    lines = raw.decode("utf-8-sig").split("\r\n")
    signed = lines[1].split(";")
    assert signed[10:] == ["580000,00", "232000,00", "date limite d'achèvement du projet", "20/05/2023"]
    esms = desk.export("esms", "--format", "csv", "--output", str(tmp_path / "e.csv"))
    assert {row[3] for row in read_csv(esms)[1:]} == {"Oui", "Non"}


def test_text_that_looks_like_a_formula_stays_text(desk: Desk, tmp_path: Path) -> None:
    import openpyxl

    workbook = desk.export("projects", "--output", str(tmp_path / "p.xlsx"))
    cell = openpyxl.load_workbook(workbook).worksheets[0]["B3"]
    assert (cell.value, cell.data_type) == ("=Grappe de l'Artois", "s")
    text = desk.export("projects", "--format", "csv", "--output", str(tmp_path / "p.csv"))
    assert read_csv(text)[2][1] == "'=Grappe de l'Artois"


# --- refusals: exit 2, nothing written ---------------------------------------------------------------------------


def test_unknown_kind_format_or_unwritable_path_exit_2_and_write_nothing(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, message in [
        (["budgets"], "type inconnu 'budgets'"),
        (["projects", "--format", "pdf"], "format inconnu 'pdf'"),
        (["projects", "--output", f"{tmp_path}/absent/p.xlsx"], "n'existe pas"),
        (["projects", "--output", str(tmp_path)], "est un dossier"),
        (["projects", "--output", "-", "--format", "ods"], "que du CSV"),
    ]:
        result = cli("export", *args, now=NOW)
        assert (result.code, result.out) == (2, ""), args
        assert message in result.err and "Traceback" not in result.err, result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_exit_2(cli: Cli, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = cli("export", "projects", "--output", str(locked / "p.xlsx"), now=NOW)
    finally:
        locked.chmod(0o700)
    assert result.code == 2 and "accessible en écriture" in result.err
    assert list(locked.iterdir()) == []


def test_a_failure_while_writing_leaves_no_file_and_keeps_the_old_one(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workflow import exports

    def two_rows_then_a_full_disk(source: exports.Source, campaign: str | None) -> Any:
        for number in (1, 2):
            yield (number, "Grappe", "hdf-2021", Decimal("1.50"), exports.Percent(Decimal(40)), date(2021, 5, 1))
        raise OSError(28, "No space left on device")

    spec = exports._KindSpec(title="Projets", headers=exports.PROJECT_HEADERS, rows=two_rows_then_a_full_disk)
    monkeypatch.setitem(exports.KINDS, exports.Kind.PROJECTS, spec)
    folder = tmp_path / "out"
    folder.mkdir()
    for file_format in FORMATS:
        target = folder / f"p.{file_format}"
        target.write_bytes(b"previous export")
        result = cli("export", "projects", "--format", file_format, "--output", str(target), now=NOW)
        assert result.code == 2 and "No space left on device" in result.err
        assert target.read_bytes() == b"previous export"
    assert sorted(os.listdir(folder)) == ["p.csv", "p.ods", "p.xlsx"]  # no temporary file left behind
