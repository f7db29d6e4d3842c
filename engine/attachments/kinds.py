"""What a file is, decided by its bytes and never by its name.

A form allows kinds of file (`x-attachment.types`); each kind is one or more media
types, recognised by magic bytes: PDF, PNG, JPEG, text (UTF-8, no control characters
but tab, CR, LF and form feed; CSV when its first lines split into the same number of
comma-, semicolon- or tab-separated columns), and the Office Open XML workbook and
document (a zip whose `[Content_Types].xml` declares the workbook's or the
document's main part). Anything else is refused, whatever its name says.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
CSV = "text/csv"
TEXT = "text/plain"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# The kinds a form may name, and the media types each admits.
KINDS: dict[str, frozenset[str]] = {
    "pdf": frozenset({PDF}),
    "png": frozenset({PNG}),
    "jpeg": frozenset({JPEG}),
    "csv": frozenset({CSV}),
    "text": frozenset({TEXT, CSV}),
    "xlsx": frozenset({XLSX}),
    "docx": frozenset({DOCX}),
}
MEDIA_TYPES = frozenset().union(*KINDS.values())
EXTENSIONS = {
    PDF: "pdf",
    PNG: "png",
    JPEG: "jpg",
    CSV: "csv",
    TEXT: "txt",
    XLSX: "xlsx",
    DOCX: "docx",
}

# A zip is opened only to read its content types: bounded, so a crafted archive costs
# nothing (its central directory is read, no member but that one is inflated).
_ZIP_MAX_MEMBERS = 10_000
_CONTENT_TYPES_MAX = 256 * 1024
_MAIN_PARTS = {
    XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
}
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_CSV_SAMPLE_LINES = 20


def sniff(content: bytes) -> str | None:
    """The media type of `content`, or None when it is none this product accepts."""
    if content.startswith(b"%PDF-"):
        return PDF
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if content.startswith(b"\xff\xd8\xff"):
        return JPEG
    if content.startswith(b"PK\x03\x04"):
        return _office(content)
    return _text(content)


def _office(content: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.infolist()
            if len(members) > _ZIP_MAX_MEMBERS:
                return None
            entry = next((m for m in members if m.filename == "[Content_Types].xml"), None)
            if entry is None or entry.file_size > _CONTENT_TYPES_MAX:
                return None
            with archive.open(entry) as stream:
                declared = stream.read(_CONTENT_TYPES_MAX + 1).decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None
    for media_type, main_part in _MAIN_PARTS.items():
        if main_part in declared:
            return media_type
    return None


def _text(content: bytes) -> str | None:
    if not content:
        return None
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if _TEXT_CONTROL.search(text):
        return None
    return CSV if _is_csv(text) else TEXT


def _is_csv(text: str) -> bool:
    lines = [line for line in text.splitlines()[:_CSV_SAMPLE_LINES] if line.strip()]
    if len(lines) < 2:
        return False
    for delimiter in (",", ";", "\t"):
        try:
            widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        except csv.Error:
            continue
        if len(widths) == 1 and widths.pop() > 1:
            return True
    return False
