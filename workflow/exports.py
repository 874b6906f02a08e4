"""Spreadsheets for the programme team, the finance office and the CNSA: `esms export KIND`.

One row builder per kind (projects, tranches, ESMS, history, outbox) yields typed cells; one writer per format
(XLSX, ODS, CSV) turns them into a file. Everything streams: rows are read from the database in batches
(`yield_per`, a server-side cursor on PostgreSQL) and written as they come: 100 000 projects (or 300 000 ESMS)
export in under 100 MB of peak RSS, whatever the format. Amounts are `Decimal` euros, instants are shown in the
campaign's time zone as naive local values (a spreadsheet has no time zones), and what a user reads (headers,
states, kinds, yes/no) is French.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, Final, Protocol, TypeVarTuple
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from notifications.models import OutboxMessage, OutboxStatus
from states import lifecycle
from states.errors import InvalidArgumentError
from workflow.calendars import for_project
from workflow.campaigns import Campaign, get_campaign
from workflow.db import translate_errors
from workflow.models import AuditEntry, Esms, Organisation, Project, Tranche
from workflow.queries import next_deadline

_Columns = TypeVarTuple("_Columns")

#: Rows read from the database per batch.
BATCH_SIZE: Final = 1000


class Kind(StrEnum):
    """What can be exported."""

    PROJECTS = "projects"
    TRANCHES = "tranches"
    ESMS = "esms"
    HISTORY = "history"
    OUTBOX = "outbox"


class Format(StrEnum):
    """The spreadsheet formats."""

    XLSX = "xlsx"
    ODS = "ods"
    CSV = "csv"


@dataclass(frozen=True)
class Percent:
    """A share such as a tranche's 40 %: `value` is in percent (40, not 0.4)."""

    value: Decimal


#: What a cell holds: text, a count, euros, a share, a day, a local instant, yes/no, or nothing.
Cell = str | int | Decimal | Percent | date | datetime | bool | None
Row = tuple[Cell, ...]

KIND_LABELS: Final[dict[str, str]] = {"acquisition": "acquisition", "compliance": "mise en conformité"}
OUTBOX_STATUS_LABELS: Final[dict[str, str]] = {
    OutboxStatus.PENDING: "en attente",
    OutboxStatus.SENT: "envoyé",
    OutboxStatus.PARTIAL: "envoyé en partie",
    OutboxStatus.DEAD: "en échec",
}
YES_NO: Final[dict[bool, str]] = {True: "Oui", False: "Non"}


@dataclass(frozen=True, kw_only=True)
class Sheet:
    """One export: a sheet title, the French headers and the rows, read as they are written."""

    kind: Kind
    title: str
    headers: tuple[str, ...]
    rows: Iterable[Row]


# --- Reading: one row builder per kind -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where rows come from: the database, the campaigns, the instant of the export and the default time zone."""

    engine: Engine
    campaigns: dict[str, Campaign]
    now: datetime
    timezone: ZoneInfo  # for rows without a campaign (the programme team's digest)

    def zone(self, campaign_id: str | None) -> ZoneInfo:
        """The time zone rows of this campaign are shown in."""
        campaign = self.campaigns.get(campaign_id) if campaign_id else None
        return campaign.timezone if campaign else self.timezone


def euros(cents: int) -> Decimal:
    """Cents as exact euros."""
    return Decimal(cents).scaleb(-2)


def local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    """An instant as the naive local time of `zone`, to the second (what a spreadsheet can hold)."""
    if moment is None:
        return None
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0)


def _stream(source: Source, query: sa.Select[*_Columns]) -> Iterator[sa.Row[*_Columns]]:
    """The query's rows in batches: a server-side cursor on PostgreSQL, so that memory stays flat."""
    with translate_errors(), Session(source.engine) as session:
        yield from session.execute(query.execution_options(yield_per=BATCH_SIZE))


PROJECT_HEADERS: Final = (
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
)


