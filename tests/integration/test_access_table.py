"""The access table (tests/integration/access_table.py), cell by cell: once against the
engine (Runtime and Runtime.queries), once against the JSON API and the admin pages.

An allowed cell checks the effect (the task is claimed, the version moved, the chain
verified); a refused one checks the status and that nothing was written.

The table's users and their improvements are made once per backend for the module and
committed; each cell works in `db`, whose outer transaction is rolled back, so what one
cell does no other sees."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select
from werkzeug.security import generate_password_hash

from engine.access import SYSTEM, Actor
from engine.errors import DomainError
from engine.persistence.database import Database
from engine.persistence.models import (
    Draft,
    Event,
    HumanTask,
    Instance,
    Metric,
    ModelEvent,
    ProcessDefinition,
    User,
)
from engine.runtime import Runtime
from procedure import PACK
from tests.cycle import REGISTER
from tests.helpers.api import bearer
from tests.helpers.databases import BACKENDS, delete_committed_rows, shared_database
from tests.helpers.pages import client_for
from tests.integration.access_table import CELL_IDS, CELLS, WHO, A, Who

# Hashing "demo" the default way takes a quarter second: the table's users get a cheap one.
PASSWORD = "demo"
CHEAP_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")

PROPOSAL = {"metrics": [{"name": "可用率", "unit": "%", "method": "监控"}]}
BPMN = (PACK.files / "service_improvement.bpmn").read_text(encoding="utf-8")
NEWER_BPMN = BPMN.replace('value="Service improvement"', 'value="Service improvement (v2)"', 1)
PROBE_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    id="Definitions_access_probe" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="access_probe" name="Access probe" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>flow</bpmn:outgoing></bpmn:startEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>flow</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="flow" sourceRef="start" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


@dataclass
class World:
    who: Who
    actor: Actor
    instance_id: int
    task_id: str  # propose_metrics, assigned to the participating process owner
    events: int  # the improvement's events so far
    newer: int | None = None  # the newer version deployed for `migrate`
    draft_id: int | None = None  # the draft by `owner` submitted for `approve`


def add_users(db: Database) -> None:
    """The table's users, one per row, each holding only the row's roles."""
    with db.transaction() as session:
        for who in WHO.values():
            session.add(
                User(
                    username=who.username,
                    display_name=who.username,
                    password_hash=CHEAP_HASH,
                    roles=list(who.roles),
                    active=True,
                )
            )


def build_world(rt: Runtime, who: Who) -> World:
    """An improvement waiting on a process owner's proposal: the row's own user when the
    row takes part, else `po1`."""
    participant = who.username if who.takes_part else "po1"
    owner = Actor("owner", frozenset({"ImprovementOwner"}))
    started = rt.start_instance(owner, "service_improvement")
    registered = rt.complete_task(
        started.open_tasks[0], owner, {**REGISTER, "process_owners": [participant]}
    )
    [task_id] = registered.open_tasks
    task = rt.queries.open_task(task_id)
    assert task is not None
    assert task.bpmn_id == "propose_metrics"
    assert task.assignee == participant
    return World(
        who,
        Actor(who.username, frozenset(who.roles)),
        started.instance_id,
        task_id,
        events=len(registered.events) + len(started.events),
    )


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Module-wide here, so the cells of one backend run together around one set of
    users and improvements."""
    return str(request.param)


@pytest.fixture(scope="module")
def worlds(backend: str, database_urls: dict[str, str | None]) -> Iterator[dict[str, World]]:
    """Each row's world, committed once per backend (before any cell's `db`), and
    deleted when the module is done."""
    base = shared_database(backend, database_urls)
    rt = Runtime(base)
    add_users(base)
    try:
        yield {name: build_world(rt, who) for name, who in WHO.items()}
    finally:
        delete_committed_rows(base)
        with base.transaction() as session:
            session.execute(
                delete(User).where(User.username.in_([w.username for w in WHO.values()]))
            )


