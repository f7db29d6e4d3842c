"""Changing the procedure through the API: a modeler drafts, submits with a note, an
approver who is not the author approves, and only then is there a new version; the
improvements already running stay on theirs. Every step is in the model log, which
verify-audit checks."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select, update

from engine.commands.setup import fresh_demo_database
from engine.persistence.database import Database
from engine.persistence.models import Instance, ModelEvent, ProcessDefinition
from engine.runtime import Runtime
from procedure import PACK
from tests.helpers.actors import actors_of
from tests.helpers.api import bearer
from tests.helpers.diagrams import NEW_FORM, NEW_TASK, NEW_TASK_XML, with_task_before
from web.cli import main

Call = Callable[..., Any]


@pytest.fixture
def api(client: FlaskClient) -> Call:
    """`api(user, method, path, json=None)` → the response, as `user` with a token."""
    tokens: dict[str, dict[str, str]] = {}

    def call(user: str, method: str, path: str, body: Any = None) -> Any:
        if user not in tokens:
            tokens[user] = bearer(client, user)
        return client.open(f"/api/v1{path}", method=method, json=body, headers=tokens[user])

    return call


def _latest(api: Call) -> dict[str, Any]:
    listed = api("owner", "GET", "/models").json
    [process] = [p for p in listed["processes"] if p["process_id"] == "service_improvement"]
    newest = process["versions"][-1]["version"]
    return api("owner", "GET", f"/models/service_improvement/versions/{newest}").json


def _changed(api: Call) -> dict[str, Any]:
    """The latest version with the new task before register_input, and its form."""
    latest = _latest(api)
    forms = copy.deepcopy(latest["forms"])
    forms[NEW_TASK] = NEW_FORM
    bpmn = with_task_before(latest["bpmn"], "register_input", NEW_TASK, NEW_TASK_XML)
    return {"bpmn": bpmn, "forms": forms, "note": "增加管理评审材料准备步骤"}


def _inbox_elements(api: Call, user: str) -> list[str]:
    return [t["bpmn_id"] for t in api(user, "GET", "/tasks").json]


def test_models_list_versions_with_document_control(api: Call) -> None:
    listed = api("owner", "GET", "/models")
    assert listed.status_code == 200
    by_id = {p["process_id"]: p for p in listed.json["processes"]}
    assert set(by_id) == {"service_improvement", "change_management"}
    [v1] = by_id["service_improvement"]["versions"]
    assert set(v1) == {
        "version",
        "content_hash",
        "author",
        "approver",
        "note",
        "deployed_at",
        "running",
        "finished",
    }
    assert (v1["version"], v1["running"], v1["finished"]) == (1, 0, 0)
    assert v1["author"] == v1["approver"] == "system"
    version = api("auditor", "GET", "/models/service_improvement/versions/1").json
    assert set(version) == {"process_id", "version", "bpmn", "forms"}
    assert "register_input" in version["forms"]
    assert "review_plan" in version["forms"]
    assert version["bpmn"].lstrip().startswith("<?xml")


def test_a_draft_becomes_a_version_only_once_another_person_approves_it(
    api: Call, db: Database
) -> None:
    running = api("owner", "POST", "/instances", {"process": "service_improvement"}).json
    content = _changed(api)
    del content["note"]  # given at submission
    created = api("owner", "POST", "/models/service_improvement/drafts", content)
    assert created.status_code == 201, created.json
    assert set(created.json) == {"id", "lint"}
    assert not [f for f in created.json["lint"] if f["severity"] == "error"], created.json
    draft = created.json["id"]

    # only a submitted draft is approved, never by its author, only by an approver
    assert api("manager", "POST", f"/drafts/{draft}/approve").status_code == 409
    assert api("owner", "POST", f"/drafts/{draft}/submit", {}).status_code == 422  # no note yet
    submitted = api("owner", "POST", f"/drafts/{draft}/submit", {"note": "增加一步"})
    assert submitted.status_code == 200, submitted.json
    assert api("owner", "PUT", f"/drafts/{draft}", _changed(api)).status_code == 409
    assert api("owner", "POST", f"/drafts/{draft}/approve").status_code == 403  # four-eyes
    assert api("po1", "POST", f"/drafts/{draft}/approve").status_code == 403
    assert api("auditor", "POST", f"/drafts/{draft}/approve").status_code == 403
    with db.sessions() as session:
        assert (
            session.scalar(
                select(ProcessDefinition.version)
                .order_by(ProcessDefinition.version.desc())
                .where(ProcessDefinition.process_id == "service_improvement")
                .limit(1)
            )
            == 1
        )

    approved = api("manager", "POST", f"/drafts/{draft}/approve")
    assert approved.status_code == 201, approved.json
    assert approved.json == {"process_id": "service_improvement", "version": 2}
    assert api("manager", "POST", f"/drafts/{draft}/approve").status_code == 409

    listed = {p["process_id"]: p for p in api("auditor", "GET", "/models").json["processes"]}
    v1, v2 = listed["service_improvement"]["versions"]
    assert (v1["running"], v2["running"]) == (1, 0)
    assert (v2["author"], v2["approver"], v2["note"]) == ("owner", "manager", "增加一步")

    # the running improvement stays on v1: its first task is still register_input
    with db.sessions() as session:
        instance = session.get(Instance, running["id"])
        assert session.get(ProcessDefinition, instance.definition_id).version == 1
    # a new one starts on v2 with the new task, in the owner's inbox, with its form
    started = api("owner", "POST", "/instances", {"process": "service_improvement"}).json
    tasks = api("owner", "GET", f"/tasks?instance={started['id']}").json
    assert [t["bpmn_id"] for t in tasks] == [NEW_TASK]
    detail = api("owner", "GET", f"/tasks/{tasks[0]['id']}").json
    assert detail["title"]["en"] == NEW_FORM["title"]["en"]
    done = api("owner", "POST", f"/tasks/{tasks[0]['id']}/complete", {"summary": "本期三项改进"})
    assert done.status_code == 200, done.json
    after = api("owner", "GET", f"/tasks?instance={started['id']}").json
    assert [t["bpmn_id"] for t in after] == ["register_input"]

    log = api("auditor", "GET", "/models/log").json
    assert log["verification"]["ok"]
    kinds = [(e["type"], e["actor"], e["version"]) for e in reversed(log["entries"])]
    assert kinds[-3:] == [
        ("draft_submitted", "owner", None),
        ("draft_approved", "manager", 2),
        ("version_deployed", "manager", 2),
    ]


def test_a_rejected_draft_deploys_nothing_and_tells_the_author_why(api: Call) -> None:
    draft = api("owner", "POST", "/models/service_improvement/drafts", _changed(api)).json["id"]
    api("owner", "POST", f"/drafts/{draft}/submit", {"note": "增加一步"})
    assert api("manager", "POST", f"/drafts/{draft}/reject", {}).status_code == 422
    rejected = api("manager", "POST", f"/drafts/{draft}/reject", {"comment": "材料清单不全"})
    assert rejected.status_code == 200
    seen = api("owner", "GET", f"/drafts/{draft}").json
    assert (seen["status"], seen["comment"], seen["decided_by"]) == (
        "rejected",
        "材料清单不全",
        "manager",
    )
    versions = {p["process_id"]: p for p in api("owner", "GET", "/models").json["processes"]}
    assert len(versions["service_improvement"]["versions"]) == 1
    # the author may change a rejected draft and submit it again
    assert api("owner", "PUT", f"/drafts/{draft}", _changed(api)).status_code == 200
    assert api("owner", "POST", f"/drafts/{draft}/submit", {}).status_code == 200


def test_a_draft_with_lint_errors_is_saved_but_not_submitted(api: Call) -> None:
    content = _changed(api)
    del content["forms"][NEW_TASK]
    created = api("owner", "POST", "/models/service_improvement/drafts", content)
    assert created.status_code == 201
    errors = [f for f in created.json["lint"] if f["severity"] == "error"]
    assert [(f["element"], f["rule"]) for f in errors] == [(NEW_TASK, "form-required")]
    refused = api("owner", "POST", f"/drafts/{created.json['id']}/submit", {"note": "x"})
    assert refused.status_code == 422
    assert NEW_TASK in refused.json["details"]
    draft = api("owner", "GET", f"/drafts/{created.json['id']}").json
    assert draft["status"] == "editing"
    assert set(draft) >= {"id", "process_id", "author", "bpmn", "forms", "note", "status", "lint"}


@pytest.mark.parametrize(
    ("bpmn", "why"),
    [
        ("not xml at all", "not XML"),
        (
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><d>&e;</d>',
            "entities",
        ),
        ("<a>" * 100 + "</a>" * 100, "too deep"),
        ("<x>" + "y" * 2_100_000 + "</x>", "oversize"),
        (42, "not text"),
    ],
)
def test_what_can_never_be_a_diagram_is_422_and_stores_nothing(
    api: Call, db: Database, bpmn: Any, why: str
) -> None:
    refused = api(
        "owner", "POST", "/models/service_improvement/drafts", {"bpmn": bpmn, "forms": {}}
    )
    assert refused.status_code in (413, 422), (why, refused.json)
    listed = api("owner", "GET", "/models").json["processes"]
    assert all(not p["drafts"] for p in listed)


def test_forms_must_be_an_object_of_objects(api: Call) -> None:
    latest = _latest(api)
    for forms in ([], {"a": 1}, "x"):
        refused = api(
            "owner",
            "POST",
            "/models/service_improvement/drafts",
            {"bpmn": latest["bpmn"], "forms": forms},
        )
        assert refused.status_code == 422, forms


def test_who_may_do_what_with_the_procedure(api: Call) -> None:
    draft = api("owner", "POST", "/models/service_improvement/drafts", {}).json["id"]
    # reading: modelers, approvers, auditors; no one else
    for user, status in (
        ("owner", 200),
        ("manager", 200),
        ("auditor", 200),
        ("po1", 403),
        ("cab", 403),
        ("impl", 403),
    ):
        assert api(user, "GET", "/models").status_code == status, user
        assert api(user, "GET", f"/drafts/{draft}").status_code == status, user
        assert api(user, "GET", f"/drafts/{draft}/diff").status_code == status, user
    # drafting: modelers (not auditors, not approvers without the modeler role)
    for user, status in (("auditor", 403), ("manager", 403), ("po1", 403)):
        assert api(user, "POST", "/models/service_improvement/drafts", {}).status_code == status
    # only the author changes a draft
    assert api("admin", "PUT", f"/drafts/{draft}", _changed(api)).status_code == 403


def test_deploying_without_a_draft_is_for_administrators(api: Call, client: FlaskClient) -> None:
    xml = _latest(api)["bpmn"].replace("发起服务改进", "发起改进").encode("utf-8")
    for user, status in (("owner", 403), ("manager", 403), ("admin", 201)):
        deployed = client.post(
            "/api/v1/models",
            data=xml,
            headers={**bearer(client, user), "Content-Type": "application/xml"},
        )
        assert deployed.status_code == status, (user, deployed.json)
    [process] = [
        p
        for p in api("auditor", "GET", "/models").json["processes"]
        if p["process_id"] == "service_improvement"
    ]
    newest = process["versions"][-1]
    assert (newest["author"], newest["approver"], newest["note"]) == (
        "admin",
        "admin",
        "administrator deployment",
    )
    log = api("auditor", "GET", "/models/log").json["entries"]
    assert (log[0]["type"], log[0]["actor"], log[0]["payload"]["reason"]) == (
        "version_deployed",
        "admin",
        "administrator deployment",
    )


def test_a_draft_made_from_nothing_copies_the_latest_version(api: Call) -> None:
    created = api("owner", "POST", "/models/service_improvement/drafts", {})
    assert created.status_code == 201
    draft = api("owner", "GET", f"/drafts/{created.json['id']}").json
    latest = _latest(api)
    assert (draft["bpmn"], draft["forms"], draft["base_version"]) == (
        latest["bpmn"],
        latest["forms"],
        1,
    )
    diff = api("owner", "GET", f"/drafts/{created.json['id']}/diff").json
    assert (diff["added"], diff["removed"], diff["changed"], diff["forms_changed"]) == (
        [],
        [],
        [],
        [],
    )
    # approving it would change nothing: refused
    api("owner", "POST", f"/drafts/{created.json['id']}/submit", {"note": "无变化"})
    assert api("manager", "POST", f"/drafts/{created.json['id']}/approve").status_code == 409


def test_the_diff_names_what_the_draft_adds_and_changes(api: Call) -> None:
    draft = api("owner", "POST", "/models/service_improvement/drafts", _changed(api)).json["id"]
    diff = api("manager", "GET", f"/drafts/{draft}/diff").json
    assert NEW_TASK in diff["added"]
    assert diff["forms_changed"] == [NEW_TASK]
    assert diff["removed"] == []


def test_the_model_log_is_checked_by_verify_audit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/log.sqlite3"
    db = fresh_demo_database(url, PACK)
    rt = Runtime(db, PACK)
    actors = actors_of(db)
    latest = rt.queries.models.version(actors["owner"], "service_improvement", None)
    forms = {**latest["forms"], NEW_TASK: NEW_FORM}
    bpmn = with_task_before(latest["bpmn"], "register_input", NEW_TASK, NEW_TASK_XML)
    draft = rt.create_draft(actors["owner"], "service_improvement", bpmn, forms, "增加一步")
    rt.submit_draft(actors["owner"], draft.id)
    rt.approve_draft(actors["manager"], draft.id)
    monkeypatch.setenv("DATABASE_URL", url)
    ok = CliRunner().invoke(main, ["verify-audit"])
    assert ok.exit_code == 0, ok.output
    # two pack versions deployed, then submitted, approved, deployed
    assert "model log: 5 model log entries verified" in ok.output
    with db.transaction() as session:
        session.execute(
            update(ModelEvent)
            .where(ModelEvent.type == "draft_approved")
            .values(payload={"author": "someone else"})
        )
    broken = CliRunner().invoke(main, ["verify-audit"])
    assert broken.exit_code == 1
    assert "model log: broken at entry 4: entry 4 was altered" in broken.output
    assert not rt.queries.models.verify_log(actors["auditor"]).ok
