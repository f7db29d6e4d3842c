"""The period report (周期报告) as a workbook: one sheet, its sections one under the
other as the page shows them, each a header row and its rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.styles import Font

Section = tuple[str, Sequence[str], Sequence[Sequence[Any]]]


def _cell(value: Any) -> Any:
    # a formula-looking text is shown, never evaluated
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def period_report_xlsx(
    out: IO[bytes], title: str, sections: Sequence[Section], as_of: datetime
) -> None:
    book = Workbook()
    book.remove(book.worksheets[0])
    sheet = book.create_sheet("report")
    bold = Font(bold=True)
    sheet.append([title])
    sheet.cell(row=1, column=1).font = Font(bold=True, size=14)
    sheet.append([as_of.strftime("%Y-%m-%d %H:%M UTC")])
    for heading, columns, rows in sections:
        sheet.append([])
        sheet.append([heading])
        sheet.cell(row=sheet.max_row, column=1).font = bold
        sheet.append([_cell(c) for c in columns])
        for cell in sheet[sheet.max_row]:
            cell.font = bold
        for row in rows:
            sheet.append([_cell(v) for v in row])
    sheet.column_dimensions["A"].width = 28
    book.save(out)
