"""verify-pack refuses what is no evidence pack at all, naming why, before trusting any
of it: no database, no server, only the zip."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from engine.audit.chain import GENESIS_HASH, chain_hash
from engine.evidence.verify_pack import verify_pack


def zipped(entries: list[tuple[str, bytes]]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries:
            archive.writestr(name, content)
    buffer.seek(0)
    return buffer


def a_pack(events: int = 2) -> dict[str, bytes]:
    """The smallest pack that holds: a chain of `events`, its anchor, a manifest."""
    history, prev = [], GENESIS_HASH
    for seq in range(1, events + 1):
        body = {
            "instance_id": 1,
            "seq": seq,
            "type": "note",
            "at": "2026-12-01T00:00:00.000000+00:00",
            "actor": "owner",
            "task_id": None,
            "bpmn_id": None,
            "payload": {"n": seq},
        }
        digest = chain_hash(prev, body)
        history.append({**body, "prev_hash": prev, "hash": digest, "readable": True})
        prev = digest
    files = {
        "history.json": json.dumps(history).encode(),
        "audit/anchors.json": json.dumps(
            {"format": "csi-anchors-1", "heads": [{"instance_id": 1, "seq": events, "hash": prev}]}
        ).encode(),
    }
    manifest = {
        "format": "csi-evidence-pack-1",
        "chain": {"events": events, "head_seq": events, "head_hash": prev},
        "attachments": [],
        "files": {
            n: {"sha256": hashlib.sha256(c).hexdigest(), "size": len(c)} for n, c in files.items()
        },
    }
    return {**files, "manifest.json": json.dumps(manifest).encode()}


def test_a_minimal_pack_holds() -> None:
    result = verify_pack(zipped(list(a_pack().items())))
    assert result.ok, result.problem


def test_a_path_that_climbs_out_is_refused() -> None:
    result = verify_pack(zipped([*a_pack().items(), ("../evil.txt", b"x")]))
    assert result.problem == "../evil.txt: a path outside the pack"


def test_an_entry_twice_is_refused() -> None:
    pack = a_pack()
    with pytest.warns(UserWarning, match="Duplicate name"):  # the forger's zip says so too
        forged = zipped([*pack.items(), ("history.json", pack["history.json"])])
    result = verify_pack(forged)
    assert result.problem == "history.json: in the pack twice"


def test_a_listed_file_that_is_not_there_is_named() -> None:
    pack = a_pack()
    del pack["audit/anchors.json"]
    assert verify_pack(zipped(list(pack.items()))).problem == (
        "audit/anchors.json: in the manifest but not in the pack"
    )


def test_a_pack_without_a_manifest_is_no_pack() -> None:
    pack = a_pack()
    del pack["manifest.json"]
    assert verify_pack(zipped(list(pack.items()))).problem == "manifest.json: not in the pack"


def test_a_dropped_newest_event_is_caught_by_the_head() -> None:
    pack = a_pack(3)
    history = json.loads(pack["history.json"])[:-1]
    pack["history.json"] = json.dumps(history).encode()
    manifest = json.loads(pack["manifest.json"])
    manifest["files"]["history.json"] = {
        "sha256": hashlib.sha256(pack["history.json"]).hexdigest(),
        "size": len(pack["history.json"]),
    }
    pack["manifest.json"] = json.dumps(manifest).encode()
    problem = verify_pack(zipped(list(pack.items()))).problem
    assert problem == "history.json: the chain ends elsewhere than the manifest says"
