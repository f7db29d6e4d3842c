"""The evidence pack: one deterministic zip per improvement, checked offline by
`csi verify-pack` (no server, no database), refused to those who may not read it."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from engine.attachments.store import Limits
from engine.evidence.verify_pack import Bounds, verify_pack
from engine.persistence.database import Database
from tests.cycle import Driver
from tests.helpers import files, html
from tests.helpers.doors import ApiDoor
from tests.helpers.pages import client_for
from web.cli import main


@pytest.fixture
def app(db: Database, tmp_path: Path):  # type: ignore[no-untyped-def]
    from web import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE": db,
            "DATABASE_URL": db.url,
            "WTF_CSRF_ENABLED": True,
            "ATTACHMENTS_DIR": str(tmp_path / "attachments"),
            "ATTACHMENT_LIMITS": Limits(),
        }
    )
    app.instance_path = str(tmp_path)
    return app


@pytest.fixture
def api(client: FlaskClient, app: Any) -> ApiDoor:
    door = ApiDoor(client, app)

    def bpmn_of(username: str, task_id: str) -> str:
        task = client.get(f"/api/v1/tasks/{task_id}", headers=door.headers(username))
        return str(task.json["bpmn_id"])

    return files.attaching(door, bpmn_of)  # type: ignore[no-any-return]


@pytest.fixture
def closed(api: ApiDoor) -> tuple[int, str]:
    """A whole cycle with its files attached: the instance and its record number."""
    result = Driver(api).run()
    assert result.final["status"] == "completed"
    return result.instance_id, str(result.final["record_number"])


def pack_of(api: ApiDoor, number: str, who: str = "auditor") -> bytes:
    response = api.client.get(f"/api/v1/improvements/{number}/pack", headers=api.headers(who))
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/zip"
    assert (
        response.headers["Content-Disposition"] == f'attachment; filename="{number}-evidence.zip"'
    )
    assert response.headers["X-Pack-SHA256"] == hashlib.sha256(response.data).hexdigest()
    return response.data


def unpacked(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def repacked(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def with_manifest_updated(entries: dict[str, bytes], *changed: str) -> dict[str, bytes]:
    """The pack as a forger would leave it: the manifest's hashes made to fit."""
    manifest = json.loads(entries["manifest.json"])
    for name in changed:
        manifest["files"][name] = {
            "sha256": hashlib.sha256(entries[name]).hexdigest(),
            "size": len(entries[name]),
        }
    return {**entries, "manifest.json": json.dumps(manifest).encode()}


def checked(tmp_path: Path, content: bytes, name: str = "pack.zip") -> Any:
    path = tmp_path / name
    path.write_bytes(content)
    return CliRunner().invoke(main, ["verify-pack", str(path)])


def test_the_pack_holds_the_evidence_and_every_file_hashes_as_the_manifest_says(
    api: ApiDoor, closed: tuple[int, str]
) -> None:
    iid, number = closed
    entries = unpacked(pack_of(api, number))
    manifest = json.loads(entries["manifest.json"])
    assert set(manifest["files"]) == set(entries) - {"manifest.json"}
    for name, listed in manifest["files"].items():
        assert hashlib.sha256(entries[name]).hexdigest() == listed["sha256"], name
        assert len(entries[name]) == listed["size"]
    assert {
        "record/record.zh-CN.html",
        "record/record.en.html",
        "record/record.xlsx",
        "history.json",
        "history.csv",
        "audit/verify.json",
        "audit/replay.json",
        "audit/anchors.json",
        "diagrams/service_improvement-v1.bpmn",
        "diagrams/service_improvement-v1.svg",
        "diagrams/change_management-v1.bpmn",
        "diagrams/change_management-v1.svg",
    } <= set(entries)
    assert "YNTD-ITSS-0409" in entries["record/record.zh-CN.html"].decode()
    assert entries["diagrams/service_improvement-v1.svg"].startswith(b"<?xml")

    # history.json: the events exactly as the API's history gives them.
    history = api.client.get(f"/api/v1/instances/{iid}/history", headers=api.headers("auditor"))
    assert json.loads(entries["history.json"]) == history.json
    assert json.loads(entries["audit/verify.json"])["ok"] is True
    assert json.loads(entries["audit/replay.json"])["ok"] is True
    anchors = json.loads(entries["audit/anchors.json"])
    assert anchors["heads"] == [
        {"instance_id": iid, "seq": history.json[-1]["seq"], "hash": history.json[-1]["hash"]}
    ]

    # Every file the events record is in the pack, as attached.
    kinds = sorted(a["type"] for a in manifest["attachments"])
    assert kinds.count("text/csv") == 2  # each process owner's export, deduplicated by hash
    assert "application/pdf" in kinds
    for attached in manifest["attachments"]:
        assert hashlib.sha256(entries[attached["path"]]).hexdigest() == attached["sha256"]
        assert attached["events"]
    assert manifest["missing_attachments"] == []

    requirements = {r["id"]: r for r in manifest["requirements"]}
    effectiveness = requirements["iso20000-10.1-effectiveness"]
    assert effectiveness["clause"] == "10.1 d)"
    files_of = {e["file"] for e in effectiveness["evidence"]}
    assert any(f.endswith("/verification.xlsx") for f in files_of)
    assert "record/record.zh-CN.html" in files_of
    assert all(r["satisfied"] for r in manifest["requirements"])