def project_rows(source: Source, campaign_id: str | None) -> Iterator[Row]:
    """One row per project, oldest first."""
    released = (
        sa.select(sa.func.coalesce(sa.func.sum(Tranche.amount_cents), 0))
        .where(col(Tranche.project_id) == col(Project.id), col(Tranche.released_at).is_not(None))
        .scalar_subquery()
    )
    query = sa.select(Project, released).order_by(col(Project.id))
    if campaign_id is not None:
        query = query.where(col(Project.campaign_id) == campaign_id)
    for project, released_cents in _stream(source, query):
        deadline_label: str | None = None
        deadline_day: date | None = None
        campaign = source.campaigns.get(project.campaign_id)
        if campaign is not None:
            deadline = next_deadline(project, for_project(campaign, project), source.now)
            if deadline is not None:
                deadline_label = lifecycle.DEADLINES_BY_KEY[deadline.name].label
                deadline_day = date.fromisoformat(deadline.day)
        yield (
            project.id,
            project.name,
            project.campaign_id,
            KIND_LABELS.get(project.kind, project.kind),
            lifecycle.STATE_LABELS.get(project.state, project.state),
            project.selection_group,
            project.owner_name,
            project.owner_email,
            project.esms_count,
            project.small_esms_count,
            euros(project.total_cents),
            euros(int(released_cents)),
            deadline_label,
            deadline_day,
        )


TRANCHE_HEADERS: Final = ("N°", "Projet", "Campagne", "Tranche", "Pourcentage", "Montant (€)", "État", "Versée le")


def tranche_rows(source: Source, campaign_id: str | None) -> Iterator[Row]:
    """One row per tranche, by project then number."""
    query = (
        sa.select(
            col(Project.id),
            col(Project.name),
            col(Project.campaign_id),
            col(Tranche.number),
            col(Tranche.percent),
            col(Tranche.amount_cents),
            col(Tranche.released_at),
        )
        .join(Project, col(Project.id) == col(Tranche.project_id))
        .order_by(col(Project.id), col(Tranche.number))
    )
    if campaign_id is not None:
        query = query.where(col(Project.campaign_id) == campaign_id)
    for project_id, name, campaign, number, percent, amount_cents, released_at in _stream(source, query):
        yield (
            project_id,
            name,
            campaign,
            number,
            Percent(Decimal(percent)),
            euros(amount_cents),
            "versée" if released_at is not None else "à verser",
            local(released_at, source.zone(campaign)),
        )


ESMS_HEADERS: Final = (
    "FINESS",
    "Nom",
    "Catégorie",
    "Petit",
    "Organisme",
    "FINESS organisme",
    "N°",
    "Projet",
    "Campagne",
)


def esms_rows(source: Source, campaign_id: str | None) -> Iterator[Row]:
    """One row per ESMS of every grappe, by project."""
    query = (
        sa.select(
            col(Esms.finess),
            col(Esms.name),
            col(Esms.category),
            col(Esms.small),
            col(Organisation.name),
            col(Organisation.finess),
            col(Project.id),
            col(Project.name),
            col(Project.campaign_id),
        )
        .join(Organisation, col(Organisation.id) == col(Esms.organisation_id))
        .join(Project, col(Project.id) == col(Esms.project_id))
        .order_by(col(Project.id), col(Esms.id))
    )
    if campaign_id is not None:
        query = query.where(col(Project.campaign_id) == campaign_id)
    yield from _stream(source, query)


HISTORY_HEADERS: Final = (
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
)


def history_rows(source: Source, campaign_id: str | None) -> Iterator[Row]:
    """One row per change of every project (the audit log), by project then sequence."""
    query = (
        sa.select(
            col(Project.id),
            col(Project.name),
            col(Project.campaign_id),
            col(AuditEntry.seq),
            col(AuditEntry.at),
            col(AuditEntry.event),
            col(AuditEntry.source),
            col(AuditEntry.dest),
            col(AuditEntry.actor),
            col(AuditEntry.forced),
            col(AuditEntry.approved_by),
            col(AuditEntry.reason),
        )
        .join(Project, col(Project.id) == col(AuditEntry.project_id))
        .order_by(col(Project.id), col(AuditEntry.seq))
    )
    if campaign_id is not None:
        query = query.where(col(Project.campaign_id) == campaign_id)
    for project_id, name, campaign, seq, at, event, state_from, state_to, actor, forced, approved_by, reason in _stream(
        source, query
    ):
        yield (
            project_id,
            name,
            campaign,
            seq,
            local(at, source.zone(campaign)),
            event,
            _state_label(state_from),
            _state_label(state_to),
            actor,
            forced,
            approved_by,
            reason,
        )


