"""The evidence pack of a process record: one zip holding everything an auditor needs
to judge the record and to check it without trusting the server.

- `record/record.zh-CN.html`, `record/record.en.html`, `record/record.xlsx`: the
  record as the company files it (engine.documents.record);
- `history.json` (the events exactly as the API's history gives them), `history.csv`;
- `audit/verify.json`, `audit/replay.json`: verify (chain, stored state, attached
  files) and replay, as they stood when the pack was made;
- `audit/anchors.json`: the chain's head, in the anchors file format
  (`csi verify-audit --anchors` checks it against a database);
- `diagrams/<process>-v<version>.bpmn` and `.svg`: every version the instance ran
  on (the one it started on, those it called, those it was migrated to);
- `attachments/<sha256>/<name>`: every file its events record;
- `manifest.json`: the sha256 and size of every other file, the attachments with the
  events that record them, the chain's head, and the map from the requirements of
  ISO/IEC 20000-1 §10.1–10.2 and ITSS (the pack's `evidence` section) to the files,
  events and fields that satisfy them.

Deterministic: entries sorted, fixed times and modes, nothing read from the clock,
so the same history gives the same bytes and the pack's own sha256 can be quoted.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.attachments import audit as attachment_audit
from engine.attachments.store import AttachmentStore
from engine.audit import exports, replay
from engine.audit.anchors import ANCHORS_FORMAT
from engine.documents.record import record_document, record_html, record_xlsx
from engine.errors import NotFound
from engine.evidence.diagram_svg import diagram_svg
from engine.pack import Pack
from engine.persistence.models import Instance, ProcessDefinition, Record
from engine.queries.instances import event_dicts

PACK_FORMAT = "csi-evidence-pack-1"
MANIFEST = "manifest.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
VERIFY = "audit/verify.json"
REPLAY = "audit/replay.json"
ANCHORS = "audit/anchors.json"
README = "README.txt"
RECORD_FILES = ("record/record.zh-CN.html", "record/record.en.html", "record/record.xlsx")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# The events that pin the definitions an instance runs on.
_PINNING = ("instance_started", "instance_migrated")

_README = """\
Evidence pack / 证据包 ({number})

manifest.json lists every file of this pack with its sha256, and maps the requirements
of ISO/IEC 20000-1 clause 10.1-10.2 and ITSS to the files, events and fields that
satisfy them. history.json holds every event of the record's hash chain.

Check it offline, without the server or the database:

    csi verify-pack {file_name}

It recomputes every file's sha256 against the manifest, the hash chain from
history.json, and each attached file against the sha256 its event recorded.
The chain's head ({head_seq}, {head_hash}) can be compared with an anchor kept
outside the database.

manifest.json 列出本证据包内每个文件的 sha256，并把 ISO/IEC 20000-1 第 10.1–10.2 条和
ITSS 的要求对应到满足它们的文件、事件和字段。可离线用 `csi verify-pack` 校验。
"""


@dataclass(frozen=True)
class EvidencePack:
    name: str  # the file name to save it as
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def _json(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _definitions(
    session: Session, instance: Instance, rows: list[dict[str, Any]]
) -> list[ProcessDefinition]:
    """Every definition the instance ran on, oldest first: those its start and each
    migration pinned (its own and those it calls), then its row's (which agree)."""
    ids: list[int] = []
    for row in rows:
        payload = row.get("payload")
        if row["type"] not in _PINNING or not isinstance(payload, Mapping):
            continue
        pinned = payload.get("definition")
        if isinstance(pinned, Mapping) and isinstance(pinned.get("id"), int):
            ids.append(pinned["id"])
        called = payload.get("called")
        if isinstance(called, Mapping):
            ids += [v for _, v in sorted(called.items()) if isinstance(v, int)]
    ids += [instance.definition_id, *(instance.called_definitions or {}).values()]
    found: list[ProcessDefinition] = []
    for definition_id in dict.fromkeys(ids):
        definition = session.get(ProcessDefinition, definition_id)
        if definition is not None:
            found.append(definition)
    return sorted(found, key=lambda d: (d.process_id, d.version))


def _attachment_path(reference: Mapping[str, Any]) -> str:
    return f"attachments/{reference['sha256']}/{reference['name']}"


