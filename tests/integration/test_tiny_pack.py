"""A procedure pack with no code (tests/packs/tiny: pack.json, one diagram, two forms)
runs on the generic engine as it is: its roles, its record, its forms, through the
engine and through the pages, in Chinese and in English. A new step needs only the
diagram and a form file."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from engine.access import Actor
from engine.commands.setup import fresh_demo_database
from engine.errors import Forbidden, ValidationFailed
from engine.pack import Pack, load
from engine.persistence.database import Database
from engine.runtime import Runtime
from tests.helpers.databases import BACKENDS, postgres_url
from tests.helpers.pages import TASK_LINK, client_for, csrf_token

POSTGRES_URL = postgres_url()
TINY = Path(__file__).resolve().parents[1] / "packs" / "tiny"
# On PostgreSQL the pack gets a schema of its own: the shared test schema stays as it is.
POSTGRES_SCHEMA = "tiny_pack"
# The users of the tiny pack are made as an administrator would: a password that passes.
PASSWORD = "tiny-pack-1"

REQUESTER = Actor("req", frozenset({"Requester"}))
APPROVER = Actor("appr", frozenset({"Approver"}))
REQUEST = {
    "subject": "笔记本电脑",
    "category": "hardware",
    "amount": 6800,
    "approver": "appr",
    "needed_within": "P14D",
}


def schema_database(url: str, schema: str, pack: Pack) -> Database:
    """fresh_demo_database in a PostgreSQL schema of its own (that one drops `public`)."""
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    separator = "&" if "?" in url else "?"
    db = Database(f"{url}{separator}options=-csearch_path%3D{schema}")
    Runtime(db, pack).init_database()
    return db


def drop_schema(url: str, schema: str) -> None:
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="module")
def pack() -> Pack:
    return load(TINY)


@pytest.fixture(scope="module", params=BACKENDS)
def tiny_db(
    request: pytest.FixtureRequest, pack: Pack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A fresh database holding the tiny pack and one user per role of it."""
    if request.param == "sqlite":
        db = fresh_demo_database(f"sqlite:///{tmp_path_factory.mktemp('tiny')}/tiny.sqlite3", pack)
    elif POSTGRES_URL is None:
        pytest.skip("PostgreSQL tests need CSI_TEST_DATABASE_URL")
    else:
        db = schema_database(POSTGRES_URL, POSTGRES_SCHEMA, pack)
    runtime = Runtime(db, pack)
    runtime.upsert_user("req", PASSWORD, ["Requester"], "小王")
    runtime.upsert_user("appr", PASSWORD, ["Approver"], "老李")
    try:
        yield db
    finally:
        db.dispose()
        if request.param == "postgres" and POSTGRES_URL is not None:
            drop_schema(POSTGRES_URL, POSTGRES_SCHEMA)


@pytest.fixture
def tiny(tiny_db: Database, pack: Pack) -> Runtime:
    return Runtime(tiny_db, pack)


# ---- the pack itself ---------------------------------------------------------------------------


def test_the_pack_is_data_only_and_deploys(pack: Pack, tiny: Runtime) -> None:
    assert pack.name == "tiny"
    assert pack.main_process == "tiny_request"
    assert not pack.services
    assert not pack.prefills
    assert not pack.checks
    assert pack.successor is None
    assert not pack.demo_users
    assert [f.name for f in pack.diagram_files()] == ["tiny.bpmn"]
    assert tiny.forms.task_ids() == ["approve_request", "describe_request"]
    assert list(pack.roles.lane_roles) == ["Requester", "Approver"]
    assert pack.roles.label("Approver", "zh_CN") == "审批人"
    assert pack.roles.label("Approver", "en") == "Approver"
    # the diagram's lanes are named by the roles' zh names
    assert pack.roles.for_lane("申请人") == "Requester"
    model = tiny.queries.process_models()["tiny_request"]
    assert model.record_prefix == "TR"
    assert list(model.record_statuses) == ["drafting", "awaiting_approval", "decided"]
    assert [p.process_id for p in tiny.queries.startable(REQUESTER)] == ["tiny_request"]
    assert tiny.queries.startable(APPROVER) == []


# ---- through the engine ------------------------------------------------------------------------


def _record(tiny: Runtime, instance_id: int) -> Any:
    record = tiny.queries.instance(REQUESTER, instance_id).record
    assert record is not None
    return record