OUTBOX_HEADERS: Final = (
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
)


def outbox_rows(source: Source, campaign_id: str | None) -> Iterator[Row]:
    """One row per queued or delivered e-mail, oldest first (bodies are not read: they stay in the outbox)."""
    query = (
        sa.select(
            col(OutboxMessage.id),
            col(OutboxMessage.template),
            col(OutboxMessage.project_id),
            col(Project.campaign_id),
            col(OutboxMessage.recipients),
            col(OutboxMessage.subject),
            col(OutboxMessage.status),
            col(OutboxMessage.attempts),
            col(OutboxMessage.next_attempt_at),
            col(OutboxMessage.sent_at),
            col(OutboxMessage.last_error),
        )
        .outerjoin(Project, col(Project.id) == col(OutboxMessage.project_id))
        .order_by(col(OutboxMessage.id))
    )
    if campaign_id is not None:
        query = query.where(col(Project.campaign_id) == campaign_id)
    for (
        message_id,
        template,
        project_id,
        campaign,
        recipients,
        subject,
        status,
        attempts,
        next_at,
        sent_at,
        error,
    ) in _stream(source, query):
        zone = source.zone(campaign)
        yield (
            message_id,
            template,
            project_id,
            ", ".join(str(r) for r in json.loads(recipients)),
            subject,
            OUTBOX_STATUS_LABELS.get(status, status),
            attempts,
            local(next_at, zone) if status == OutboxStatus.PENDING else None,
            local(sent_at, zone),
            error,
        )


def _state_label(state: str | None) -> str | None:
    return None if state is None else lifecycle.STATE_LABELS.get(state, state)


@dataclass(frozen=True, kw_only=True)
class _KindSpec:
    title: str
    headers: tuple[str, ...]
    rows: Callable[[Source, str | None], Iterator[Row]]


KINDS: Final[dict[Kind, _KindSpec]] = {
    Kind.PROJECTS: _KindSpec(title="Projets", headers=PROJECT_HEADERS, rows=project_rows),
    Kind.TRANCHES: _KindSpec(title="Tranches", headers=TRANCHE_HEADERS, rows=tranche_rows),
    Kind.ESMS: _KindSpec(title="ESMS", headers=ESMS_HEADERS, rows=esms_rows),
    Kind.HISTORY: _KindSpec(title="Historique", headers=HISTORY_HEADERS, rows=history_rows),
    Kind.OUTBOX: _KindSpec(title="Courriels", headers=OUTBOX_HEADERS, rows=outbox_rows),
}


def parse_kind(text: str) -> Kind:
    """The kind named on the command line, or a refusal listing the kinds."""
    try:
        return Kind(text)
    except ValueError:
        raise InvalidArgumentError(f"export : type inconnu {text!r} (types : {', '.join(Kind)})") from None


def parse_format(text: str) -> Format:
    """The format named on the command line, or a refusal listing the formats."""
    try:
        return Format(text.lower())
    except ValueError:
        raise InvalidArgumentError(f"export : format inconnu {text!r} (formats : {', '.join(Format)})") from None


def sheet(source: Source, kind: Kind, campaign_id: str | None) -> Sheet:
    """The export of `kind` (one campaign, or all): its rows are read when the sheet is written."""
    if campaign_id is not None:
        get_campaign(source.campaigns, campaign_id)
    spec = KINDS[kind]
    return Sheet(kind=kind, title=spec.title, headers=spec.headers, rows=spec.rows(source, campaign_id))


# --- Writing: one writer per format ----------------------------------------------------------------------------


class SheetWriter(Protocol):
    """Writes a sheet to a binary stream and says how many rows (besides the header) it wrote."""

    def write(self, sheet: Sheet, stream: IO[bytes]) -> int:
        """Write the header row and every row of `sheet`."""


