"""Checking an evidence pack offline: no server, no database, only the zip.

In order, stopping at the first problem (which is named):
1. the zip itself, within bounds: its size, its number of entries, the bytes they
   inflate to (a zip bomb is refused before it is inflated, and an entry that inflates
   beyond what it declares is cut off), no two entries of one name, no path that
   climbs out (`..`, absolute);
2. manifest.json: every other file listed, with its sha256 and size, and nothing listed
   that is not there;
3. history.json: the hash chain recomputed event by event (each event's hash over its
   predecessor's and its own canonical content), its head the manifest's and the
   anchor's;
4. every file an event records (its attachment fields' references) present in the
   pack, hashing to the sha256 the event recorded.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from engine.attachments.fields import references
from engine.audit.chain import GENESIS_HASH, chain_hash
from engine.evidence.pack import ANCHORS, HISTORY_JSON, MANIFEST, PACK_FORMAT

MAX_PACK_BYTES = 1024 * 1024 * 1024
MAX_ENTRIES = 10_000
MAX_INFLATED_BYTES = 2 * 1024 * 1024 * 1024
# The files read as JSON are kept in memory; every other file is only hashed, as it
# streams out of the zip.
_READ_WHOLE = frozenset({MANIFEST, HISTORY_JSON, ANCHORS})
_CHUNK = 1024 * 1024
_EVENT_KEYS = ("instance_id", "seq", "type", "at", "actor", "task_id", "bpmn_id", "payload")


@dataclass(frozen=True)
class Bounds:
    pack_bytes: int = MAX_PACK_BYTES
    entries: int = MAX_ENTRIES
    inflated_bytes: int = MAX_INFLATED_BYTES


@dataclass(frozen=True)
class Entry:
    sha256: str
    size: int
    content: bytes | None  # kept for the files read as JSON


@dataclass
class PackCheck:
    ok: bool
    problem: str | None  # the first problem found, named
    checked: list[str] = field(default_factory=list)  # what held, in order

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problem": self.problem, "checked": self.checked}


class PackProblem(Exception):
    pass


def verify_pack(path: Path | str | BinaryIO, bounds: Bounds | None = None) -> PackCheck:
    """Check the evidence pack at `path` (a file name or an open binary file)."""
    bounds = bounds or Bounds()
    checked: list[str] = []
    try:
        files = _read_zip(path, bounds)
        checked.append(f"the zip: {len(files)} entries within bounds")
        manifest = _manifest(files)
        checked.append(f"manifest.json: {len(manifest['files'])} files hash as listed")
        events = _chain(files, manifest)
        checked.append(f"history.json: the chain of {len(events)} events holds")
        count = _attachments(files, events)
        checked.append(f"attachments: {count} files hash as their events recorded")
    except PackProblem as exc:
        return PackCheck(False, str(exc), checked)
    return PackCheck(True, None, checked)


def _read_zip(source: Path | str | BinaryIO, bounds: Bounds) -> dict[str, Entry]:
    try:
        if isinstance(source, str | Path):
            size = Path(source).stat().st_size
            if size > bounds.pack_bytes:
                raise PackProblem(f"the pack is larger than {bounds.pack_bytes} bytes")
            archive = zipfile.ZipFile(source)
        else:
            archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise PackProblem(f"not a zip file ({exc})") from exc
    with archive:
        members = archive.infolist()
        if len(members) > bounds.entries:
            raise PackProblem(f"the pack has more than {bounds.entries} entries")
        declared = sum(m.file_size for m in members)
        if declared > bounds.inflated_bytes:
            raise PackProblem(f"the pack inflates to more than {bounds.inflated_bytes} bytes")
        files: dict[str, Entry] = {}
        for member in members:
            name = member.filename
            if member.is_dir():
                continue
            if name.startswith("/") or ".." in name.split("/") or "\\" in name:
                raise PackProblem(f"{name}: a path outside the pack")
            if name in files:
                raise PackProblem(f"{name}: in the pack twice")
            files[name] = _inflate(archive, member)
    return files


def _inflate(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> Entry:
    """The entry's hash and size (and bytes, for the files read as JSON), never reading
    more than it declares (what inflates beyond is a lie)."""
    chunks: list[bytes] = []
    digest = hashlib.sha256()
    keep = member.filename in _READ_WHOLE
    read = 0
    try:
        with archive.open(member) as stream:
            while chunk := stream.read(min(_CHUNK, member.file_size - read + 1)):
                read += len(chunk)
                if read > member.file_size:
                    raise PackProblem(f"{member.filename}: inflates beyond its declared size")
                digest.update(chunk)
                if keep:
                    chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise PackProblem(f"{member.filename}: cannot be read ({exc})") from exc
    return Entry(digest.hexdigest(), read, b"".join(chunks) if keep else None)


def _json_of(files: Mapping[str, Entry], name: str) -> Any:
    entry = files.get(name)
    if entry is None or entry.content is None:
        raise PackProblem(f"{name}: not in the pack")
    try:
        return json.loads(entry.content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise PackProblem(f"{name}: not JSON ({exc})") from exc


def _manifest(files: Mapping[str, Entry]) -> dict[str, Any]:
    manifest = _json_of(files, MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
        raise PackProblem(f"{MANIFEST}: not the manifest of an evidence pack ({PACK_FORMAT})")
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise PackProblem(f"{MANIFEST}: lists no files")
    for name in sorted(files):
        if name == MANIFEST:
            continue
        entry = listed.get(name)
        if not isinstance(entry, dict):
            raise PackProblem(f"{name}: in the pack but not in the manifest")
        if files[name].sha256 != entry.get("sha256"):
            raise PackProblem(f"{name}: its sha256 is not the manifest's (the file was changed)")
        if files[name].size != entry.get("size"):
            raise PackProblem(f"{name}: its size is not the manifest's")
    for name in sorted(listed):
        if name not in files:
            raise PackProblem(f"{name}: in the manifest but not in the pack")
    return manifest


def _chain(files: Mapping[str, Entry], manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    events = _json_of(files, HISTORY_JSON)
    if not isinstance(events, list):
        raise PackProblem(f"{HISTORY_JSON}: not a list of events")
    prev = GENESIS_HASH
    for expected, event in enumerate(events, start=1):
        if not isinstance(event, dict) or event.get("seq") != expected:
            raise PackProblem(f"{HISTORY_JSON}: event {expected} is missing")
        if event.get("readable") is False:
            raise PackProblem(f"{HISTORY_JSON}: event {expected} cannot be read")
        if event.get("prev_hash") != prev:
            raise PackProblem(f"{HISTORY_JSON}: event {expected} does not follow its predecessor")
        body = {key: event.get(key) for key in _EVENT_KEYS}
        if chain_hash(prev, body) != event.get("hash"):
            raise PackProblem(
                f"{HISTORY_JSON}: event {expected} ({event.get('type')}) was altered: "
                "its hash does not match its content"
            )
        prev = str(event["hash"])
    chain = manifest.get("chain") or {}
    head_seq = len(events)
    if chain.get("head_seq") != head_seq or chain.get("head_hash") != (prev if events else None):
        raise PackProblem(f"{HISTORY_JSON}: the chain ends elsewhere than the manifest says")
    anchors = _json_of(files, ANCHORS)
    heads = anchors.get("heads") if isinstance(anchors, dict) else None
    for head in heads if isinstance(heads, list) else []:
        if not isinstance(head, dict) or not any(
            e["seq"] == head.get("seq") and e["hash"] == head.get("hash") for e in events
        ):
            raise PackProblem(f"{ANCHORS}: an anchored head is not in the chain")
    return events


def _attachments(files: Mapping[str, Entry], events: list[dict[str, Any]]) -> int:
    manifest = _json_of(files, MANIFEST)
    paths = {
        a.get("sha256"): a.get("path")
        for a in manifest.get("attachments") or []
        if isinstance(a, dict)
    }
    count = 0
    for event in events:
        payload = event.get("payload")
        if event.get("type") != "task_completed" or not isinstance(payload, dict):
            continue
        for name, reference in references(payload):
            sha256 = reference["sha256"]
            path = paths.get(sha256)
            where = f"event {event['seq']}: the attachment {reference.get('name')!r} of {name}"
            if not isinstance(path, str) or path not in files:
                raise PackProblem(f"{where} (sha256 {sha256}) is not in the pack")
            if files[path].sha256 != sha256:
                raise PackProblem(f"{where} ({path}) does not hash to what the event recorded")
            count += 1
    return count