def test_the_runtime_runs_it_and_the_record_follows_the_diagram(tiny: Runtime) -> None:
    started = tiny.start_instance(REQUESTER)
    iid = started.instance_id
    record = _record(tiny, iid)
    assert re.fullmatch(r"TR-\d{4}-\d{4}", record.number)
    assert record.status == "drafting"
    assert record.raised_by == "req"

    [first] = started.open_tasks
    [row] = [t for t in tiny.queries.inbox(REQUESTER) if t.instance_id == iid]
    assert (row.id, row.bpmn_id, row.role, row.name) == (
        first,
        "describe_request",
        "Requester",
        "填写申请",
    )
    assert [t for t in tiny.queries.inbox(APPROVER) if t.instance_id == iid] == []
    with pytest.raises(Forbidden):
        tiny.complete_task(first, APPROVER, REQUEST)
    with pytest.raises(Forbidden):  # only the start event's lane starts it
        tiny.start_instance(APPROVER)

    # the form's options, defaults and checks, from the form file alone
    page, may_work = tiny.queries.task_page(REQUESTER, first)
    assert may_work
    assert page.data == {"needed_within": "P7D"}
    assert page.schema["properties"]["approver"]["enum"] == ["appr"]
    with pytest.raises(ValidationFailed) as refused:  # x-options: only approvers
        tiny.complete_task(first, REQUESTER, {**REQUEST, "approver": "req"})
    assert [(e.path, e.code) for e in refused.value.errors] == [("approver", "enum")]
    with pytest.raises(ValidationFailed) as refused:  # x-checks, with the form's words
        tiny.complete_task(first, REQUESTER, {**REQUEST, "needed_within": "soon"})
    [error] = refused.value.errors
    assert (error.path, error.code) == ("needed_within", "duration")
    assert error.texts["en"] == "Give an ISO 8601 duration such as P7D."
    assert _record(tiny, iid).status == "drafting"

    [second] = tiny.complete_task(first, REQUESTER, REQUEST).open_tasks
    assert _record(tiny, iid).status == "awaiting_approval"
    [row] = [t for t in tiny.queries.inbox(APPROVER) if t.instance_id == iid]
    assert (row.bpmn_id, row.role, row.label) == ("approve_request", "Approver", "笔记本电脑")
    page, may_work = tiny.queries.task_page(APPROVER, second)
    assert may_work
    assert page.data == {"note": "Re: 笔记本电脑"}
    assert page.context == {"subject": "笔记本电脑", "category": "hardware", "amount": 6800}

    done = tiny.complete_task(second, APPROVER, {"decision": "approve", "note": "同意"})
    assert done.status == "completed"
    assert done.open_tasks == []
    record = _record(tiny, iid)
    assert record.status == "decided"
    assert record.closed_on is not None
    assert record.fields["decided_by"] == "appr"  # record_actor
    assert [(e["decision"], e["note"], e["by"]) for e in record.fields["decisions"]] == [
        ("approve", "同意", "appr")
    ]
    # x-record: the subject is a column of the register
    admin = Actor("admin", frozenset({"Admin"}))
    [entry] = [r for r in tiny.queries.records(admin) if r["instance_id"] == iid]
    assert entry["subject"] == "笔记本电脑"
    assert entry["number"] == record.number

    # its history verifies and replays to the same end
    events = tiny.queries.history(REQUESTER, iid)
    assert events[0]["type"] == "instance_started"
    assert events[-1]["type"] == "instance_completed"
    verification = tiny.queries.verify(admin, iid)
    assert verification.ok
    assert verification.events == len(events)
    replayed = tiny.queries.replay(admin, iid)
    assert replayed.ok
    assert replayed.mismatch is None
    assert replayed.steps == len(events)


# ---- through the pages -------------------------------------------------------------------------


@pytest.fixture
def tiny_app(tiny_db: Database, pack: Pack, tmp_path: Path) -> Any:
    from web import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "tiny-secret",
            "PACK": pack,
            "DATABASE": tiny_db,
            "DATABASE_URL": tiny_db.url,
            "WTF_CSRF_ENABLED": True,
        }
    )
    app.instance_path = str(tmp_path)
    return app