def _xml_text(text: str) -> str:
    """Text without the control characters XML 1.0 cannot hold (a spreadsheet file would be unreadable)."""
    return _XML_INVALID.sub("", text)


_XML_INVALID: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


EURO_FORMAT: Final = '#,##0.00\\ "€"'
DATE_FORMAT: Final = "dd/mm/yyyy"
DATETIME_FORMAT: Final = "dd/mm/yyyy hh:mm"


class XlsxWriter:
    """Office Open XML with openpyxl's write-only workbook, which streams rows to a temporary file as they come."""

    def write(self, sheet: Sheet, stream: IO[bytes]) -> int:
        """Write the header row and every row of `sheet`."""
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        workbook = Workbook(write_only=True)
        worksheet = workbook.create_sheet(sheet.title)
        for index, header in enumerate(sheet.headers, 1):
            worksheet.column_dimensions[get_column_letter(index)].width = max(12, len(header) + 4)
        worksheet.freeze_panes = "A2"
        bold = Font(bold=True)

        def cell(value: Cell) -> object:
            if value is None or (isinstance(value, int) and not isinstance(value, bool)):
                return value
            if isinstance(value, bool):
                value = YES_NO[value]
            if isinstance(value, str):
                if not value.startswith("="):
                    return _xml_text(value)
                written = WriteOnlyCell(worksheet, value=_xml_text(value))
                written.data_type = "s"  # text, even when it starts with "=": never a formula
                return written
            if isinstance(value, Percent):
                written = WriteOnlyCell(worksheet, value=value.value.scaleb(-2))
                written.number_format = "0%" if value.value == value.value.to_integral_value() else "0.00%"
                return written
            written = WriteOnlyCell(worksheet, value=value)
            if isinstance(value, Decimal):
                written.number_format = EURO_FORMAT
            else:
                written.number_format = DATETIME_FORMAT if isinstance(value, datetime) else DATE_FORMAT
            return written

        headers = []
        for header in sheet.headers:
            written = WriteOnlyCell(worksheet, value=header)
            written.font = bold
            headers.append(written)
        worksheet.append(headers)
        count = 0
        try:
            for row in sheet.rows:
                worksheet.append([cell(value) for value in row])
                count += 1
        except BaseException:
            # openpyxl streams the rows to a temporary file of its own: close and remove it now, not at exit.
            with contextlib.suppress(Exception):
                worksheet.close()
                worksheet._writer.cleanup()
            raise
        workbook.save(stream)
        return count


