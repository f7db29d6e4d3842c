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


def attachments_for(bpmn_id: str, username: str) -> dict[str, Any]:
    """The files the procedure's cycle attaches at task `bpmn_id`, as the API takes them:
    the audit finding at register_input, each owner's monitoring export at
    collect_data, the verification evidence at record_verification."""
    if bpmn_id == "register_input":
        return {"source_document": upload("审核发现.pdf", PDF)}
    if bpmn_id == "collect_data":
        export = CSV + f"exported_by,{username},2026-11\n".encode()
        return {"data_file": upload(f"monitoring-{username}.csv", export)}
    if bpmn_id == "record_verification":
        return {"evidence_file": upload("verification.xlsx", xlsx())}
    return {}


def attaching(door: Any, bpmn_of: Any) -> Any:
    """`door` completing each task with the files the cycle attaches to it;
    `bpmn_of(username, task_id)` names the task's element."""
    plain = door.complete

    def complete(username: str, task_id: str, data: dict[str, Any]) -> None:
        plain(username, task_id, {**data, **attachments_for(bpmn_of(username, task_id), username)})

    door.complete = complete
    return door
