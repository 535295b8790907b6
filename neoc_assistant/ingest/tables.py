"""Spreadsheets (XLSX, ODS): each row one statement, every value with its column's name.

Why this shape: an EOC's contact list and relief stock sheet are asked about
one line at a time ("who is the logistics chief's phone?"), and a passage
that holds "9841000000" without "Phone" next to it answers nothing. So a row
becomes ``Name: Hari Thapa · Role: Logistics Chief · Phone: 9841000000``,
complete on its own whichever chunk it lands in, and rows are separated by a
blank line, so the splitter cuts between rows and the reader quotes one row
as one statement. Each sheet is a section (its name the heading); lines above
the header row (a sheet's title, "updated 5 May") are kept as text.

The header row is the first row at least half as wide as the sheet's widest
row: titles and notes above a table are narrower than it. Empty header cells
are named by their column letter. Values are what the file shows: a formula's
last computed value, a whole number without ".0", a date without a midnight.

Memory: openpyxl reads XLSX in streaming mode, one row at a time; an ODS's
``content.xml`` is parsed whole by odfpy, so its size is checked against the
text cap first (as DOCX is), and repeated rows and cells (ODS writes a
sheet's empty tail as "1,048,000 empty rows") are never expanded past
``MAX_REPEAT``.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import zipfile
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.document import LoadedDocument, Page
from neoc_assistant.ingest.limits import TextBudget

SEPARATOR = " · "
# A row or cell written once with a repeat count is expanded at most this many times when it has content.
MAX_REPEAT = 1000
# Cells of a row beyond this are not read (a real sheet is tens of columns wide; XLSX allows 16,384).
MAX_COLUMNS = 512
# Rows looked at to find the header row (titles and notes above a table are a few lines).
HEADER_LOOKAHEAD = 20


def load_xlsx(path: Path, data: bytes, budget: TextBudget) -> LoadedDocument:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise InputError(f"not a readable XLSX (corrupt, or an old .xls renamed? save it as .xlsx): {exc}") from exc
    try:
        title = (book.properties.title or "").strip() if book.properties else ""
        sheets = [(sheet.title, (row[:MAX_COLUMNS] for row in sheet.iter_rows(values_only=True)))
                  for sheet in book.worksheets]
        return _document(path, "xlsx", title, sheets, budget)
    finally:
        book.close()


def load_ods(path: Path, data: bytes, budget: TextBudget) -> LoadedDocument:
    from odf.opendocument import load
    from odf.table import Table

    budget.check_member(data, "content.xml")
    try:
        document = load(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InputError(f"not a readable ODS (corrupt, or another format renamed?): {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - the XML parser's own errors
        raise InputError(f"not a readable ODS: {exc}") from exc
    sheets = [(str(table.getAttribute("name") or "Sheet"), _ods_rows(table))
              for table in document.spreadsheet.getElementsByType(Table)]
    title = ""
    for element in document.meta.childNodes if document.meta else []:
        if element.qname[1] == "title":
            title = str(element).strip()
    return _document(path, "ods", title, sheets, budget)


def _ods_rows(table) -> Iterator[tuple]:
    """Rows of an ODS table as value tuples, repeated rows and cells expanded within ``MAX_REPEAT``.
    (odfpy's element classes are factories, so elements are told apart by their tag names.)"""
    for row in _descendants(table, "table-row"):
        cells: list = []
        for cell in row.childNodes:
            tag = getattr(cell, "qname", (None, ""))[1]
            if tag not in ("table-cell", "covered-table-cell"):
                continue
            value = _ods_value(cell) if tag == "table-cell" else None
            repeat = int(cell.getAttribute("numbercolumnsrepeated") or 1)
            cells.extend([value] * (min(repeat, MAX_REPEAT) if value is not None else min(repeat, MAX_COLUMNS)))
            if len(cells) >= MAX_COLUMNS:
                break
        values = tuple(cells[:MAX_COLUMNS])
        if not any(v is not None for v in values):
            yield ()  # an empty row (however often repeated) is one empty row
            continue
        for _ in range(min(int(row.getAttribute("numberrowsrepeated") or 1), MAX_REPEAT)):
            yield values


def _descendants(element, tag: str) -> Iterator:
    """Rows inside row groups and header-row blocks too, in document order."""
    for child in element.childNodes:
        name = getattr(child, "qname", (None, ""))[1]
        if name == tag:
            yield child
        elif name in ("table-row-group", "table-header-rows", "table-rows"):
            yield from _descendants(child, tag)


def _ods_value(cell) -> object:
    from odf import teletype
    from odf.text import P

    kind = cell.getAttribute("valuetype")
    if kind in ("float", "percentage", "currency"):
        try:
            return float(cell.getAttribute("value"))
        except (TypeError, ValueError):
            pass
    if kind == "date":
        raw = cell.getAttribute("datevalue") or ""
        try:
            return dt.datetime.fromisoformat(raw)
        except ValueError:
            return raw or None
    if kind == "boolean":
        return (cell.getAttribute("booleanvalue") or "").lower() == "true"
    text = "\n".join(teletype.extractText(p) for p in cell.getElementsByType(P)).strip()
    return text or None


def _document(path: Path, doc_type: str, title: str, sheets: Sequence[tuple[str, Iterable[tuple]]],
              budget: TextBudget) -> LoadedDocument:
    name = title or path.stem.replace("_", " ")
    pages, rows = [], 0
    for sheet, sheet_rows in sheets:
        lines, counted = _sheet_lines(sheet_rows, budget)
        if lines:
            heading = _plain(sheet if len(sheets) > 1 else name)
            pages.append(Page(None, budget.take(f"# {heading}") + "\n\n" + "\n\n".join(lines)))
            rows += counted
    if not pages:
        raise InputError(f"the {doc_type.upper()} has no filled cells")
    notes = [f"{rows:,} row(s) read as statements, each with its column names"] if rows else []
    return LoadedDocument(title=name, doc_type=doc_type, pages=pages, notes=notes)


def _sheet_lines(rows: Iterable[tuple], budget: TextBudget) -> tuple[list[str], int]:
    """The lines of one sheet and how many table rows they hold (header-paired rows, blank-separated).
    Rows are read as they stream in; only the first ``HEADER_LOOKAHEAD`` are held to find the header."""
    filled = (r for r in (_trim([_cell_text(v) for v in row]) for row in rows) if r)
    first = list(itertools.islice(filled, HEADER_LOOKAHEAD))
    if not first:
        return [], 0
    widest = max(_width(r) for r in first)
    lines, header, count = [], None, 0
    for row in itertools.chain(first, filled):
        if header is None:
            if _width(row) >= max(2, (widest + 1) // 2):
                header = [_plain(c) or _column_letter(i) for i, c in enumerate(row)]
            else:
                lines.append(budget.take(_plain(" ".join(c for c in row if c))))
            continue
        pairs = [f"{header[i] if i < len(header) else _column_letter(i)}: {value}"
                 for i, value in enumerate(row) if value]
        lines.append(budget.take(SEPARATOR.join(pairs)))
        count += 1
    if header is not None and count == 0:  # a lone header row, or a one-row list: keep its words
        lines.append(budget.take(SEPARATOR.join(header)))
    return lines, count


def _width(row: list[str]) -> int:
    return sum(1 for c in row if c)


def _plain(text: str) -> str:
    """A line that starts with "#" would be read as a heading: "# of people" -> "No. of people"."""
    return "No. " + text.lstrip("#").lstrip() if text.startswith("#") else text


def _trim(cells: list[str]) -> list[str]:
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.10g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return f"Column {letters}"