class OdsWriter:
    """OpenDocument spreadsheet: odfpy builds the document (styles, header row, manifest), the rows stream in.

    odfpy keeps a whole document in memory and takes about a millisecond to build a row's elements: 100 000
    projects would need gigabytes and minutes. So odfpy writes the document around a placeholder row, and the
    rows are written in its place, as the same XML, straight into the zip entry `content.xml`.
    """

    PLACEHOLDER: Final = "esms-export-rows"

    def write(self, sheet: Sheet, stream: IO[bytes]) -> int:
        """Write the header row and every row of `sheet`."""
        frame, placeholder = self._frame(sheet)
        count = 0
        with (
            zipfile.ZipFile(io.BytesIO(frame)) as source,
            zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as target,
        ):
            for info in source.infolist():  # `mimetype` first and stored, as odfpy wrote it
                if info.filename != "content.xml":
                    target.writestr(info, source.read(info))
                    continue
                head, tail = source.read(info).split(placeholder)
                entry = zipfile.ZipInfo("content.xml", date_time=info.date_time)
                entry.compress_type = zipfile.ZIP_DEFLATED
                with target.open(entry, "w", force_zip64=True) as content:
                    content.write(head)
                    batch: list[str] = []
                    for row in sheet.rows:
                        batch.append(self._row(row))
                        count += 1
                        if len(batch) == BATCH_SIZE:
                            content.write("".join(batch).encode())
                            batch.clear()
                    content.write("".join(batch).encode())
                    content.write(tail)
        return count

    def _frame(self, sheet: Sheet) -> tuple[bytes, bytes]:
        """The document with its styles, columns and header row, and a placeholder row where the rows go."""
        from odf.number import (
            CurrencyStyle,
            CurrencySymbol,
            DateStyle,
            Day,
            Hours,
            Minutes,
            Month,
            Number,
            PercentageStyle,
            Text,
            Year,
        )
        from odf.opendocument import OpenDocumentSpreadsheet
        from odf.style import Style, TableColumnProperties, TextProperties
        from odf.table import Table, TableCell, TableColumn, TableRow
        from odf.text import P

        document = OpenDocumentSpreadsheet()
        euros = CurrencyStyle(name="N-euros", language="fr", country="FR")
        euros.addElement(Number(decimalplaces=2, minintegerdigits=1, grouping="true"))
        euros.addElement(Text(text="\u00a0"))
        euros.addElement(CurrencySymbol(language="fr", country="FR", text="€"))
        day = DateStyle(name="N-date")
        instant = DateStyle(name="N-datetime")
        for style in (day, instant):
            for part in (Day(style="long"), Text(text="/"), Month(style="long"), Text(text="/"), Year(style="long")):
                style.addElement(part)
        for part in (Text(text=" "), Hours(style="long"), Text(text=":"), Minutes(style="long")):
            instant.addElement(part)
        percents = []
        for name, places in (("N-percent", 0), ("N-percent-2", 2)):
            percent = PercentageStyle(name=name)
            percent.addElement(Number(decimalplaces=places, minintegerdigits=1))
            percent.addElement(Text(text="\u00a0%"))
            percents.append(percent)
        # Named cell styles live in styles.xml: odfpy keeps only the automatic styles its own tree uses.
        for data_style in (euros, day, instant, *percents):
            document.styles.addElement(data_style)
        for name, data_style_name in _ODS_STYLES.values():
            document.styles.addElement(Style(name=name, family="table-cell", datastylename=data_style_name))
        bold = Style(name="Entete", family="table-cell")
        bold.addElement(TextProperties(fontweight="bold"))
        document.styles.addElement(bold)
        column = Style(name="co1", family="table-column")
        column.addElement(TableColumnProperties(columnwidth="3.5cm"))
        document.automaticstyles.addElement(column)

        table = Table(name=sheet.title)
        table.addElement(TableColumn(numbercolumnsrepeated=len(sheet.headers), stylename=column))
        header = TableRow()
        for text in sheet.headers:
            cell = TableCell(valuetype="string", stylename=bold)
            cell.addElement(P(text=text))
            header.addElement(cell)
        table.addElement(header)
        placeholder = TableRow()
        cell = TableCell(valuetype="string")
        cell.addElement(P(text=self.PLACEHOLDER))
        placeholder.addElement(cell)
        table.addElement(placeholder)
        document.spreadsheet.addElement(table)
        xml = io.StringIO()
        placeholder.toXml(1, xml)
        frame = io.BytesIO()
        document.write(frame)
        return frame.getvalue(), xml.getvalue().encode()

    @staticmethod
    def _row(row: Row) -> str:
        return "<table:table-row>" + "".join(_ods_cell(value) for value in row) + "</table:table-row>"


#: The named cell styles of the ODS writer, and their number formats, by kind of value.
_ODS_STYLES: Final = {
    "euros": ("Euros", "N-euros"),
    "date": ("Date", "N-date"),
    "datetime": ("DateHeure", "N-datetime"),
    "percent": ("Pourcentage", "N-percent"),
    "percent-2": ("Pourcentage2", "N-percent-2"),
}


