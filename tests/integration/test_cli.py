"""The csi command on a real SQLite file: set-up, deploy, and timers fired by `worker --once`."""

from __future__ import annotations

import json
import os
import pwd
import sqlite3
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.persistence.database import Database
from engine.persistence.models import Event, Instance, ProcessDefinition, User
from engine.runtime import Runtime
from tests.cycle import Driver
from tests.helpers import files
from tests.helpers.actors import actors_of
from tests.helpers.clock import FakeClock
from tests.helpers.databases import prepared_database
from tests.helpers.doors import RuntimeDoor
from web.cli import main

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"


@pytest.fixture(scope="module")
def set_up_by_the_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file made by `csi init-db` and `csi seed-demo`, once for the module."""
    path = tmp_path_factory.mktemp("cli") / "set-up.sqlite3"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", f"sqlite:///{path}")
        runner = CliRunner()
        result = runner.invoke(main, ["init-db"])
        assert result.exit_code == 0, result.output
        assert "service_improvement v1" in result.output
        assert "change_management v1" in result.output
        result = runner.invoke(main, ["seed-demo"])
        assert result.exit_code == 0
        assert "owner" in result.output
    return path


@pytest.fixture
def cli_db(
    set_up_by_the_cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CliRunner, Database]]:
    """A test's own copy of that database (SQLite's backup, so nothing the set-up left
    in the write-ahead log is missed), and DATABASE_URL pointing at it."""
    path = tmp_path / "cli.sqlite3"
    source, copy = sqlite3.connect(set_up_by_the_cli), sqlite3.connect(path)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    url = f"sqlite:///{path}"
    monkeypatch.setenv("DATABASE_URL", url)
    db = Database(url)
    try:
        yield CliRunner(), db
    finally:
        db.dispose()


def test_init_db_is_idempotent_and_deploy_versions(
    cli_db: tuple[CliRunner, Database], tmp_path: Path
) -> None:
    runner, _db = cli_db
    again = runner.invoke(main, ["init-db"])
    assert again.exit_code == 0
    assert "service_improvement v1" in again.output
    changed = tmp_path / "service_improvement.bpmn"
    changed.write_text(
        (BPMN_DIR / "service_improvement.bpmn").read_text().replace("发起服务改进", "发起改进")
    )
    result = runner.invoke(main, ["deploy", str(changed)])
    assert result.exit_code == 0
    assert "deployed: service_improvement v2" in result.output
    same = runner.invoke(main, ["deploy", str(changed)])
    assert "unchanged: service_improvement v2" in same.output


def test_migrate_moves_a_running_instance_to_the_latest_version(
    cli_db: tuple[CliRunner, Database], tmp_path: Path
) -> None:
    runner, db = cli_db
    iid = Runtime(db).start_instance(actors_of(db)["owner"]).instance_id
    changed = tmp_path / "service_improvement.bpmn"
    changed.write_text(
        (BPMN_DIR / "service_improvement.bpmn").read_text().replace("发起服务改进", "发起改进")
    )
    assert runner.invoke(main, ["deploy", str(changed)]).exit_code == 0
    moved = runner.invoke(main, ["migrate", str(iid)])
    assert moved.exit_code == 0, moved.output
    assert f"instance {iid} migrated" in moved.output, moved.output
    again = runner.invoke(main, ["migrate", str(iid)])
    assert again.exit_code != 0
    assert "already runs on v2" in again.output


def test_seed_demo_again_keeps_what_an_administrator_changed(
    cli_db: tuple[CliRunner, Database],
) -> None:
    runner, db = cli_db
    with db.transaction() as session:
        po2 = session.scalar(select(User).where(User.username == "po2"))
        po2.active = False
        po2.roles = ["ProcessOwner", "ChangeImplementer"]
    again = runner.invoke(main, ["seed-demo"])
    assert again.exit_code == 0
    assert "already there" in again.output
    with db.sessions() as session:
        po2 = session.scalar(select(User).where(User.username == "po2"))
        assert po2.active is False
        assert po2.roles == ["ProcessOwner", "ChangeImplementer"]


def changed_diagram(tmp_path: Path, title: str) -> Path:
    changed = tmp_path / "service_improvement.bpmn"
    changed.write_text(
        (BPMN_DIR / "service_improvement.bpmn").read_text().replace("发起服务改进", title)
    )
    return changed


def test_the_history_names_the_os_user_and_only_an_existing_stated_user(
    cli_db: tuple[CliRunner, Database], tmp_path: Path
) -> None:
    runner, db = cli_db
    me = pwd.getpwuid(os.geteuid()).pw_name
    iid = Runtime(db).start_instance(actors_of(db)["owner"]).instance_id

    def last_actor() -> str | None:
        with db.sessions() as session:
            return session.scalar(
                select(Event.actor).where(Event.instance_id == iid).order_by(Event.seq.desc())
            )

    def deployer() -> str | None:
        with db.sessions() as session:
            return session.scalar(
                select(ProcessDefinition.deployed_by).order_by(ProcessDefinition.id.desc())
            )

    before = last_actor()
    invented = runner.invoke(main, ["migrate", str(iid), "--by", "the-ceo"])
    assert invented.exit_code != 0
    assert "no such user" in invented.output
    assert last_actor() == before
    not_a_modeler = runner.invoke(
        main, ["deploy", str(changed_diagram(tmp_path, "改进甲")), "--by", "po1"]
    )
    assert not_a_modeler.exit_code != 0
    assert "modeler" in not_a_modeler.output

    stated = runner.invoke(
        main, ["deploy", str(changed_diagram(tmp_path, "改进乙")), "--by", "admin"]
    )
    assert stated.exit_code == 0, stated.output
    assert deployer() == f"admin via cli:{me}"
    unstated = runner.invoke(main, ["migrate", str(iid)])
    assert unstated.exit_code == 0, unstated.output
    assert last_actor() == f"cli:{me}"


def test_create_user_follows_the_password_policy(cli_db: tuple[CliRunner, Database]) -> None:
    runner, db = cli_db
    refused = runner.invoke(
        main, ["create-user", "carol", "--role", "ProcessOwner"], input="a\na\n"
    )
    assert refused.exit_code != 0
    assert "at least 8 characters" in refused.output
    with db.sessions() as session:
        assert session.scalar(select(User).where(User.username == "carol")) is None
    made = runner.invoke(
        main,
        ["create-user", "carol", "--role", "ProcessOwner"],
        input="carol-pass-1\ncarol-pass-1\n",
    )
    assert made.exit_code == 0, made.output


def test_deploy_refuses_unsafe_diagram(cli_db: tuple[CliRunner, Database], tmp_path: Path) -> None:
    runner, _db = cli_db
    evil = tmp_path / "evil.bpmn"
    evil.write_text(
        (BPMN_DIR / "service_improvement.bpmn")
        .read_text()
        .replace("phase = 'analysis'", "phase = ().__class__.__bases__")
    )
    result = runner.invoke(main, ["deploy", str(evil)])
    assert result.exit_code == 2
    assert "open_analysis" in result.output
    assert "attribute access is not allowed" in result.output


def test_worker_once_fires_the_monitoring_timer(
    cli_db: tuple[CliRunner, Database], tmp_path: Path
) -> None:
    runner, db = cli_db
    door = RuntimeDoor(Runtime(db), db, actors_of(db))
    fired: list[str] = []

    def worker_once(now: datetime) -> None:
        at = now.strftime("%Y-%m-%dT%H:%M:%S%z")
        result = runner.invoke(main, ["worker", "--once", "--now", at])
        assert result.exit_code == 0, result.output
        assert "timers fired in 1 instance(s)" in result.output, result.output
        fired.append(result.output)

    door.fire_timers = worker_once  # type: ignore[method-assign]
    result = Driver(door).run()
    assert "timers fired in 1 instance(s)" in fired[0]
    with db.sessions() as session:
        assert session.get(Instance, result.instance_id).status == "completed"
        assert session.scalar(select(Event.actor).where(Event.type == "timer_fired")) == "system"
    verify = runner.invoke(main, ["verify-audit"])
    assert verify.exit_code == 0
    assert "1 of 1 instances verified" in verify.output
    anchors = tmp_path / "anchors.json"
    written = runner.invoke(main, ["verify-audit", "--write-anchors", str(anchors)])
    assert written.exit_code == 0
    assert "anchors of 1 chains written" in written.output
    held = runner.invoke(main, ["verify-audit", "--anchors", str(anchors)])
    assert held.exit_code == 0
    assert "1 of 1 anchored heads still stand" in held.output
    replayed = runner.invoke(main, ["replay", str(result.instance_id), "--step", "3"])
    assert replayed.exit_code == 0
    assert "replay matches the record" in replayed.output
    assert "at seq 3" in replayed.output
    with db.sessions() as session:
        events = session.scalars(select(Event).where(Event.instance_id == result.instance_id)).all()
    exported = runner.invoke(main, ["export", str(result.instance_id), "--format", "csv"])
    lines = exported.output.strip().splitlines()
    assert lines[0].startswith("instance_id,seq,type,actor,at")
    assert len(lines) == len(events) + 1
    as_json = runner.invoke(main, ["export", str(result.instance_id)])
    assert json.loads(as_json.output)[-1]["type"] == "instance_completed"
    # tamper: the CLI now reports the broken link and fails
    with db.transaction() as session:
        victim = session.scalar(
            select(Event).where(Event.instance_id == result.instance_id, Event.seq == 5)
        )
        victim.actor = "mallory"
    broken = runner.invoke(main, ["verify-audit"])
    assert broken.exit_code == 1
    assert "broken at seq 5" in broken.output
    fallen = runner.invoke(main, ["verify-audit", "--anchors", str(anchors)])
    assert fallen.exit_code == 1
    assert "0 of 1 anchored heads still stand" in fallen.output
    # a broken chain is no anchor: it is left out of a new anchors file, and said so
    again = tmp_path / "again.json"
    rewritten = runner.invoke(main, ["verify-audit", "--write-anchors", str(again)])
    assert "anchors of 0 chains written" in rewritten.output
    assert f"left out, broken: {result.instance_id}" in rewritten.output
    missing = runner.invoke(main, ["verify-audit", "--instance", "999999"])
    assert missing.exit_code != 0
    assert "no instance 999999" in missing.output


def test_embedded_worker_fires_timers_without_a_second_command(tmp_path: Path) -> None:
    from web import create_app

    db = prepared_database(f"sqlite:///{tmp_path / 'embedded.sqlite3'}")
    clock = FakeClock()
    app = create_app(
        {
            "SECRET_KEY": "x",
            "DATABASE": db,
            "DATABASE_URL": db.url,
            "EMBEDDED_WORKER": True,
            "WORKER_INTERVAL": 0.05,
            "CLOCK": clock,
        }
    )
    runtime: Runtime = app.extensions["csi"].runtime
    door = RuntimeDoor(runtime, db, actors_of(db))

    def wait_until_fired(now: datetime) -> None:
        # The clock has moved past the re-check: the worker thread's next pass fires it.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with db.sessions() as session:
                if session.scalar(select(Event.id).where(Event.type == "timer_fired")):
                    return
            time.sleep(0.05)
        raise AssertionError("the embedded worker did not fire the timer")

    door.fire_timers = wait_until_fired  # type: ignore[method-assign]
    try:
        assert Driver(door, clock).run().final["status"] == "completed"
    finally:
        app.extensions["csi_worker_stop"].set()


def test_an_id_no_database_can_hold_is_refused_without_a_traceback(
    cli_db: tuple[CliRunner, Database],
) -> None:
    runner, _db = cli_db
    for command in (["replay", "9223372036854775808"], ["export", "0"], ["migrate", "2147483648"]):
        result = runner.invoke(main, command)
        assert result.exit_code == 2, result.output
        assert "is not in the range" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_export_writes_the_evidence_pack_that_verify_pack_checks_offline(
    cli_db: tuple[CliRunner, Database], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, db = cli_db
    store = tmp_path / "attachments"
    monkeypatch.setenv("CSI_ATTACHMENTS_DIR", str(store))
    rt = Runtime(db)
    door = RuntimeDoor(rt, db, actors_of(db))

    def bpmn_of(username: str, task_id: str) -> str:
        task = rt.queries.open_task(task_id)
        assert task is not None
        return task.bpmn_id

    result = Driver(files.attaching(door, bpmn_of)).run()
    assert any(store.rglob("*")), "the cycle's files were kept"
    pack = tmp_path / "evidence.zip"
    exported = runner.invoke(
        main, ["export", str(result.instance_id), "--format", "pack", "-o", str(pack)]
    )
    assert exported.exit_code == 0, exported.output
    again = tmp_path / "again.zip"
    runner.invoke(main, ["export", str(result.instance_id), "--format", "pack", "-o", str(again)])
    assert pack.read_bytes() == again.read_bytes()

    # Offline: no database at all.
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    held = runner.invoke(main, ["verify-pack", str(pack)])
    assert held.exit_code == 0, held.output
    assert "the evidence pack holds" in held.output
    with zipfile.ZipFile(pack) as archive:
        recorded = [
            e for e in json.loads(archive.read("history.json")) if e["payload"].get("attachments")
        ]
    assert len(recorded) >= 4  # the finding, each owner's exports, the verification
    assert f"attachments: {len(recorded)} files hash as their events recorded" in held.output

    with zipfile.ZipFile(pack) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["history.csv"] = entries["history.csv"].replace(b"owner", b"0wner", 1)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    failed = runner.invoke(main, ["verify-pack", str(broken)])
    assert failed.exit_code == 1
    assert "history.csv" in failed.output


def test_worker_once_starts_the_period_s_review_once_and_says_what_a_pass_does(
    cli_db: tuple[CliRunner, Database],
) -> None:
    runner, db = cli_db
    helped = runner.invoke(main, ["worker", "--help"])
    for step in ("fires the timers", "starts due periodic reviews", "due tomorrow", "delivers"):
        assert step in helped.output
    admin = actors_of(db)["admin"]
    Runtime(db).save_schedule(
        admin,
        None,
        {
            "name": "季度评审",
            "period": "R/2027-01-01T00:00:00+08:00/P3M",
            "owner": "owner",
            "process_owners": ["po1"],
        },
    )
    first = runner.invoke(main, ["worker", "--once", "--now", "2027-01-15T09:00:00+0800"])
    assert first.exit_code == 0, first.output
    with db.sessions() as session:
        started = session.scalars(select(Instance.id)).all()
    assert len(started) == 1
    assert f"periodic reviews started: [{started[0]}]" in first.output
    again = runner.invoke(main, ["worker", "--once", "--now", "2027-01-20T09:00:00+0800"])
    assert "periodic reviews started: []" in again.output
    with db.sessions() as session:
        assert len(session.scalars(select(Instance.id)).all()) == 1
