"""CSV in and out: a seller's product list in, estimations out.

More: docs/architecture.md, "estimations/csv_io.py".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from core import limits
from core.http import http_date
from core.parsers import read_limited
from estimations import rank_history
from estimations.fields import BY_NAME, CSV_EXPORT_COLUMNS, CSV_IMPORT_COLUMNS

MEDIA_TYPE = "text/csv"
# The columns, from the field table: an upload's (each a field a client sends; the required ones must
# be named, or the one each may be sent instead of) and an export's, in the order answers show the fields.
IMPORT_COLUMNS = CSV_IMPORT_COLUMNS
REQUIRED_COLUMNS = tuple(name for name in IMPORT_COLUMNS if (sent := BY_NAME[name].sent) and sent.required)
INSTEAD = {name: sent.instead for name in REQUIRED_COLUMNS if (sent := BY_NAME[name].sent) and sent.instead}
EXPORT_COLUMNS = CSV_EXPORT_COLUMNS
LISTS = frozenset(name for name in EXPORT_COLUMNS if BY_NAME[name].kind in ("history", "gaps"))
IGNORED_ON_IMPORT = frozenset(EXPORT_COLUMNS) - frozenset(IMPORT_COLUMNS)
ROWS_PER_CHUNK = 500

MSG_CSV_EMPTY = f"The CSV is empty: send a header row ({','.join(IMPORT_COLUMNS)}) and one row per product."
MSG_CSV_MISSING_COLUMN = "The CSV header must name a {required} column; it names: {columns}."
MSG_CSV_MISSING_EITHER = "The CSV header must name a {required} or a {instead} column (or both); it names: {columns}."
MSG_CSV_UNKNOWN = "The CSV header names unknown column(s) {unknown}; the columns are " + ", ".join(IMPORT_COLUMNS) + "."
MSG_CSV_DUPLICATE = "The CSV header names '{column}' twice."
MSG_CSV_EXTRA_CELLS = "Line {line} has more cells than the header has columns."
MSG_CSV_MALFORMED = "The CSV could not be read at line {line}: {reason}."
MSG_CSV_NOT_UTF8 = "The CSV must be UTF-8 encoded text."


@dataclass(frozen=True)
class CsvRows:
    """A parsed upload: each data row's line number (the header is line 1) and its given cells."""

    rows: list[tuple[int, dict[str, str]]]


def parse_csv(raw: bytes) -> CsvRows:
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
    except UnicodeDecodeError as exc:
        raise ParseError(MSG_CSV_NOT_UTF8) from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(cell.strip() for cell in header):
            raise ParseError(MSG_CSV_EMPTY)
        columns = [cell.strip() for cell in header]
        _check_header(columns)
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # a blank line
            if len(cells) > len(columns):
                raise ParseError(MSG_CSV_EXTRA_CELLS.format(line=reader.line_num))
            given = {
                column: cell.strip()
                for column, cell in zip(columns, cells, strict=False)
                if column in IMPORT_COLUMNS and cell.strip()
            }
            rows.append((reader.line_num, given))
    except csv.Error as exc:
        raise ParseError(MSG_CSV_MALFORMED.format(line=reader.line_num, reason=exc)) from exc
    return CsvRows(rows)


def _check_header(columns: list[str]) -> None:
    shown = ", ".join(repr(column[:40]) for column in columns[:20])
    unknown = [column for column in columns if column not in IMPORT_COLUMNS and column not in IGNORED_ON_IMPORT]
    if unknown:
        raise ParseError(MSG_CSV_UNKNOWN.format(unknown=", ".join(repr(column[:40]) for column in unknown[:10])))
    for required in REQUIRED_COLUMNS:
        instead = INSTEAD.get(required)
        if required not in columns and instead is None:
            raise ParseError(MSG_CSV_MISSING_COLUMN.format(required=required, columns=shown))
        if required not in columns and instead not in columns:
            raise ParseError(MSG_CSV_MISSING_EITHER.format(required=required, instead=instead, columns=shown))
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise ParseError(MSG_CSV_DUPLICATE.format(column=column))
        seen.add(column)


def _cell(document: dict[str, Any], column: str) -> Any:
    """A stored document's (or a shown resource's) value as a CSV cell."""
    value = document.get(column)
    if isinstance(value, datetime):
        return http_date(value)
    if column == "_id":
        return str(value)
    if column in LISTS and value is not None:
        return rank_history.as_text(value)  # a JSON list as a resource shows it
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def csv_chunks(documents: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The export, a chunk of ROWS_PER_CHUNK lines at a time: memory stays flat whatever the count."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    pending = 0
    for document in documents:
        writer.writerow([_cell(document, column) for column in EXPORT_COLUMNS])
        pending += 1
        if pending == ROWS_PER_CHUNK:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


class CsvRenderer(BaseRenderer):
    """``Accept: text/csv`` on a POST: the stored estimations as CSV rows (errors stay JSON)."""

    media_type = MEDIA_TYPE
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        documents = data.get("_items", [data]) if isinstance(data, dict) else data
        return "".join(csv_chunks(documents)).encode("utf-8")


class CsvParser(BaseParser):
    """text/csv: a product list for a bulk insert, within MAX_BODY_BYTES."""

    media_type = MEDIA_TYPE

    def parse(self, stream, media_type=None, parser_context=None):
        return parse_csv(read_limited(stream, limits.body_limit()))
