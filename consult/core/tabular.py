"""Reading and writing the interchange spreadsheets (CSV or XLSX, English or Chinese headers).

Readers return every row with its line number so importers can report errors by line and
column; structural problems (unreadable file, missing columns) raise ImportRejected.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _

from consult.core.errors import CellError, ImportRejected

XLSX_MAGIC = b"PK\x03\x04"
_READ_PROGRESS_EVERY = 5000
_PARENTHESISED = re.compile(r"[(（\[【].*?[)）\]】]")
_SPACES = re.compile(r"[\s*＊]+")


@dataclass(frozen=True)
class Column:
    """A column an importer understands: its key, the headers that name it, whether required."""

    key: str
    aliases: tuple[str, ...]
    required: bool = True


@dataclass
class Table:
    """The rows of a file: ``(line number, {key: cell text})``, and where each key was found."""

    rows: list[tuple[int, dict[str, str]]]
    headers: dict[str, str] = field(default_factory=dict)  # key → header as written
    letters: dict[str, str] = field(default_factory=dict)  # key → spreadsheet column letter

    def where(self, key: str) -> str:
        """How to name a column in an error message: 'D (面积)'."""
        if key in self.letters:
            return f"{self.letters[key]} ({self.headers[key]})"
        return key


def normalize_header(text: str) -> str:
    """Fold a header for matching: no spaces, no '*', no '(unit)', ASCII lower-cased."""
    text = text.replace("\ufeff", "")
    text = _PARENTHESISED.sub("", text)
    return _SPACES.sub("", text).lower()


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _decode_csv(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Excel on a Chinese Windows saves CSV in GBK; GB18030 is its superset.
    return data.decode("gb18030")


_FORMULA_START = ("=", "+", "-", "@")


def neutralize_formula(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula: '=1+2' is written as "'=1+2".

    Phone numbers such as +86 138… stay as they are.
    """
    if value.startswith(_FORMULA_START) and not re.fullmatch(r"[+\-]?[\d\s()\-]+", value):
        return "'" + value
    return value


def restore_formula_text(value: str) -> str:
    """Undo ``neutralize_formula`` when reading a file we wrote."""
    if value.startswith("'") and value[1:2] in _FORMULA_START:
        return value[1:]
    return value


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value).strip()


def _raw_rows(data: bytes, filename: str) -> Iterable[tuple[int, list[str]]]:
    name = filename.lower()
    if name.endswith(".xls"):
        raise ImportRejected(_("Old .xls workbooks are not supported; save the file as .xlsx or "
                               "CSV."), [])
    if data.startswith(XLSX_MAGIC) or name.endswith(".xlsx"):
        yield from _xlsx_rows(data)
        return
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRejected(_("This does not look like a CSV or XLSX file."), [])
    try:
        text = _decode_csv(data)
    except UnicodeDecodeError as exc:
        raise ImportRejected(
            _("The file is neither UTF-8 nor GB18030 text; save it as CSV (UTF-8) or XLSX."), []
        ) from exc
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            yield reader.line_num, [restore_formula_text(c.strip()) for c in cells]
    except csv.Error as exc:
        raise ImportRejected(
            _("Line %(line)s cannot be read as CSV: %(reason)s", line=reader.line_num,
              reason=str(exc)), []
        ) from exc


# What openpyxl raises for a file that is not a sound workbook; SyntaxError covers the XML
# parsers' errors (ElementTree's ParseError, lxml's XMLSyntaxError).
_DAMAGED = (zipfile.BadZipFile, KeyError, OSError, ValueError, IndexError, SyntaxError)


def _xlsx_rows(data: bytes) -> Iterable[tuple[int, list[str]]]:
    from openpyxl import load_workbook  # imported here: only XLSX imports pay for it

    damaged = _("The XLSX file is damaged or not an Excel workbook.")
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except _DAMAGED as exc:
        raise ImportRejected(damaged, []) from exc
    try:
        sheet = workbook.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [restore_formula_text(_cell_text(v)) for v in values]
    except _DAMAGED as exc:  # read-only sheets are parsed while their rows are read
        raise ImportRejected(damaged, []) from exc
    finally:
        workbook.close()


