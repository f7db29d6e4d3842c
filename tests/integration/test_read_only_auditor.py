"""Auditors read everything and change nothing: every command of the web app and of
the API, found by walking the URL map, answers 403 and writes nothing.

A new command that is not refused fails this test; a new URL parameter it does not
know how to fill fails it too, so nobody can add a command without deciding here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from engine.access import Actor
from engine.persistence.database import Database
from engine.persistence.models import (
    Draft,
    Event,
    HumanTask,
    Metric,
    MetricValue,
    ModelEvent,
    ProcessDefinition,
    User,
)
from engine.runtime import Runtime
from tests.helpers.api import bearer
from tests.helpers.pages import client_for, csrf_token

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Not commands: signing in and out (of one session or all), and obtaining a token, are the
# same for everyone; linting a diagram or previewing a form that is sent, not stored, is
# a read (auditors review the procedure's drafts).
NOT_COMMANDS = {
    "auth.login",
    "auth.logout",
    "auth.logout_everywhere",
    "api.token",
    "api.lint_model",
    "form_preview.preview",
}


def counts(db: Database) -> tuple[int, ...]:
    with db.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Event)) or 0,
            session.scalar(
                select(func.count()).select_from(HumanTask).where(HumanTask.claimed_by.is_not(None))
            )
            or 0,
            session.scalar(select(func.count()).select_from(ProcessDefinition)) or 0,
            session.scalar(select(func.count()).select_from(User)) or 0,
            session.scalar(select(func.count()).select_from(Draft)) or 0,
            session.scalar(select(func.count()).select_from(ModelEvent)) or 0,
            session.scalar(select(func.count()).select_from(Metric).where(Metric.active)) or 0,
            session.scalar(select(func.count()).select_from(MetricValue)) or 0,
        )


def test_every_command_refuses_the_auditor(
    app: Any, db: Database, rt: Runtime, actors: dict[str, Actor]
) -> None:
    iid = rt.start_instance(actors["owner"]).instance_id
    with db.sessions() as session:
        task_id = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid))
        user_id = session.scalar(select(User.id).where(User.username == "po1"))
    # A submitted draft by a modeler, for the draft commands to be refused on.
    modeler = Actor("owner", frozenset({"ImprovementOwner", "Modeler"}))
    latest = rt.queries.models.version(modeler, "service_improvement", None)
    draft_id = rt.create_draft(
        modeler, "service_improvement", latest["bpmn"], latest["forms"], "unchanged"
    ).id
    rt.submit_draft(modeler, draft_id)
    values = {
        "task_id": task_id,
        "instance_id": iid,
        "user_id": user_id,
        "process_id": "service_improvement",
        "draft_id": draft_id,
        "code": "AVAIL",
        "schedule_id": 1,
    }

    web = client_for(app, "auditor")
    token = csrf_token(web, "/")
    api = app.test_client()
    auditor = bearer(api, "auditor")
    before = counts(db)

    checked = []
    for rule in app.url_map.iter_rules():
        methods = (rule.methods or set()) & WRITE_METHODS
        if not methods or rule.endpoint in NOT_COMMANDS or rule.endpoint == "static":
            continue
        unknown = set(rule.arguments) - set(values)
        assert not unknown, f"{rule.rule}: add a value for {unknown} to this test"
        built = rule.build({k: values[k] for k in rule.arguments})
        assert built is not None
        url = built[1]
        for method in sorted(methods):
            if rule.rule.startswith("/api/"):
                response = api.open(
                    url,
                    method=method,
                    json={"data": {}},
                    headers=auditor,
                )
            else:
                response = web.open(url, method=method, data={"csrf_token": token})
            assert response.status_code == 403, f"{method} {rule.rule} gave {response.status_code}"
            checked.append(f"{method} {rule.rule}")

    # the commands DESIGN names are all among them
    for expected in (
        "POST /api/v1/instances",
        "POST /api/v1/tasks/<task_id>/claim",
        "POST /api/v1/tasks/<task_id>/complete",
        "POST /api/v1/models",
        "POST /instances/new",
        "POST /tasks/<task_id>",
        "POST /admin/users/new",
        "POST /api/v1/models/<process_id>/drafts",
        "POST /api/v1/drafts/<int:draft_id>/approve",
        "POST /models/drafts/<int:draft_id>/approve",
        "POST /metrics/new",
        "POST /metrics/<code>/retire",
        "POST /metrics/import/confirm",
        "POST /api/v1/metrics/catalogue",
        "PUT /api/v1/metrics/catalogue/<code>",
        "POST /api/v1/metrics/import",
    ):
        assert expected in checked, expected
    assert counts(db) == before
