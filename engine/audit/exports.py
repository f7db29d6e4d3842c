"""History exports: every event with its hashes, as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from engine.audit.chain import canonical_json

EXPORT_COLUMNS = (
    "instance_id",
    "seq",
    "type",
    "actor",
    "at",
    "task_id",
    "bpmn_id",
    "payload",
    "prev_hash",
    "hash",
    "readable",
)


def _cell(row: dict[str, Any], column: str) -> Any:
    if column != "payload":
        return row.get(column)
    if not row.get("readable", True):
        return row.get("stored")  # what the database holds, as it holds it
    return canonical_json(row[column])


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    """History as JSON or CSV (payload as canonical JSON, so hashes can be recomputed;
    an event that cannot be read is marked, with the text the database holds)."""
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row, c) for c in EXPORT_COLUMNS])
    return buffer.getvalue()
