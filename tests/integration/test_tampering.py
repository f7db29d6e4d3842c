"""Tampering with the database around the application is reported by the audit tools,
with where it is, and never makes a page, an endpoint or a command fail: through the
CLI, the JSON API and the pages, on SQLite and PostgreSQL.

Each test commits (the CLI is a separate program with its own connections) and edits
the database as someone with access to it would: raw SQL, foreign keys off.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text, update

from engine.access import Actor
from engine.errors import Forbidden
from engine.persistence.database import Database
from engine.persistence.models import Event, HumanTask, Instance
from engine.runtime import Runtime
from tests.cycle import REGISTER
from tests.helpers import html
from tests.helpers.actors import actors_of
from tests.helpers.api import bearer
from tests.helpers.databases import foreign_keys_off
from tests.helpers.pages import client_for, csrf_token
from web import cli, create_app
from web.cli import os_user

UNREADABLE = "此事件无法读取。"


@dataclass
class Site:
    """One committed database, seen through the app (pages, API) and the CLI."""

    db: Database
    rt: Runtime
    actors: dict[str, Actor]
    app: Any
    runner: CliRunner = field(default_factory=CliRunner)
    _browsers: dict[str, Any] = field(default_factory=dict)
    _tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    def csi(self, *args: object) -> Result:
        return self.runner.invoke(cli.main, [str(a) for a in args])

    def browser(self, username: str) -> Any:
        """A test client signed in as `username` (one per user, kept)."""
        if username not in self._browsers:
            self._browsers[username] = client_for(self.app, username)
        return self._browsers[username]

    def page(self, username: str, url: str) -> Any:
        return self.browser(username).get(url)

    def api(self, username: str, url: str, body: Any = None) -> Any:
        client = self.app.test_client()
        if username not in self._tokens:
            self._tokens[username] = bearer(client, username)
        headers = self._tokens[username]
        if body is None:
            return client.get(f"/api/v1{url}", headers=headers)
        return client.post(f"/api/v1{url}", json=body, headers=headers)

    def execute(self, sql: str, **params: Any) -> None:
        with self.db.transaction() as session:
            session.execute(text(sql), params)

    @property
    def postgres(self) -> bool:
        return self.db.engine.dialect.name == "postgresql"

    def open_tasks(self, instance_id: int) -> list[str]:
        with self.db.sessions() as session:
            return list(
                session.scalars(
                    select(HumanTask.id).where(
                        HumanTask.instance_id == instance_id, HumanTask.status == "open"
                    )
                )
            )

    def registered(self) -> int:
        """An improvement with five events: started, register_input claimed and
        completed (3), both proposals claimed."""
        iid = self.rt.start_instance(self.actors["owner"]).instance_id
        self.rt.complete_task(self.open_tasks(iid)[0], self.actors["owner"], REGISTER)
        with self.db.sessions() as session:
            for task in session.scalars(
                select(HumanTask).where(HumanTask.instance_id == iid, HumanTask.status == "open")
            ):
                self.rt.claim_task(task.id, self.actors[task.assignee or ""])
        return iid


@pytest.fixture
def site(committed_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("DATABASE_URL", committed_db.url)
    made: list[Runtime] = []
    real_runtime = cli.runtime

    def tracked_runtime() -> Runtime:
        # The CLI's own runtime from DATABASE_URL, kept to close its connections after.
        made.append(real_runtime())
        return made[-1]

    monkeypatch.setattr(cli, "runtime", tracked_runtime)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE": committed_db,
            "DATABASE_URL": committed_db.url,
        }
    )
    try:
        yield Site(committed_db, Runtime(committed_db), actors_of(committed_db), app)
    finally:
        for runtime in made:
            runtime.db.dispose()


# -- 5. an event whose payload is no longer JSON ------------------------------------------------


def test_an_unreadable_payload_is_a_broken_link_that_every_reader_shows(site: Site) -> None:
    victim, nulled, untouched = site.registered(), site.registered(), site.registered()
    # SQLite holds any text; PostgreSQL's json column holds JSON, but not an object
    overwrite = (
        "UPDATE event SET payload = CAST(:payload AS json) WHERE instance_id = :iid AND seq = 3"
        if site.postgres
        else "UPDATE event SET payload = :payload WHERE instance_id = :iid AND seq = 3"
    )
    tampered = "123" if site.postgres else "not json"
    for iid, payload in ((victim, tampered), (nulled, "null")):
        site.execute(overwrite, payload=payload, iid=iid)

    verified = site.csi("verify-audit")
    assert verified.exit_code == 1, verified.output
    for iid in (victim, nulled):
        assert f"instance {iid}: broken at seq 3: event 3 cannot be read" in verified.output
    assert f"instance {untouched}:" not in verified.output
    assert "1 of 3 instances verified" in verified.output
    replayed = site.csi("replay", victim)
    assert replayed.exit_code == 1, replayed.output
    assert "MISMATCH at seq 3" in replayed.output
    assert "event 3 cannot be read" in replayed.output
    exported = site.csi("export", victim, "--format", "csv")
    assert exported.exit_code == 0, exported.output
    assert "event 3 cannot be read" in exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert (rows[2]["seq"], rows[2]["readable"], rows[2]["payload"]) == ("3", "False", tampered)
    assert {row["readable"] for row in rows[:2] + rows[3:]} == {"True"}
    as_json = json.loads(site.csi("export", nulled).stdout)
    assert (as_json[2]["readable"], as_json[2]["payload"], as_json[2]["stored"]) == (
        False,
        None,
        "null",
    )

    history = site.api("auditor", f"/instances/{victim}/history")
    assert history.status_code == 200
    assert [e["readable"] for e in history.json] == [True, True, False, True, True]
    verify = site.api("auditor", f"/instances/{victim}/verify").json
    assert (verify["ok"], verify["broken_at"]) == (False, 3)
    replay = site.api("auditor", f"/instances/{victim}/replay").json
    assert (replay["ok"], replay["mismatch"]["seq"]) == (False, 3)
    assert site.api("auditor", f"/instances/{untouched}/verify").json["ok"] is True

    shown = html.page(site.page("auditor", f"/instances/{victim}"))
    assert html.texts(shown, "table.history .badge-unreadable") == [UNREADABLE]
    console = html.page(site.page("auditor", f"/audit/instances/{victim}"))
    assert html.select_one(console, "#check-chain").get("data-broken-at") == "3"
    assert html.select_one(console, "#check-replay").get("data-mismatch-at") == "3"
    marked = html.select(console, "#timeline .tl-unreadable")
    assert [html.text_of(m) for m in marked] == [UNREADABLE]
    step = site.page("auditor", f"/audit/instances/{victim}/steps/3")
    assert step.status_code == 200
    panel = html.fragment(step.get_json()["html"]["event"])
    assert html.text_of(html.select_one(panel, ".event-unreadable")).startswith("此事件无法读取")
    for fmt in ("json", "csv"):
        export = site.page("auditor", f"/audit/instances/{victim}/history.{fmt}")
        assert export.status_code == 200, fmt


# -- 6. a deleted instance row ------------------------------------------------------------------


def test_a_deleted_instance_row_leaves_a_chain_that_verify_reports(site: Site) -> None:
    kept = site.rt.start_instance(site.actors["owner"]).instance_id
    victim = site.rt.start_instance(site.actors["owner"]).instance_id  # the newest
    (orphan_task,) = site.open_tasks(victim)
    with foreign_keys_off(site.db) as connection:
        connection.execute(text("DELETE FROM instance WHERE id = :iid"), {"iid": victim})

    verified = site.csi("verify-audit")
    assert verified.exit_code == 1, verified.output
    assert f"instance {victim}: the log holds 1 events of an instance that is gone" in (
        verified.output
    )
    assert "1 of 2 instances verified" in verified.output
    api_verify = site.api("auditor", f"/instances/{victim}/verify")
    assert (api_verify.status_code, api_verify.json["ok"]) == (200, False)

    # What is left of it shows nowhere and fails nothing.
    register = site.api("owner", "/improvements")
    assert register.status_code == 200
    assert [r["instance_id"] for r in register.json] == [kept]
    tasks = site.api("owner", "/tasks")
    assert tasks.status_code == 200
    assert [t["instance_id"] for t in tasks.json] == [kept]
    assert site.api("owner", f"/tasks/{orphan_task}").status_code == 404
    inbox = html.page(site.page("owner", "/"))
    assert f"/tasks/{orphan_task}" not in html.urls(inbox)
    assert site.page("owner", f"/tasks/{orphan_task}").status_code == 404
    # ... and a new improvement gets an id of its own, not the orphaned chain's
    started = site.rt.start_instance(site.actors["owner"]).instance_id
    assert started not in (victim, kept)


# -- 7. a corrupted workflow_state --------------------------------------------------------------


def _unreadable(state: str) -> str:
    return state[: len(state) // 2]


def _forged(state: str) -> str:
    """Valid state whose data says something the history never did."""
    forged = json.loads(state)
    for task in forged["tasks"].values():
        task["data"]["reference"] = "forged"
    return json.dumps(forged)


@pytest.mark.parametrize("corrupt", [_unreadable, _forged])
def test_a_corrupted_state_is_refused_reported_and_rebuilt(site: Site, corrupt: Any) -> None:
    iid = site.rt.start_instance(site.actors["owner"]).instance_id
    (task,) = site.open_tasks(iid)
    with site.db.sessions() as session:
        state = session.scalar(
            text("SELECT state FROM workflow_state WHERE instance_id = :iid"), {"iid": iid}
        )
    site.execute(
        "UPDATE workflow_state SET state = :s WHERE instance_id = :iid", s=corrupt(state), iid=iid
    )

    refused = site.api("owner", f"/tasks/{task}/complete", {"data": REGISTER})
    assert refused.status_code == 409, refused.json
    assert refused.json["error"] == "state_damaged"
    assert f"the stored state of instance {iid} cannot be used" in refused.json["message"]
    assert f"csi replay --repair {iid}" in refused.json["message"]
    token = csrf_token(site.browser("owner"), f"/tasks/{task}")  # the form still shows
    posted = site.browser("owner").post(f"/tasks/{task}", data={"csrf_token": token})
    assert posted.status_code == 409
    assert f"csi replay --repair {iid}" in html.text_of(html.page(posted).body)

    verified = site.csi("verify-audit")
    assert verified.exit_code == 1, verified.output
    assert f"instance {iid}: the stored state of instance {iid} cannot be used" in verified.output
    assert site.api("auditor", f"/instances/{iid}/verify").json["state_at"] == 1
    replayed = site.csi("replay", iid)
    assert replayed.exit_code == 1
    assert "MISMATCH at seq 1 (workflow_state)" in replayed.output
    console = html.page(site.page("auditor", f"/audit/instances/{iid}"))
    assert html.text_of(html.select_one(console, "#check-chain h3")) == "保存的状态与历史不一致"

    # Only an administrator (the operator at the command line) may rebuild it.
    with pytest.raises(Forbidden):
        site.rt.repair_state(iid, site.actors["owner"])
    repaired = site.csi("replay", "--repair", iid)
    assert repaired.exit_code == 0, repaired.output
    assert f"instance {iid}: state rebuilt from its history" in repaired.output
    again = site.csi("replay", "--repair", iid)
    assert again.exit_code == 2
    assert "matches its history" in again.output
    history = site.api("auditor", f"/instances/{iid}/history").json
    assert [(e["type"], e["actor"]) for e in history][-1] == ("state_repaired", f"cli:{os_user()}")
    assert site.csi("replay", iid).exit_code == 0
    assert site.csi("verify-audit").exit_code == 0
    done = site.api("owner", f"/tasks/{task}/complete", {"data": REGISTER})
    assert done.status_code == 200, done.json
    assert site.api("auditor", f"/instances/{iid}/replay").json["ok"] is True


# -- 8. which side of a mismatch is which -------------------------------------------------------


def test_a_mismatch_shows_the_recorded_and_the_replayed_side(site: Site) -> None:
    # a projection: the stored row is the record, the replay says what it should be
    projection = site.rt.start_instance(site.actors["owner"]).instance_id
    with site.db.transaction() as session:
        session.execute(
            update(Instance).where(Instance.id == projection).values(status="completed")
        )
    # an event: its checkpoint is the record; the replay, fed the edited submission,
    # produces another value
    altered = site.registered()
    with site.db.transaction() as session:
        event = session.scalar(select(Event).where(Event.instance_id == altered, Event.seq == 3))
        payload = json.loads(json.dumps(event.payload))
        payload["data"]["reference"] = "KF-forged"
        session.execute(update(Event).where(Event.id == event.id).values(payload=payload))

    for iid, recorded, replayed in (
        (projection, "completed", "running"),
        (altered, REGISTER["reference"], "KF-forged"),
    ):
        shown = site.csi("replay", iid)
        assert shown.exit_code == 1, shown.output
        assert f'  recorded: "{recorded}"' in shown.output.splitlines(), shown.output
        assert f'  replayed: "{replayed}"' in shown.output.splitlines(), shown.output
        mismatch = site.api("auditor", f"/instances/{iid}/replay").json["mismatch"]
        assert (mismatch["recorded"], mismatch["replayed"]) == (recorded, replayed)
        console = html.page(site.page("auditor", f"/audit/instances/{iid}"))
        assert html.text_of(html.select_one(console, ".compare-recorded pre")) == f'"{recorded}"'
        assert html.text_of(html.select_one(console, ".compare-replayed pre")) == f'"{replayed}"'
