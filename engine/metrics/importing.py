"""Historical values of metrics from a CSV or xlsx file, read and checked before any is
recorded: the caller shows the preview, and records the rows only when none has an
error (all or nothing).

The file's first row names its columns: `code`, `period`, `value` (also 指标代码,
统计周期, 数值). Without a `code` column (or with an empty cell) a row is of the metric
the import is for. A CSV is UTF-8 (with or without BOM) or, as Excel in Chinese saves
it, GB18030. In an xlsx, the first sheet is read; a date cell is the day it names.

Bounded: the file's size, an xlsx's unpacked size (a zip bomb is refused before
openpyxl reads it) and the number of rows.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from engine.metrics import periods

MAX_BYTES = 2 * 1024 * 1024
MAX_UNPACKED = 32 * 1024 * 1024
MAX_ROWS = 5000

COLUMNS = {
    "code": "code",
    "指标代码": "code",
    "period": "period",
    "统计周期": "period",
    "value": "value",
    "数值": "value",
}

# What is wrong with the file as a whole (nothing is read from it).
TOO_LARGE = "too_large"
TOO_MANY_ROWS = "too_many_rows"
UNREADABLE = "unreadable"
NO_COLUMNS = "missing_columns"
EMPTY = "empty"

# What is wrong with one row.
UNKNOWN_CODE = "unknown_code"
MISSING_CODE = "missing_code"
BAD_NUMBER = "bad_number"
MISSING_VALUE = "missing_value"
BAD_PERIOD = "bad_period"
DUPLICATE_IN_FILE = "duplicate_in_file"
ALREADY_RECORDED = "already_recorded"


class FileRefused(ValueError):
    """The file cannot be read as a table of values at all."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True)
class RawRow:
    line: int  # as a spreadsheet numbers it: the header is line 1
    code: str
    period: str
    value: Any


@dataclass(frozen=True)
class Row:
    line: int
    code: str
    period: str
    value: float | None
    raw_value: str
    errors: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "code": self.code,
            "period": self.period,
            "value": self.value,
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class Preview:
    rows: tuple[Row, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.rows) and not any(r.errors for r in self.rows)

    @property
    def errors(self) -> dict[str, list[str]]:
        """The refusals by line (`"3": ["bad_number"]`), or by `file`."""
        found = {str(r.line): list(r.errors) for r in self.rows if r.errors}
        return {"file": list(self.problems), **found} if self.problems else found

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": list(self.problems),
            "rows": [r.as_dict() for r in self.rows],
        }


# ---- reading ----------------------------------------------------------------------------------


def read_table(content: bytes, filename: str) -> list[RawRow]:
    """The rows of a CSV or xlsx file (by its name, else by its first bytes)."""
    if len(content) > MAX_BYTES:
        raise FileRefused(TOO_LARGE)
    is_xlsx = filename.lower().endswith(".xlsx") or content[:4] == b"PK\x03\x04"
    cells = _xlsx_cells(content) if is_xlsx else _csv_cells(content)
    return _rows(cells)


def _csv_cells(content: bytes) -> Iterator[list[Any]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes nearly anything
        raise FileRefused(UNREADABLE)
    if "\x00" in text:
        raise FileRefused(UNREADABLE)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        yield from csv.reader(io.StringIO(text, newline=""), dialect)
    except csv.Error as exc:
        raise FileRefused(UNREADABLE) from exc


def _xlsx_cells(content: bytes) -> Iterator[list[Any]]:
    from openpyxl import load_workbook  # only an xlsx import pays for it

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED:
                raise FileRefused(TOO_LARGE)
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except FileRefused:
        raise
    except Exception as exc:  # not a zip, not a workbook: openpyxl raises many kinds
        raise FileRefused(UNREADABLE) from exc
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise FileRefused(EMPTY)
        for values in sheet.iter_rows(values_only=True):
            yield list(values)
    finally:
        book.close()


def _text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.date().isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _rows(cells: Iterable[list[Any]]) -> list[RawRow]:
    lines = iter(cells)
    header = next(lines, None)
    if header is None:
        raise FileRefused(EMPTY)
    columns = {COLUMNS.get(_text(h).lower()): i for i, h in enumerate(header)}
    columns.pop(None, None)
    if "period" not in columns or "value" not in columns:
        raise FileRefused(NO_COLUMNS)

    def cell(values: list[Any], name: str) -> Any:
        at = columns.get(name)
        return values[at] if at is not None and at < len(values) else None

    rows: list[RawRow] = []
    for number, values in enumerate(lines, start=2):
        if all(_text(v) == "" for v in values):
            continue  # blank lines, e.g. a spreadsheet's trailing ones
        if len(rows) == MAX_ROWS:
            raise FileRefused(TOO_MANY_ROWS)
        rows.append(
            RawRow(
                number,
                _text(cell(values, "code")),
                _text(cell(values, "period")),
                cell(values, "value"),
            )
        )
    if not rows:
        raise FileRefused(EMPTY)
    return rows


# ---- checking ---------------------------------------------------------------------------------


def number(value: Any) -> float | None:
    """A finite number from a cell or a text (`99.5`, `1,234.5`, `98%` is not one)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        found = float(value)
    else:
        text = str(value or "").strip().replace(",", "")
        if not text:
            return None
        try:
            found = float(text)
        except ValueError:
            return None
    return found if math.isfinite(found) else None


def check(
    rows: Sequence[RawRow],
    default_code: str | None,
    known: Collection[str],
    recorded: Collection[tuple[str, str]],
) -> Preview:
    """Each row with its parsed value and what is wrong with it: an unknown or missing
    code, a value that is no number, a period that is none of engine.metrics.periods'
    forms, a (code, period) twice in the file or already recorded."""
    seen: set[tuple[str, str]] = set()
    checked: list[Row] = []
    for raw in rows:
        errors: list[str] = []
        code = (raw.code or default_code or "").strip().upper()
        if not code:
            errors.append(MISSING_CODE)
        elif code not in known:
            errors.append(UNKNOWN_CODE)
        period = periods.normalized(raw.period)
        if not periods.is_period(period):
            errors.append(BAD_PERIOD)
        raw_value = _text(raw.value)
        value = number(raw.value)
        if not raw_value:
            errors.append(MISSING_VALUE)
        elif value is None:
            errors.append(BAD_NUMBER)
        if code and period:
            if (code, period) in seen:
                errors.append(DUPLICATE_IN_FILE)
            elif (code, period) in recorded:
                errors.append(ALREADY_RECORDED)
            seen.add((code, period))
        checked.append(Row(raw.line, code, period, value, raw_value, tuple(errors)))
    return Preview(tuple(checked))


def refused(problem: str) -> Preview:
    return Preview((), (problem,))


def raw_rows(rows: Iterable[Mapping[str, Any]]) -> list[RawRow]:
    """Rows a preview page sends back (`line`, `code`, `period`, `value`), read again
    as a file's, so that recording checks them afresh."""
    found: list[RawRow] = []
    for i, row in enumerate(rows):
        if len(found) == MAX_ROWS:
            raise FileRefused(TOO_MANY_ROWS)
        if not isinstance(row, Mapping):
            raise FileRefused(UNREADABLE)
        line = row.get("line")
        found.append(
            RawRow(
                line if isinstance(line, int) and not isinstance(line, bool) else i + 2,
                _text(row.get("code")),
                _text(row.get("period")),
                row.get("value"),
            )
        )
    if not found:
        raise FileRefused(EMPTY)
    return found