@pytest.fixture
def world(
    request: pytest.FixtureRequest, worlds: dict[str, World], db: Database, who: str, action: str
) -> World:
    """The cell's user and improvement (`who` and `action` are the cell's parameters);
    for `migrate`, a newer version of the diagram to move it onto, and for `approve`, a
    submitted draft by `owner`, made in the cell's transaction (through the app's
    runtime when the test has an app)."""
    built = replace(worlds[who])
    if action in ("migrate", "approve"):
        if "app" in request.fixturenames:
            rt: Runtime = request.getfixturevalue("app").extensions["csi"].runtime
        else:
            rt = request.getfixturevalue("rt")
        if action == "migrate":
            built.newer = deploy_newer_version(rt)
        else:
            built.draft_id = submitted_draft(rt)
    return built


@dataclass(frozen=True)
class Footprint:
    """What any command writes: events, claims, definitions, instances, users, drafts,
    the procedure's log, metrics."""

    events: int
    claims: int
    definitions: int
    instances: int
    users: int
    drafts: int
    model_log: int
    metrics: int


def footprint(db: Database) -> Footprint:
    def count(entity: Any, *where: Any) -> int:
        return session.scalar(select(func.count()).select_from(entity).where(*where)) or 0

    with db.sessions() as session:
        return Footprint(
            count(Event),
            count(HumanTask, HumanTask.claimed_by.is_not(None)),
            count(ProcessDefinition),
            count(Instance),
            count(User),
            count(Draft),
            count(ModelEvent),
            count(Metric),
        )


def deploy_newer_version(rt: Runtime) -> int:
    """A newer version of the improvement's diagram, for `migrate` to move it onto."""
    deployed = rt.deploy(SYSTEM, NEWER_BPMN.encode("utf-8"), "service_improvement.bpmn")
    assert deployed.created
    return deployed.definitions[0].version


OWNER = Actor("owner", frozenset({"ImprovementOwner", "Modeler"}))
ADMIN = Actor("admin", frozenset({"Admin"}))


def draft_content(rt: Runtime) -> tuple[str, dict[str, Any]]:
    """The latest version's forms, with a diagram that differs from it."""
    latest = rt.queries.models.version(ADMIN, "service_improvement", None)
    return NEWER_BPMN, latest["forms"]


def submitted_draft(rt: Runtime) -> int:
    xml, forms = draft_content(rt)
    saved = rt.create_draft(OWNER, "service_improvement", xml, forms, "a clearer English name")
    rt.submit_draft(OWNER, saved.id)
    return saved.id


def draft_status(db: Database, draft_id: int) -> tuple[str, int | None]:
    with db.sessions() as session:
        row = session.get(Draft, draft_id)
        assert row is not None
        return row.status, row.version


def task_row(db: Database, task_id: str) -> HumanTask:
    with db.sessions() as session:
        row = session.get(HumanTask, task_id)
        assert row is not None
        session.expunge(row)
        return row


def definition_version(db: Database, instance_id: int) -> int:
    with db.sessions() as session:
        return (
            session.scalar(
                select(ProcessDefinition.version)
                .join(Instance, Instance.definition_id == ProcessDefinition.id)
                .where(Instance.id == instance_id)
            )
            or 0
        )


# ---- the engine --------------------------------------------------------------------------------


def _engine_start(rt: Runtime, w: World) -> None:
    result = rt.start_instance(w.actor, "service_improvement")
    assert result.instance_id != w.instance_id
    assert result.status == "running"
    assert rt.queries.open_task(result.open_tasks[0]) is not None


def _engine_claim(rt: Runtime, w: World) -> None:
    rt.claim_task(w.task_id, w.actor)
    assert task_row(rt.db, w.task_id).claimed_by == w.actor.username


def _engine_complete(rt: Runtime, w: World) -> None:
    result = rt.complete_task(w.task_id, w.actor, PROPOSAL)
    row = task_row(rt.db, w.task_id)
    assert row.status == "completed"
    assert row.completed_by == w.actor.username
    assert w.task_id not in result.open_tasks


def _engine_read(rt: Runtime, w: World) -> None:
    view = rt.queries.instance(w.actor, w.instance_id)
    assert view.instance.id == w.instance_id
    assert [t.id for t in view.open_tasks] == [w.task_id]


def _engine_history(rt: Runtime, w: World) -> None:
    events = rt.queries.history(w.actor, w.instance_id)
    assert len(events) == w.events
    assert events[0]["type"] == "instance_started"


