"""The attachment field kind: accepted by the form rules (and so by the modeler's lint),
its value schema filled in, files judged by their content."""

from __future__ import annotations

import zipfile
from io import BytesIO
from typing import Any

import pytest

from engine.attachments import kinds
from engine.attachments.fields import file_name
from engine.forms.library import form_of, form_problems
from tests.helpers import files


def form(field: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": {"zh-CN": "表", "en": "Form"},
        "schema": {
            "type": "object",
            "properties": {"doc": {"title": "文件", "x-title-en": "File", **field}},
            "additionalProperties": False,
        },
    }


def test_a_declared_file_field_is_a_usable_form_with_the_reference_as_its_value() -> None:
    document = form({"format": "binary", "x-attachment": {"types": ["pdf", "csv"]}})
    assert form_problems(document, {}) == []
    prop = form_of("f", document, {}).schema["properties"]["doc"]
    assert prop["type"] == "object"
    assert prop["required"] == ["sha256", "name", "size", "type"]
    assert prop["properties"]["type"]["enum"] == ["application/pdf", "text/csv"]


@pytest.mark.parametrize(
    ("field", "words"),
    [
        ({"x-attachment": {"types": ["exe"]}}, "types must list kinds"),
        ({"x-attachment": {"types": []}}, "types must list kinds"),
        ({"x-attachment": {"types": ["pdf"], "max_bytes": 0}}, "max_bytes"),
        ({"x-attachment": {"types": ["pdf"], "virus_scan": True}}, "unknown keys"),
        ({"type": "string", "x-attachment": {"types": ["pdf"]}}, "is an object"),
        ({"format": "date", "x-attachment": {"types": ["pdf"]}}, "format is 'binary'"),
        (
            {
                "type": "array",
                "maxItems": 2,
                "items": {"x-attachment": {"types": ["pdf"]}},
            },
            "must be a top-level field",
        ),
    ],
)
def test_a_file_field_the_engine_cannot_use_is_refused(field: dict[str, Any], words: str) -> None:
    problems = form_problems(form(field), {})
    assert any(words in p for p in problems), problems


def office(main_part: str) -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "[Content_Types].xml", f'<Types><Override ContentType="{main_part}"/></Types>'
        )
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "media_type"),
    [
        (files.PDF, kinds.PDF),
        (files.PNG, kinds.PNG),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", kinds.JPEG),
        (files.CSV, kinds.CSV),
        ("审核发现：备份未按期执行。\n".encode(), kinds.TEXT),
        (files.xlsx(), kinds.XLSX),
        (
            office(
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
            ),
            kinds.DOCX,
        ),
        (office("application/vnd.ms-excel.sheet.macroEnabled.main+xml"), None),
        (files.EXE, None),
        (b"\x00\x01binary", None),
        (b"PK\x03\x04 not a zip", None),
        (b"", None),
    ],
)
def test_a_file_is_judged_by_its_bytes(content: bytes, media_type: str | None) -> None:
    assert kinds.sniff(content) == media_type


def test_a_kept_name_has_no_folders_and_no_control_characters() -> None:
    assert file_name("../../etc/passwd", kinds.TEXT) == "passwd"
    assert file_name("C:\\docs\\a\x00b.pdf", kinds.PDF) == "ab.pdf"
    assert file_name("...", kinds.PDF) == "attachment.pdf"
    long = file_name("x" * 400 + ".xlsx", kinds.XLSX)
    assert len(long) == 255
    assert long.endswith(".xlsx")
