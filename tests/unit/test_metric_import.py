"""Reading historical metric values from CSV and xlsx files, and checking each row,
without a database: what the preview shows before anything is recorded."""

from __future__ import annotations

import io
import zipfile

import pytest

from engine.metrics import importing, periods
from engine.metrics.importing import FileRefused, check, read_table
from tests.helpers.sheets import csv_text, xlsx

KNOWN = {"AVAIL", "MTTR"}


def test_a_csv_is_read_with_its_line_numbers() -> None:
    content = csv_text(
        [["code", "period", "value"], ["AVAIL", "2026-01", "99.1"], [], ["MTTR", "2026-q1", "3.5"]]
    )
    rows = read_table(content, "history.csv")
    assert [(r.line, r.code, r.period, r.value) for r in rows] == [
        (2, "AVAIL", "2026-01", "99.1"),
        (4, "MTTR", "2026-q1", "3.5"),
    ]
    preview = check(rows, None, KNOWN, set())
    assert preview.ok
    assert [(r.code, r.period, r.value) for r in preview.rows] == [
        ("AVAIL", "2026-01", 99.1),
        ("MTTR", "2026-Q1", 3.5),
    ]


def test_chinese_headers_semicolons_and_gb18030_as_excel_saves_them() -> None:
    content = "统计周期;数值\r\n2026-02;98.5\r\n2026-03;1,234.5\r\n".encode("gb18030")
    rows = read_table(content, "历史.csv")
    preview = check(rows, "AVAIL", KNOWN, set())
    assert preview.ok
    assert [(r.code, r.period, r.value) for r in preview.rows] == [
        ("AVAIL", "2026-02", 98.5),
        ("AVAIL", "2026-03", 1234.5),
    ]


def test_an_xlsx_gives_numbers_and_dates_as_typed() -> None:
    from datetime import date

    content = xlsx(
        [["Code", "Period", "Value"], ["avail", "2026-03", 99.5], ["AVAIL", date(2026, 4, 30), 98]]
    )
    preview = check(read_table(content, "h.xlsx"), None, KNOWN, set())
    assert preview.ok, preview.errors
    assert [(r.code, r.period, r.value) for r in preview.rows] == [
        ("AVAIL", "2026-03", 99.5),
        ("AVAIL", "2026-04-30", 98.0),
    ]


def test_every_wrong_row_is_named_with_what_is_wrong() -> None:
    content = csv_text(
        [
            ["code", "period", "value"],
            ["AVAIL", "2026-01", "99.0"],
            ["NOPE", "2026-02", "99.0"],
            ["AVAIL", "2026-13", "99.0"],
            ["AVAIL", "2026-03", "ninety"],
            ["AVAIL", "2026-01", "98.0"],
            ["AVAIL", "2025-12", "97.0"],
            ["AVAIL", "2026-04", ""],
            ["AVAIL", "2026-05", "inf"],
        ]
    )
    preview = check(read_table(content, "h.csv"), None, KNOWN, {("AVAIL", "2025-12")})
    assert not preview.ok
    assert preview.errors == {
        "3": [importing.UNKNOWN_CODE],
        "4": [importing.BAD_PERIOD],
        "5": [importing.BAD_NUMBER],
        "6": [importing.DUPLICATE_IN_FILE],
        "7": [importing.ALREADY_RECORDED],
        "8": [importing.MISSING_VALUE],
        "9": [importing.BAD_NUMBER],
    }
    assert preview.rows[0].errors == ()


def test_without_a_code_column_the_rows_are_of_the_metric_imported_for() -> None:
    rows = read_table(csv_text([["period", "value"], ["2026-Q1", "3"]]), "h.csv")
    assert check(rows, None, KNOWN, set()).errors == {"2": [importing.MISSING_CODE]}
    assert check(rows, "MTTR", KNOWN, set()).ok


@pytest.mark.parametrize(
    ("content", "name", "problem"),
    [
        (b"", "h.csv", importing.EMPTY),
        (b"code,period,value\r\n", "h.csv", importing.EMPTY),
        (b"code,when,amount\r\nAVAIL,2026-01,1\r\n", "h.csv", importing.NO_COLUMNS),
        (b"PK\x03\x04 not a workbook", "h.xlsx", importing.UNREADABLE),
        (b"x" * (importing.MAX_BYTES + 1), "h.csv", importing.TOO_LARGE),
    ],
)
def test_a_file_that_is_no_table_is_refused_as_a_whole(
    content: bytes, name: str, problem: str
) -> None:
    with pytest.raises(FileRefused) as refused:
        read_table(content, name)
    assert refused.value.problem == problem


def test_rows_are_bounded() -> None:
    lines = [["period", "value"], *[["2026-01-01", "1"]] * (importing.MAX_ROWS + 1)]
    with pytest.raises(FileRefused) as refused:
        read_table(csv_text(lines), "h.csv")
    assert refused.value.problem == importing.TOO_MANY_ROWS


def test_an_xlsx_that_unpacks_to_too_much_is_refused_before_it_is_read() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b" " * (importing.MAX_UNPACKED + 1))
    assert len(out.getvalue()) < importing.MAX_BYTES
    with pytest.raises(FileRefused) as refused:
        read_table(out.getvalue(), "bomb.xlsx")
    assert refused.value.problem == importing.TOO_LARGE


@pytest.mark.parametrize(
    ("period", "starts"),
    [
        ("2026", "2026-01-01"),
        ("2026-H2", "2026-07-01"),
        ("2026-q4", "2026-10-01"),
        ("2026-11", "2026-11-01"),
        ("2026-W01", "2025-12-29"),
        ("2026-11-30", "2026-11-30"),
        ("2026-02-30", None),
        ("2026-Q5", None),
        ("November", None),
    ],
)
def test_periods_start_on_a_day(period: str, starts: str | None) -> None:
    found = periods.start_of(period)
    assert (found.isoformat() if found else None) == starts