def _html(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return str(response.get_data(as_text=True))


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def inbox_row(html: str, needle: str) -> tuple[str, str]:
    """The task id and the text of the inbox row whose markup holds `needle`."""
    rows = [r for r in re.findall(r"<tr[ >].*?</tr>", html, re.DOTALL) if needle in r]
    assert len(rows) == 1, f"{needle} in {len(rows)} rows"
    task = TASK_LINK.search(rows[0])
    assert task
    return task.group(1), _text(rows[0])


def shown(html: str, variable: str) -> str:
    """How the instance page shows a variable: its label, then its value."""
    found = re.search(rf'data-key="{variable}">(.*?)</section>', html, re.DOTALL)
    assert found, f"{variable} is not shown"
    return _text(found.group(1))


def test_the_login_page_names_no_other_procedure(tiny_app: Any) -> None:
    """The demo hint lists the pack's demo users: this pack has none."""
    html = _html(tiny_app.test_client().get("/login"))
    assert 'name="csrf_token"' in html
    assert "ImprovementOwner" not in html
    assert "演示用户" not in html


def test_the_pages_run_it_in_chinese_and_english(tiny_app: Any) -> None:
    req = client_for(tiny_app, "req", PASSWORD)
    start_page = _html(req.get("/instances/new"))
    assert "小型申请" in start_page
    assert "申请人填写申请，审批人审批。" in start_page
    token = csrf_token(req, "/instances/new")
    started = req.post("/instances/new", data={"csrf_token": token, "process": "tiny_request"})
    assert started.status_code == 302
    match = TASK_LINK.search(started.headers["Location"])
    assert match, started.headers["Location"]
    first = match.group(1)

    # the task's row: its name from the diagram, its role's label from pack.json, the record
    inbox = _html(req.get("/"))
    _, row = inbox_row(inbox, f"/tasks/{first}")
    found = re.fullmatch(r"填写申请 申请人 (TR-\d{4}-\d{4}) .*", row)
    assert found, row
    number = found.group(1)
    link = re.search(rf'href="/instances/(\d+)">{number}<', inbox)
    assert link
    instance_id = int(link.group(1))

    form = _html(req.get(f"/tasks/{first}"))
    assert "填写申请内容" in form
    assert "申请事项" in form
    assert "期望完成时限" in form
    assert '<option value="hardware">硬件采购</option>' in form
    assert '<option value="appr">老李 (appr)</option>' in form  # x-options users:Approver
    assert 'value="P7D"' in form  # the field's default
    posted = {
        "csrf_token": csrf_token(req, f"/tasks/{first}"),
        **{k: str(v) for k, v in REQUEST.items()},
    }
    refused = _html(req.post(f"/tasks/{first}", data={**posted, "needed_within": "soon"}), 422)
    assert "请填写 ISO 8601 时长，如 P7D。" in refused  # the form's own x-checks message
    assert req.post(f"/tasks/{first}", data=posted).status_code == 302

    page = _html(req.get(f"/instances/{instance_id}"))
    assert f"{number} 小型申请" in _text(page)
    assert "记录状态: 待审批" in _text(page)  # the status the diagram puts on the next task
    assert shown(page, "subject") == "申请事项 笔记本电脑"
    assert shown(page, "category") == "申请类别 硬件采购"
    assert shown(page, "amount") == "金额（元） 6800"
    # with no variables.json, what the forms declare is the instance's data, not "other"
    assert "暂无数据" not in page
    assert 'class="other-data"' not in page
    page = _html(req.get(f"/instances/{instance_id}?lang=en"))
    assert f"{number} Tiny request" in _text(page)
    assert "Record status: Awaiting approval" in _text(page)
    assert shown(page, "category") == "Category Hardware"
    assert shown(page, "amount") == "Amount (CNY) 6800"

    appr = client_for(tiny_app, "appr", PASSWORD)
    refused = _html(appr.get("/instances/new"), 403)  # the start event lies in another lane
    assert "您的角色不能发起任何流程。" in refused
    assert "服务改进负责人" not in refused
    # in English a task reads by its form's title; the details column is the task_label
    second, row = inbox_row(_html(appr.get("/?lang=en")), f'href="/instances/{instance_id}"')
    assert row.startswith(f"Decide on the request Approver {number} 笔记本电脑 "), row
    form = _html(appr.get(f"/tasks/{second}"))
    assert "Decision" in form
    assert '<option value="approve">Approve</option>' in form
    assert ">Re: 笔记本电脑<" in form  # the prefilled note
    _, row = inbox_row(_html(appr.get("/?lang=zh_CN")), f"/tasks/{second}")
    assert row.startswith(f"审批申请 审批人 {number} 笔记本电脑 "), row
    decided = appr.post(
        f"/tasks/{second}",
        data={
            "csrf_token": csrf_token(appr, f"/tasks/{second}"),
            "decision": "approve",
            "note": "同意采购",
        },
    )
    assert decided.status_code == 302
    page = _html(appr.get(f"/instances/{instance_id}"))
    assert "记录状态: 已审批" in _text(page)  # the end event's status
    assert shown(page, "decision") == "审批结论 同意"
    page = _html(appr.get(f"/instances/{instance_id}?lang=en"))
    assert "Record status: Decided" in _text(page)
    assert shown(page, "decision") == "Decision Approve"


# ---- a new step: a diagram and a form file ----------------------------------------------------------

CHECK_BUDGET_FORM = """{
  "title": {"zh-CN": "核对预算", "en": "Check the budget"},
  "context": ["subject", "amount"],
  "schema": {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
      "within_budget": {"title": "预算内", "x-title-en": "Within budget", "type": "boolean"}
    },
    "required": ["within_budget"],
    "additionalProperties": false
  }
}
"""


def with_check_budget(xml: str) -> str:
    """The tiny diagram with a `check_budget` step (approver's lane) before the approval."""
    task = """<bpmn:userTask id="check_budget" name="核对预算">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="record_status" value="awaiting_approval" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>Flow_describe_request_to_approve_request</bpmn:incoming>
      <bpmn:outgoing>Flow_check_budget_to_approve_request</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="Flow_check_budget_to_approve_request" sourceRef="check_budget" """
    task += 'targetRef="approve_request" />\n    '
    edits = [
        (
            "<bpmn:flowNodeRef>approve_request</bpmn:flowNodeRef>",
            "<bpmn:flowNodeRef>check_budget</bpmn:flowNodeRef>\n"
            "        <bpmn:flowNodeRef>approve_request</bpmn:flowNodeRef>",
        ),
        (
            'sourceRef="describe_request" targetRef="approve_request"',
            'sourceRef="describe_request" targetRef="check_budget"',
        ),
        (
            "<bpmn:incoming>Flow_describe_request_to_approve_request</bpmn:incoming>\n"
            "      <bpmn:outgoing>Flow_approve_request_to_end</bpmn:outgoing>",
            "<bpmn:incoming>Flow_check_budget_to_approve_request</bpmn:incoming>\n"
            "      <bpmn:outgoing>Flow_approve_request_to_end</bpmn:outgoing>",
        ),
        ('<bpmn:userTask id="approve_request"', task + '<bpmn:userTask id="approve_request"'),
    ]
    for old, new in edits:
        assert xml.count(old) == 1, old
        xml = xml.replace(old, new)
    return xml


def test_a_new_step_needs_only_the_diagram_and_a_form(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    shutil.copytree(TINY, folder)
    pack = load(folder)
    db = fresh_demo_database(f"sqlite:///{tmp_path}/new-step.sqlite3", pack)
    try:
        rt = Runtime(db, pack)
        rt.upsert_user("appr", PASSWORD, ["Approver"], "老李")
        admin = Actor("admin", frozenset({"Admin"}))
        xml = with_check_budget((folder / "tiny.bpmn").read_text(encoding="utf-8"))
        # the form comes first: a user task without one is refused at deploy
        with pytest.raises(ValidationFailed) as refused:
            rt.deploy(admin, xml.encode("utf-8"), "tiny.bpmn")
        assert "check_budget" in refused.value.details
        (folder / "forms" / "check_budget.json").write_text(CHECK_BUDGET_FORM, encoding="utf-8")
        deployed = rt.deploy(admin, xml.encode("utf-8"), "tiny.bpmn")
        assert deployed.created
        assert deployed.definitions[0].version == 2

        started = rt.start_instance(REQUESTER)
        [check] = rt.complete_task(started.open_tasks[0], REQUESTER, REQUEST).open_tasks
        page, _ = rt.queries.task_page(APPROVER, check)
        assert page.task.bpmn_id == "check_budget"
        assert page.task.role == "Approver"
        assert page.form.title["en"] == "Check the budget"
        assert page.context == {"subject": "笔记本电脑", "amount": 6800}
        with pytest.raises(ValidationFailed):
            rt.complete_task(check, APPROVER, {})
        [approve] = rt.complete_task(check, APPROVER, {"within_budget": True}).open_tasks
        assert rt.queries.task_page(APPROVER, approve)[0].task.bpmn_id == "approve_request"
        done = rt.complete_task(approve, APPROVER, {"decision": "reject"})
        assert done.status == "completed"
        view = rt.queries.instance(APPROVER, started.instance_id)
        assert view.instance.data["within_budget"] is True
        assert view.record is not None
        assert view.record.status == "decided"
        assert rt.queries.replay(Actor("admin", frozenset({"Admin"})), started.instance_id).ok
    finally:
        db.dispose()
