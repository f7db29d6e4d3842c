"""The procedure's pages, as people use them through a browser's forms: 流程模型 with
each version's document control, a draft's review where an approver who is not the
author approves or rejects, the 变更履历 that prints and exports, and the model log."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from openpyxl import load_workbook

from engine.access import Actor
from engine.runtime import Runtime
from tests.helpers import html
from tests.helpers.diagrams import NEW_FORM, NEW_TASK, NEW_TASK_XML, with_task_before
from tests.helpers.pages import client_for

OWNER = Actor("owner", frozenset({"ImprovementOwner", "Modeler"}))
NOTE = "增加管理评审材料准备步骤"


def _runtime(app: Any) -> Runtime:
    runtime: Runtime = app.extensions["csi"].runtime
    return runtime


def _submitted_draft(app: Any) -> int:
    """A draft by `owner` adding a task before register_input, submitted with a note."""
    rt = _runtime(app)
    latest = rt.queries.models.version(OWNER, "service_improvement", None)
    bpmn = with_task_before(latest["bpmn"], "register_input", NEW_TASK, NEW_TASK_XML)
    saved = rt.create_draft(
        OWNER, "service_improvement", bpmn, {**latest["forms"], NEW_TASK: NEW_FORM}, NOTE
    )
    rt.submit_draft(OWNER, saved.id)
    return saved.id


def _csrf(page: Any) -> str:
    [field, *_] = html.select(page, 'input[name="csrf_token"]')
    return str(field.get("value"))


def _text(response: Any) -> str:
    return str(html.page(response).text_content())


def test_the_models_page_lists_versions_and_offers_the_modeler_to_modelers(app: Any) -> None:
    owner = client_for(app, "owner")
    page = owner.get("/models")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "/models/service_improvement/edit" in body
    assert "/models/service_improvement/history" in body
    auditor = client_for(app, "auditor")
    read_only = auditor.get("/models")
    assert read_only.status_code == 200
    assert "/models/service_improvement/history" in read_only.get_data(as_text=True)
    assert "/models/service_improvement/edit" not in read_only.get_data(as_text=True)


@pytest.mark.parametrize("user", ["po1", "cab"])
def test_people_who_neither_model_nor_audit_are_refused(app: Any, user: str) -> None:
    client = client_for(app, user)
    assert client.get("/models").status_code == 403
    assert client.get("/models/service_improvement/history").status_code == 403
    assert client.get("/models/log").status_code == 403


def test_an_approver_approves_on_the_review_page_and_the_history_shows_the_version(
    app: Any,
) -> None:
    draft_id = _submitted_draft(app)
    author = client_for(app, "owner")
    own_review = author.get(f"/models/drafts/{draft_id}")
    assert own_review.status_code == 200
    assert f"/models/drafts/{draft_id}/approve" not in own_review.get_data(as_text=True)
    # Four-eyes holds for a forged form too.
    forged = author.post(
        f"/models/drafts/{draft_id}/approve", data={"csrf_token": _csrf(html.page(own_review))}
    )
    assert forged.status_code == 403

    manager = client_for(app, "manager")
    review = manager.get(f"/models/drafts/{draft_id}")
    text = _text(review)
    assert NOTE in text
    assert NEW_TASK in text  # listed among the added elements
    page = html.page(review)
    assert html.select(page, f'form[action="/models/drafts/{draft_id}/approve"]')
    approved = manager.post(f"/models/drafts/{draft_id}/approve", data={"csrf_token": _csrf(page)})
    assert approved.status_code == 302
    assert approved.headers["Location"].endswith("/models/service_improvement/history")

    history = _text(manager.get("/models/service_improvement/history"))
    assert NOTE in history
    assert "随应用发布" in history  # the note the system wrote for version 1, in Chinese
    assert "owner" in history
    assert "manager" in history
    log = _text(manager.get("/models/log?lang=en"))
    assert "Submitted for approval" in log
    assert "Version deployed" in log
    assert "The chain is broken" not in log


def test_a_rejection_needs_a_reason_and_the_author_reads_it(app: Any) -> None:
    draft_id = _submitted_draft(app)
    manager = client_for(app, "manager")
    page = html.page(manager.get(f"/models/drafts/{draft_id}"))
    empty = manager.post(
        f"/models/drafts/{draft_id}/reject", data={"csrf_token": _csrf(page), "comment": " "}
    )
    assert empty.status_code == 302
    assert _runtime(app).queries.models.draft(OWNER, draft_id)[0].status == "submitted"
    rejected = manager.post(
        f"/models/drafts/{draft_id}/reject",
        data={"csrf_token": _csrf(page), "comment": "请补充表单说明"},
    )
    assert rejected.status_code == 302
    seen = _text(client_for(app, "owner").get(f"/models/drafts/{draft_id}"))
    assert "请补充表单说明" in seen
    versions = _runtime(app).queries.models.history(OWNER, "service_improvement")
    assert [v.version for v in versions] == [1]


def test_the_change_history_exports_as_csv_and_excel(app: Any) -> None:
    draft_id = _submitted_draft(app)
    _runtime(app).approve_draft(Actor("manager", frozenset({"ImprovementManager"})), draft_id)
    client = client_for(app, "auditor")
    exported = client.get("/models/service_improvement/history.csv?lang=en")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["Content-Disposition"]
    body = exported.get_data(as_text=True)
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0][:3] == ["Version", "Date", "Change note"]
    assert [r[0] for r in rows[1:]] == ["2", "1"]  # newest first
    assert rows[1][2:5] == [NOTE, "owner", "manager"]
    assert rows[2][2] == "deployed with the application"
    assert re.fullmatch(r"[0-9a-f]{64}", rows[1][5])

    workbook = client.get("/models/service_improvement/history.xlsx")
    assert workbook.status_code == 200
    sheet = load_workbook(io.BytesIO(workbook.get_data())).active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert [str(r[0]) for r in values[1:]] == ["2", "1"]
    assert values[1][2:5] == [NOTE, "owner", "manager"]
