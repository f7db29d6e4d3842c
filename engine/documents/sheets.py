"""Workbooks too large to build cell by cell in openpyxl: openpyxl lays out the package
(workbook, styles, each sheet with its header row, written by its write-only
workbook), and the body rows are written as SpreadsheetML into a temporary file per
sheet, then streamed into the sheet's part. Memory stays flat however many rows; the
rows cost a string each instead of a cell object each (openpyxl spends tens of
microseconds on every cell, which for a register of 10,000 records is most of a
minute on a small machine)."""

from __future__ import annotations

import io
import math
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.utils import get_column_letter

# Characters XML 1.0 does not allow in text.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_END_OF_DATA = b"</sheetData>"


def _text(value: str) -> str:
    if not value.isprintable():  # newlines are kept, other control characters dropped
        value = _INVALID.sub("", value)
    if "&" in value or "<" in value or ">" in value:
        value = value.translate(_ESCAPES)
    return value


class SheetSpool:
    """The body rows of one sheet, as SpreadsheetML, in a temporary file."""

    def __init__(self, title: str, headers: Sequence[str]) -> None:
        self.title = title
        self.headers = list(headers)
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by StreamedWorkbook
        self.rows = 1  # the header row, written by openpyxl
        self.letters = [get_column_letter(n) for n in range(1, len(self.headers) + 65)]

    def append(self, values: Sequence[Any]) -> None:
        self.rows += 1
        r = self.rows
        cells = []
        for letter, value in zip(self.letters, values, strict=False):
            kind = type(value)
            if kind is str:
                if value:
                    cells.append(
                        f'<c r="{letter}{r}" t="inlineStr"><is><t xml:space="preserve">'
                        f"{_text(value)}</t></is></c>"
                    )
            elif value is None:
                continue
            elif kind is bool:
                cells.append(f'<c r="{letter}{r}" t="b"><v>{int(value)}</v></c>')
            elif kind in (int, float) and math.isfinite(value):
                cells.append(f'<c r="{letter}{r}" t="n"><v>{value!r}</v></c>')
            else:
                cells.append(
                    f'<c r="{letter}{r}" t="inlineStr"><is><t xml:space="preserve">'
                    f"{_text(str(value))}</t></is></c>"
                )
        self.file.write(f'<row r="{r}">{"".join(cells)}</row>'.encode())


class StreamedWorkbook:
    def __init__(self) -> None:
        self.sheets: list[SheetSpool] = []

    def sheet(self, title: str, headers: Sequence[str]) -> SheetSpool:
        spool = SheetSpool(title, headers)
        self.sheets.append(spool)
        return spool

    def save(self, out: IO[bytes]) -> None:
        """The package as openpyxl writes it, each sheet's rows streamed into its part."""
        book = Workbook(write_only=True)
        for spool in self.sheets:
            book.create_sheet(spool.title).append(spool.headers)
        skeleton = io.BytesIO()
        book.save(skeleton)
        parts = {f"xl/worksheets/sheet{n}.xml": s for n, s in enumerate(self.sheets, start=1)}
        try:
            with (
                zipfile.ZipFile(io.BytesIO(skeleton.getvalue())) as source,
                zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
            ):
                for info in source.infolist():
                    content = source.read(info.filename)
                    rows = parts.get(info.filename)
                    if rows is None:
                        target.writestr(info, content)
                        continue
                    head, _, tail = content.partition(_END_OF_DATA)
                    with target.open(info.filename, "w", force_zip64=True) as part:
                        part.write(head)
                        rows.file.seek(0)
                        shutil.copyfileobj(rows.file, part, 1 << 20)
                        part.write(_END_OF_DATA + tail)
        finally:
            for spool in self.sheets:
                spool.file.close()
