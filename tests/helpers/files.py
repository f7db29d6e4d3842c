"""Small files of each kind, made here rather than kept as binaries in the repository."""

from __future__ import annotations

import base64
import io
from typing import Any

from openpyxl import Workbook

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
CSV = b"code,value,period\nAVAIL,99.3,2026-11\nMTTR,3.5,2026-11\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48


def xlsx() -> bytes:
    book = Workbook()
    book.active.append(["code", "value"])
    book.active.append(["AVAIL", 99.3])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def upload(name: str, content: bytes) -> dict[str, Any]:
    """A file field's value in the JSON API."""
    return {"name": name, "content_base64": base64.b64encode(content).decode("ascii")}