def read_table(data: bytes, filename: str, columns: Sequence[Column],
               progress: Callable[[int], None] | None = None) -> Table:
    """Parse ``data`` into rows keyed by column key; blank rows are skipped.

    Raises ImportRejected for an empty file, unknown or missing columns, or unreadable bytes.
    ``progress(rows)`` is told how many rows were read so far, every 5,000 rows (a big XLSX
    takes seconds per 10,000 rows).
    """
    table, positions, rows_iter = _header(data, filename, columns)
    for line, cells in rows_iter:
        if not any(cells):
            continue
        table.rows.append((line, {
            key: (cells[pos] if pos < len(cells) else "") for key, pos in positions.items()
        }))
        if progress and len(table.rows) % _READ_PROGRESS_EVERY == 0:
            progress(len(table.rows))
    if not table.rows:
        raise ImportRejected(_("The file has a header but no data rows."), [])
    return table


def check_header(data: bytes, filename: str, columns: Sequence[Column]) -> None:
    """Refuse at once what ``read_table`` would refuse before its first data row: an empty,
    unreadable or damaged file, a wrong header row, no data rows. Reads only that far, so a
    page can answer straight away and leave the rows to be checked after the request."""
    _table, _positions, rows_iter = _header(data, filename, columns)
    if not any(any(cells) for _line, cells in rows_iter):
        raise ImportRejected(_("The file has a header but no data rows."), [])


def _header(data: bytes, filename: str, columns: Sequence[Column]
            ) -> tuple[Table, dict[str, int], Iterator[tuple[int, list[str]]]]:
    """The header row's columns (an empty table, their positions) and the rows after it."""
    if not data.strip():
        raise ImportRejected(_("The file is empty."), [])
    by_alias: dict[str, str] = {}
    for column in columns:
        for alias in column.aliases:
            by_alias[normalize_header(alias)] = column.key

    rows_iter = iter(_raw_rows(data, filename))
    # The header is the first row with anything in it.
    header_line, header = next(((n, cells) for n, cells in rows_iter if any(cells)), (0, []))
    if not header:
        raise ImportRejected(_("The file is empty."), [])

    positions: dict[str, int] = {}
    table = Table(rows=[])
    errors: list[CellError] = []
    for index, text in enumerate(header):
        key = by_alias.get(normalize_header(text))
        if key is None:
            continue  # extra columns are allowed and ignored
        if key in positions:
            errors.append(CellError(header_line, f"{column_letter(index)} ({text})",
                                    _("This column appears twice.")))
            continue
        positions[key] = index
        table.headers[key] = text
        table.letters[key] = column_letter(index)
    for column in columns:
        if column.required and column.key not in positions:
            errors.append(CellError(
                header_line, column.aliases[0],
                _("Required column missing; accepted headers: %(names)s",
                  names=" / ".join(column.aliases)),
            ))
    if errors:
        raise ImportRejected(_("The header row is not right."), errors)
    return table, positions, rows_iter


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with a BOM, which Excel opens with the right encoding."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else neutralize_formula(str(v)) for v in row])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")


def write_xlsx(header: Sequence[str], rows: Iterable[Sequence[Any]], title: str) -> bytes:
    """A one-sheet workbook; cells are written as text so room numbers keep their zeros."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(list(header))
    for row in rows:
        cells = []
        for value in row:
            cell = WriteOnlyCell(sheet, value="" if value is None else str(value))
            cell.data_type = "s"  # text, never a formula
            cells.append(cell)
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def looks_like_table(filename: str, data: bytes) -> bool:
    """Sniff an upload's content against its name: an XLSX is a zip, a CSV is text without
    NUL bytes (unless it is UTF-16 with its byte-order mark)."""
    name = filename.lower()
    if name.endswith(".xlsx"):
        return data.startswith(XLSX_MAGIC)
    if name.endswith((".csv", ".txt")):
        return b"\x00" not in data[:4096] or data.startswith((b"\xff\xfe", b"\xfe\xff"))
    return False