def _engine_verify(rt: Runtime, w: World) -> None:
    verification = rt.queries.verify(w.actor, w.instance_id)
    assert verification.ok
    assert verification.events == w.events


def _engine_replay(rt: Runtime, w: World) -> None:
    result = rt.queries.replay(w.actor, w.instance_id)
    assert result.ok
    assert result.mismatch is None
    assert result.steps == w.events


def _engine_migrate(rt: Runtime, w: World) -> None:
    rt.migrate_instance(w.instance_id, w.actor)
    assert definition_version(rt.db, w.instance_id) == w.newer


def _engine_deploy(rt: Runtime, w: World) -> None:
    deployed = rt.deploy(w.actor, PROBE_BPMN, "access_probe.bpmn")
    assert deployed.created
    assert [d.process_id for d in deployed.definitions] == ["access_probe"]


def _engine_admin(rt: Runtime, w: World) -> None:
    assert w.actor.username in {u.username for u in rt.queries.users(w.actor)}


def _engine_models(rt: Runtime, w: World) -> None:
    listed = {p.process_id: p for p in rt.queries.models.overview(w.actor)}
    assert {"service_improvement", "change_management"} <= set(listed)


def _engine_draft(rt: Runtime, w: World) -> None:
    xml, forms = draft_content(rt)
    saved = rt.create_draft(w.actor, "service_improvement", xml, forms, "a clearer name")
    assert [f for f in saved.lint if f["severity"] == "error"] == []
    assert draft_status(rt.db, saved.id) == ("editing", None)


def _engine_approve(rt: Runtime, w: World) -> None:
    assert w.draft_id is not None
    approved = rt.approve_draft(w.actor, w.draft_id)
    assert approved.process_id == "service_improvement"
    assert draft_status(rt.db, w.draft_id) == ("approved", approved.version)


NEW_METRIC = {
    "code": "ACCESS_PROBE",
    "name_zh": "访问探针",
    "name_en": "Access probe",
    "category": "quality",
    "unit": "%",
    "direction": "higher_better",
}


def _engine_metrics(rt: Runtime, w: World) -> None:
    assert rt.create_metric(w.actor, "ACCESS_PROBE", NEW_METRIC) == "ACCESS_PROBE"
    assert rt.queries.metric(w.actor, "ACCESS_PROBE").active


ENGINE: dict[str, Callable[[Runtime, World], None]] = {
    "start": _engine_start,
    "claim": _engine_claim,
    "complete": _engine_complete,
    "read": _engine_read,
    "history": _engine_history,
    "verify": _engine_verify,
    "replay": _engine_replay,
    "migrate": _engine_migrate,
    "deploy": _engine_deploy,
    "admin": _engine_admin,
    "models": _engine_models,
    "draft": _engine_draft,
    "approve": _engine_approve,
    "metrics": _engine_metrics,
}


@pytest.mark.parametrize(("who", "action", "expected"), CELLS, ids=CELL_IDS)
def test_engine_answers_as_the_table_says(
    db: Database, rt: Runtime, world: World, action: str, expected: str | int
) -> None:
    before = footprint(db)
    if expected == A:
        ENGINE[action](rt, world)
        return
    with pytest.raises(DomainError) as refused:
        ENGINE[action](rt, world)
    assert refused.value.status == expected, refused.value.message
    assert footprint(db) == before


# ---- the JSON API and the admin pages --------------------------------------------------------------