def _ods_cell(value: Cell) -> str:
    """One `table:table-cell`: the value in its attributes (the application formats it by the cell's style)."""
    if value is None:
        return "<table:table-cell/>"
    if isinstance(value, bool):
        value = YES_NO[value]
    if isinstance(value, str):
        return (
            '<table:table-cell office:value-type="string"><text:p>'
            f"{escape(_xml_text(value))}</text:p></table:table-cell>"
        )
    if isinstance(value, int):
        return (
            f'<table:table-cell office:value-type="float" office:value="{value}">'
            f"<text:p>{value}</text:p></table:table-cell>"
        )
    if isinstance(value, Decimal):
        return (
            f'<table:table-cell table:style-name="Euros" office:value-type="currency" office:currency="EUR" '
            f'office:value="{value}"/>'
        )
    if isinstance(value, Percent):
        style = _ODS_STYLES["percent" if value.value == value.value.to_integral_value() else "percent-2"][0]
        fraction = format(value.value.scaleb(-2), "f")
        return (
            f'<table:table-cell table:style-name="{style}" office:value-type="percentage" office:value="{fraction}"/>'
        )
    if isinstance(value, datetime):
        return (
            '<table:table-cell table:style-name="DateHeure" office:value-type="date" '
            f"office:date-value={quoteattr(value.isoformat(timespec='seconds'))}/>"
        )
    return (
        f'<table:table-cell table:style-name="Date" office:value-type="date" office:date-value="{value.isoformat()}"/>'
    )


class CsvWriter:
    """`;`-separated, UTF-8 with a byte order mark (so that Excel reads the accents), decimal comma, French dates.

    Text that a spreadsheet would take for a formula (`=`, `+`, `-`, `@` first) is prefixed with `'`.
    """

    def write(self, sheet: Sheet, stream: IO[bytes]) -> int:
        """Write the header row and every row of `sheet`."""
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        try:
            writer = csv.writer(text, delimiter=";", lineterminator="\r\n")
            writer.writerow(sheet.headers)
            count = 0
            for row in sheet.rows:
                writer.writerow([csv_text(value) for value in row])
                count += 1
        finally:
            text.flush()
            text.detach()  # the stream belongs to the caller
        return count


def csv_text(value: Cell) -> str:
    """A cell as CSV text: `1234,56`, `40`, `31/03/2021`, `31/03/2021 14:05`, `Oui`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return YES_NO[value]
    if isinstance(value, str):
        return "'" + value if value[:1] in ("=", "+", "-", "@") else value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return f"{value:.2f}".replace(".", ",")
    if isinstance(value, Percent):
        return format(value.value.normalize(), "f").replace(".", ",")
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    return value.strftime("%d/%m/%Y")


WRITERS: Final[dict[Format, SheetWriter]] = {
    Format.XLSX: XlsxWriter(),
    Format.ODS: OdsWriter(),
    Format.CSV: CsvWriter(),
}


# --- Where it goes ---------------------------------------------------------------------------------------------


def default_file_name(kind: Kind, campaign_id: str | None, today: date, file_format: Format) -> str:
    """`projects-hdf-2021-2026-11-25.xlsx`; `toutes` for every campaign."""
    return f"{kind}-{campaign_id or 'toutes'}-{today.isoformat()}.{file_format}"


def check_writable(path: Path) -> Path:
    """Refuse a path that cannot be written before anything is read; return its folder."""
    folder = path.parent
    if path.is_dir():
        raise InvalidArgumentError(f"export : {str(path)!r} est un dossier, pas un fichier")
    if not folder.is_dir():
        raise InvalidArgumentError(f"export : le dossier {str(folder)!r} n'existe pas")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidArgumentError(f"export : le dossier {str(folder)!r} n'est pas accessible en écriture")
    return folder


def write_file(path: Path, file_format: Format, sheet: Sheet) -> int:
    """Write `sheet` to `path` whole or not at all (a temporary file of the same folder, renamed at the end)."""
    folder = check_writable(path)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise InvalidArgumentError(f"export : impossible d'écrire dans {str(folder)!r} ({error.strerror})") from None
    try:
        with os.fdopen(descriptor, "wb") as stream:
            count = WRITERS[file_format].write(sheet, stream)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise InvalidArgumentError(f"export : impossible d'écrire {str(path)!r} ({error.strerror})") from None
        raise
    return count


def write_stream(stream: IO[bytes], file_format: Format, sheet: Sheet) -> int:
    """Write `sheet` to an open binary stream (standard output)."""
    return WRITERS[file_format].write(sheet, stream)