def evidence_pack(
    session: Session, pack: Pack, store: AttachmentStore | None, instance_id: int
) -> EvidencePack:
    """The evidence pack of instance `instance_id`. The caller decides who may have it
    (engine.access: those who may read the instance)."""
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"no instance {instance_id}")
    number = session.scalar(select(Record.number).where(Record.instance_id == instance_id))
    rows = event_dicts(session, instance_id)
    files: dict[str, bytes] = {}

    if number is not None:
        document = record_document(session, pack, instance_id)
        files[RECORD_FILES[0]] = record_html(document, "zh-CN").encode("utf-8")
        files[RECORD_FILES[1]] = record_html(document, "en").encode("utf-8")
        files[RECORD_FILES[2]] = record_xlsx(document, "zh-CN")

    files[HISTORY_JSON] = exports.render(rows, "json").encode("utf-8")
    files[HISTORY_CSV] = exports.render(rows, "csv").encode("utf-8")
    verification = attachment_audit.verify_instance(session, store, instance_id)
    files[VERIFY] = _json(verification.as_dict())
    files[REPLAY] = _json(replay.replay(session, pack, instance_id).as_dict())
    head = {
        "instance_id": instance_id,
        "seq": rows[-1]["seq"] if rows else 0,
        "hash": rows[-1]["hash"] if rows else None,
    }
    files[ANCHORS] = _json(
        {
            "format": ANCHORS_FORMAT,
            "taken_at": rows[-1]["at"] if rows else None,
            "heads": [head] if rows else [],
        }
    )

    diagrams = []
    for definition in _definitions(session, instance, rows):
        base = f"diagrams/{definition.process_id}-v{definition.version}"
        xml = definition.bpmn_xml.encode("utf-8")
        files[f"{base}.bpmn"] = xml
        files[f"{base}.svg"] = diagram_svg(xml).encode("utf-8")
        diagrams.append(
            {
                "process_id": definition.process_id,
                "version": definition.version,
                "content_hash": definition.content_hash,
                "bpmn": f"{base}.bpmn",
                "svg": f"{base}.svg",
            }
        )

    attachments: dict[str, dict[str, Any]] = {}
    missing: list[dict[str, Any]] = []
    for item in attachment_audit.attached(session, instance_id):
        entry = attachments.get(item.sha256)
        if entry is None:
            content = None
            if store is not None and store.problem(item.sha256) is None:
                content = store.read(item.sha256)
            if content is None:
                missing.append({"seq": item.seq, "field": item.field, **item.reference})
                continue
            path = _attachment_path(item.reference)
            files[path] = content
            entry = attachments[item.sha256] = {**item.reference, "path": path, "events": []}
        entry["events"].append({"seq": item.seq, "task": item.bpmn_id, "field": item.field})

    title = f"{number or f'instance-{instance_id}'}-evidence"
    files[README] = _README.format(
        number=number or f"instance {instance_id}",
        file_name=f"{title}.zip",
        head_seq=f"event {head['seq']}",
        head_hash=head["hash"],
    ).encode("utf-8")

    groups = {
        "record": [p for p in RECORD_FILES if p in files],
        "history": [HISTORY_JSON, HISTORY_CSV],
        "verify": [VERIFY],
        "replay": [REPLAY],
        "anchors": [ANCHORS],
        "diagrams": sorted(p for p in files if p.startswith("diagrams/")),
    }
    manifest = {
        "format": PACK_FORMAT,
        "record_number": number,
        "instance_id": instance_id,
        "process_id": instance.process_id,
        "status": instance.status,
        "chain": {"events": len(rows), "head_seq": head["seq"], "head_hash": head["hash"]},
        "verified": verification.ok,
        "diagrams": diagrams,
        "attachments": [attachments[k] for k in sorted(attachments)],
        "missing_attachments": missing,
        "requirements": _requirements(pack, rows, groups, attachments),
        "files": {
            path: {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
            for path, content in sorted(files.items())
        },
        "check": "csi verify-pack <this file>",
    }
    files[MANIFEST] = _json(manifest)
    return EvidencePack(f"{title}.zip", _zip(files))


def _requirements(
    pack: Pack,
    rows: list[dict[str, Any]],
    groups: Mapping[str, list[str]],
    attachments: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """The pack's map of requirements (its manifest's `evidence.requirements`), each
    with what of this instance satisfies it: files, and events of history.json with
    the fields that hold the evidence."""
    config = pack.manifest.get("evidence") or {}
    found = []
    for requirement in config.get("requirements") or []:
        if not isinstance(requirement, Mapping):
            continue
        evidence: list[dict[str, Any]] = []
        for item in requirement.get("evidence") or []:
            if not isinstance(item, Mapping):
                continue
            if isinstance(item.get("file"), str):
                evidence += [{"file": path} for path in groups.get(item["file"], [])]
                continue
            task = item.get("task")
            if not isinstance(task, str):
                continue
            names = [str(f) for f in item.get("fields") or []]
            events = [
                row
                for row in rows
                if row["bpmn_id"] == task and row["type"] in ("task_completed", "service_completed")
            ]
            if not events:
                continue
            evidence.append(
                {
                    "file": HISTORY_JSON,
                    "task": task,
                    "events": [row["seq"] for row in events],
                    "fields": [f"payload.data.{n}" for n in names]
                    if events[0]["type"] == "task_completed"
                    else ["payload.result"],
                }
            )
            for sha256, entry in sorted(attachments.items()):
                if any(e["task"] == task and e["field"] in names for e in entry["events"]):
                    evidence.append({"file": entry["path"], "task": task, "sha256": sha256})
        found.append(
            {
                "id": requirement.get("id"),
                "standard": requirement.get("standard"),
                "clause": requirement.get("clause"),
                "title": requirement.get("title"),
                "evidence": evidence,
                "satisfied": bool(evidence),
            }
        )
    return found


def _zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            entry = zipfile.ZipInfo(path, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            entry.create_system = 3  # the same bytes whatever system made it
            archive.writestr(entry, files[path])
    return buffer.getvalue()