def _api(client: FlaskClient, app: Any, w: World, action: str) -> tuple[int, Any]:
    iid, tid = w.instance_id, w.task_id
    if action == "admin":  # pages, signed in: the API has no admin endpoint
        response = client_for(app, w.actor.username).get("/admin/users")
        return response.status_code, response.get_data(as_text=True)
    headers = bearer(client, w.actor.username)
    requests: dict[str, Callable[[], Any]] = {
        "start": lambda: client.post(
            "/api/v1/instances", json={"process": "service_improvement"}, headers=headers
        ),
        "claim": lambda: client.post(f"/api/v1/tasks/{tid}/claim", headers=headers),
        "complete": lambda: client.post(
            f"/api/v1/tasks/{tid}/complete", json={"data": PROPOSAL}, headers=headers
        ),
        "read": lambda: client.get(f"/api/v1/instances/{iid}", headers=headers),
        "history": lambda: client.get(f"/api/v1/instances/{iid}/history", headers=headers),
        "verify": lambda: client.get(f"/api/v1/instances/{iid}/verify", headers=headers),
        "replay": lambda: client.get(f"/api/v1/instances/{iid}/replay", headers=headers),
        "migrate": lambda: client.post(
            f"/api/v1/instances/{iid}/migrate", json={}, headers=headers
        ),
        "deploy": lambda: client.post(
            "/api/v1/models?filename=access_probe.bpmn",
            data=PROBE_BPMN,
            headers={**headers, "Content-Type": "application/xml"},
        ),
        "models": lambda: client.get("/api/v1/models", headers=headers),
        "draft": lambda: client.post(
            "/api/v1/models/service_improvement/drafts",
            json=dict(
                zip(("bpmn", "forms"), draft_content(app.extensions["csi"].runtime), strict=True)
            ),
            headers=headers,
        ),
        "approve": lambda: client.post(f"/api/v1/drafts/{w.draft_id}/approve", headers=headers),
        "metrics": lambda: client.post(
            "/api/v1/metrics/catalogue", json=NEW_METRIC, headers=headers
        ),
    }
    response = requests[action]()
    return response.status_code, response.json


def _allowed_answer(action: str, status: int, body: Any, w: World, db: Database) -> None:
    if action == "start":
        assert status == 201
        assert body["id"] != w.instance_id
        assert body["status"] == "running"
    elif action == "claim":
        assert status == 200
        assert body["claimed_by"] == w.actor.username
        assert task_row(db, w.task_id).claimed_by == w.actor.username
    elif action == "complete":
        assert status == 200
        assert w.task_id not in body["open_tasks"]
        assert task_row(db, w.task_id).completed_by == w.actor.username
    elif action == "read":
        assert status == 200
        assert body["id"] == w.instance_id
    elif action == "history":
        assert status == 200
        assert len(body) == w.events
        assert body[0]["type"] == "instance_started"
    elif action == "verify":
        assert status == 200
        assert body["ok"] is True
        assert body["broken_at"] is None
    elif action == "replay":
        assert status == 200
        assert body["ok"] is True
        assert body["steps"] == w.events
    elif action == "migrate":
        assert status == 200
        assert body["id"] == w.instance_id
        assert definition_version(db, w.instance_id) == w.newer
    elif action == "deploy":
        assert status == 201
        assert body["created"] is True
        assert [d["process_id"] for d in body["definitions"]] == ["access_probe"]
    elif action == "admin":
        assert status == 200
        assert w.actor.username in body
        assert "po1" in body
    elif action in ("models", "draft", "approve", "metrics"):
        _allowed_catalogue_answer(action, status, body, w, db)
    else:  # pragma: no cover - a new column needs its check here
        raise AssertionError(f"no check for {action}")


def _allowed_catalogue_answer(action: str, status: int, body: Any, w: World, db: Database) -> None:
    """The procedure's versions and drafts, and the metric catalogue."""
    if action == "metrics":
        assert status == 201
        assert body["code"] == "ACCESS_PROBE"
        assert body["active"] is True
    elif action == "models":
        assert status == 200
        assert "service_improvement" in {p["process_id"] for p in body["processes"]}
    elif action == "draft":
        assert status == 201
        assert [f for f in body["lint"] if f["severity"] == "error"] == []
        assert draft_status(db, body["id"]) == ("editing", None)
    else:
        assert status == 201
        assert body["process_id"] == "service_improvement"
        assert w.draft_id is not None
        assert draft_status(db, w.draft_id) == ("approved", body["version"])


@pytest.mark.parametrize(("who", "action", "expected"), CELLS, ids=CELL_IDS)
def test_api_answers_as_the_table_says(
    app: Any, client: FlaskClient, db: Database, world: World, action: str, expected: str | int
) -> None:
    before = footprint(db)
    status, body = _api(client, app, world, action)
    if expected == A:
        _allowed_answer(action, status, body, world, db)
        return
    assert status == expected, body
    if action != "admin":
        assert body["error"] == {403: "forbidden", 404: "not_found"}[int(expected)]
    assert footprint(db) == before