def test_two_exports_of_the_same_improvement_are_the_same_bytes(
    api: ApiDoor, closed: tuple[int, str]
) -> None:
    _, number = closed
    first, second = pack_of(api, number), pack_of(api, number, who="owner")
    assert first == second
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names == sorted(names)


def test_verify_pack_holds_and_names_what_was_changed(
    api: ApiDoor, closed: tuple[int, str], tmp_path: Path
) -> None:
    _, number = closed
    content = pack_of(api, number)
    result = checked(tmp_path, content)
    assert result.exit_code == 0, result.output
    assert "the evidence pack holds" in result.output
    assert hashlib.sha256(content).hexdigest() in result.output

    entries = unpacked(content)
    # One file edited: its hash no longer the manifest's.
    record = entries["record/record.zh-CN.html"].replace(b"YNTD-ITSS-0409", b"YNTD-ITSS-0410")
    result = checked(tmp_path, repacked({**entries, "record/record.zh-CN.html": record}))
    assert result.exit_code == 1
    assert "record/record.zh-CN.html" in result.output
    assert "sha256" in result.output

    # One event edited, the manifest forged to fit: the chain names the event.
    events = json.loads(entries["history.json"])
    victim = next(e for e in events if e["type"] == "task_completed")
    victim["actor"] = "mallory"
    forged = {**entries, "history.json": json.dumps(events, ensure_ascii=False).encode()}
    result = checked(tmp_path, repacked(with_manifest_updated(forged, "history.json")))
    assert result.exit_code == 1
    assert f"event {victim['seq']}" in result.output
    assert "altered" in result.output

    # An attachment swapped, manifest forged: its event names it.
    manifest = json.loads(entries["manifest.json"])
    attached = next(a for a in manifest["attachments"] if a["type"] == "application/pdf")
    swapped = {**entries, attached["path"]: files.PDF.replace(b"Catalog", b"Katalog")}
    result = checked(tmp_path, repacked(with_manifest_updated(swapped, attached["path"])))
    assert result.exit_code == 1
    assert f"event {attached['events'][0]['seq']}" in result.output
    assert attached["name"] in result.output

    # A file added that the manifest does not list.
    result = checked(tmp_path, repacked({**entries, "extra.txt": b"x"}))
    assert result.exit_code == 1
    assert "extra.txt" in result.output


def test_verify_pack_stays_within_its_bounds(
    api: ApiDoor, closed: tuple[int, str], tmp_path: Path
) -> None:
    _, number = closed
    path = tmp_path / "pack.zip"
    path.write_bytes(pack_of(api, number))
    assert verify_pack(path).ok
    assert "entries" in str(verify_pack(path, Bounds(entries=3)).problem)
    assert "inflates" in str(verify_pack(path, Bounds(inflated_bytes=1000)).problem)
    assert "larger" in str(verify_pack(path, Bounds(pack_bytes=1000)).problem)
    # A bomb: megabytes of zeros in a few kilobytes, refused before it is inflated.
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", b"0" * (50 * 1024 * 1024))
    assert bomb.stat().st_size < 200 * 1024
    assert "inflates" in str(verify_pack(bomb, Bounds(inflated_bytes=10 * 1024 * 1024)).problem)
    not_a_zip = tmp_path / "not.zip"
    not_a_zip.write_bytes(b"hello")
    assert "not a zip" in str(verify_pack(not_a_zip).problem)


def test_the_pack_is_for_those_who_may_read_the_improvement(
    app: Any, api: ApiDoor, closed: tuple[int, str]
) -> None:
    iid, number = closed
    url = f"/api/v1/improvements/{number}/pack"
    # Admin reads every improvement; cab took part (it decided on an RFC).
    for who in ("admin", "cab"):
        assert api.client.get(url, headers=api.headers(who)).status_code == 200, who
    auditor = client_for(app, "auditor")
    console = html.page(auditor.get(f"/audit/instances/{iid}"))
    (link,) = html.select(console, "a#evidence-pack")
    assert link.get("href") == f"/improvements/{number}/pack"
    page = auditor.get(str(link.get("href")))
    assert page.status_code == 200
    assert page.mimetype == "application/zip"
    assert page.data == pack_of(api, number)
    unknown = api.client.get("/api/v1/improvements/SI-1999-9999/pack", headers=api.headers("owner"))
    assert unknown.status_code == 404


def test_a_non_participant_gets_404_for_the_pack(api: ApiDoor) -> None:
    iid = api.start("owner")
    number = api.instance(iid)["record_number"]
    response = api.client.get(f"/api/v1/improvements/{number}/pack", headers=api.headers("cab"))
    assert response.status_code == 404
    assert (
        api.client.get(
            f"/api/v1/improvements/{number}/pack", headers=api.headers("owner")
        ).status_code
        == 200
    )
