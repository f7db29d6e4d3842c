"""Server-rendered pages through the Flask test client, CSRF on, as the browser uses them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from engine import queries
from engine.store import HumanTask
from tests.helpers.pages import client_for, csrf_token, login

TASK_LINK = re.compile(r"/tasks/([0-9a-f-]{36})")


def start_improvement(client: Any) -> Any:
    token = csrf_token(client, "/instances/new")
    return client.post("/instances/new", data={"csrf_token": token})


def open_tasks(db: Any, bpmn_id: str | None = None) -> list[HumanTask]:
    with db.sessions() as session:
        query = select(HumanTask).where(HumanTask.status == "open")
        if bpmn_id:
            query = query.where(HumanTask.bpmn_id == bpmn_id)
        return list(session.scalars(query).unique())


def register_input(client: Any, task_id: str, **overrides: Any) -> Any:
    data: dict[str, Any] = {
        "csrf_token": csrf_token(client, f"/tasks/{task_id}"),
        "source": "customer_feedback",
        "reference": "CF-118",
        "description": "夜间故障恢复慢",
        "related_services": "",
        "process_owners": ["po1", "po2"],
    }
    data.update(overrides)
    return client.post(f"/tasks/{task_id}", data={k: v for k, v in data.items() if v is not None})


@pytest.fixture
def owner(app: Any) -> Any:
    return client_for(app, "owner")


@pytest.fixture
def started(owner: Any, db: Any) -> str:
    """An improvement started from the page; returns its register_input task id."""
    response = start_improvement(owner)
    assert response.status_code == 302
    match = TASK_LINK.search(response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


# -- log-in -------------------------------------------------------------------------------------


def test_login_with_wrong_password_is_401(client: Any) -> None:
    response = login(client, "owner", "wrong")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.get_data(as_text=True)


def test_login_page_has_csrf_field_and_demo_hint_when_testing(client: Any) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert 'name="csrf_token"' in html
    assert "演示用户" in html


def test_unauthenticated_pages_redirect_to_login(client: Any) -> None:
    for url in ("/", "/instances", "/instances/new"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login"), url


def test_post_without_csrf_token_is_400(owner: Any) -> None:
    response = owner.post("/instances/new", data={})
    assert response.status_code == 400


# -- inbox and the first task -------------------------------------------------------------------


def test_owner_inbox_shows_register_input_after_start(owner: Any, started: str) -> None:
    html = owner.get("/").get_data(as_text=True)
    assert "登记改进输入" in html
    assert f"/tasks/{started}" in html
    assert re.search(r"SI-\d{4}-\d{4}", html)


def test_task_page_renders_form_with_chinese_select_labels(owner: Any, started: str) -> None:
    response = owner.get(f"/tasks/{started}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<select id="f-source" name="source" required' in html
    assert '<option value="customer_feedback">客户反馈意见</option>' in html
    assert 'type="checkbox" name="process_owners" value="po1"' in html
    assert '<textarea id="f-description" name="description"' in html


def test_invalid_data_is_422_with_errors_and_input_kept(
    owner: Any, started: str, db: Any, actors: Any
) -> None:
    response = register_input(owner, started, description=None, reference="KEEP-ME")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "此项为必填项" in html
    assert 'id="f-description-errors"' in html
    assert 'value="KEEP-ME"' in html  # the user's input is kept
    assert 'value="po1" checked' in html
    with db.sessions() as session:
        inbox = queries.inbox(session, actors["owner"])
        assert started in [t.id for t in inbox]  # the task is still open


def test_valid_register_input_gives_each_process_owner_their_task(
    app: Any, owner: Any, started: str, db: Any
) -> None:
    response = register_input(owner, started)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "任务已完成" in owner.get("/").get_data(as_text=True)

    tasks = {t.assignee: t.id for t in open_tasks(db, "propose_metrics")}
    assert set(tasks) == {"po1", "po2"}
    po1_html = client_for(app, "po1").get("/").get_data(as_text=True)
    po2_html = client_for(app, "po2").get("/").get_data(as_text=True)
    assert "提出度量指标" in po1_html and "提出度量指标" in po2_html
    assert tasks["po1"] in po1_html and tasks["po2"] not in po1_html
    assert tasks["po2"] in po2_html and tasks["po1"] not in po2_html


def test_table_form_posts_rows_and_prefills_the_next_form(
    app: Any, owner: Any, started: str, db: Any
) -> None:
    register_input(owner, started)
    for user, name in (("po1", "平均修复时间"), ("po2", "首次响应时间")):
        client = client_for(app, user)
        [task] = [t for t in open_tasks(db, "propose_metrics") if t.assignee == user]
        page = client.get(f"/tasks/{task.id}").get_data(as_text=True)
        assert "data-add-row" in page and "metrics-__index__-name" in page
        response = client.post(
            f"/tasks/{task.id}",
            data={
                "csrf_token": csrf_token(client, f"/tasks/{task.id}"),
                # row 3 only: rows keep their posted order, gaps in the numbering do not matter
                "metrics-3-code": "",  # the catalogue select left at "new metric"
                "metrics-3-name": name,
                "metrics-3-unit": "h",
                "metrics-3-direction": "lower_better",
                "metrics-3-method": "事件管理系统统计",
                "metrics-3-note": "",
                # an empty row left in the table is ignored
                "metrics-7-code": "",
                "metrics-7-name": "",
                "metrics-7-method": "",
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)

    [define] = open_tasks(db, "define_metrics")
    html = owner.get(f"/tasks/{define.id}").get_data(as_text=True)
    assert 'name="metrics-0-name" value="平均修复时间"' in html
    assert 'name="metrics-1-name" value="首次响应时间"' in html
    assert "首次响应时间" in html  # the proposals as context cards
    assert 'class="person-card"' in html


def test_claim_and_unclaim_from_the_inbox(owner: Any, started: str, db: Any) -> None:
    token = csrf_token(owner, "/")
    response = owner.post(f"/tasks/{started}/claim", data={"csrf_token": token})
    assert response.status_code == 302
    html = owner.get("/").get_data(as_text=True)
    assert f"/tasks/{started}/unclaim" in html
    with db.sessions() as session:
        assert session.get(HumanTask, started).claimed_by == "owner"
    owner.post(f"/tasks/{started}/unclaim", data={"csrf_token": token})
    with db.sessions() as session:
        assert session.get(HumanTask, started).claimed_by is None


# -- roles ----------------------------------------------------------------------------------------


def test_auditor_may_not_start_or_claim(app: Any, started: str) -> None:
    auditor = client_for(app, "auditor")
    token = csrf_token(auditor, "/")
    assert auditor.post("/instances/new", data={"csrf_token": token}).status_code == 403
    refused = auditor.post(f"/tasks/{started}/claim", data={"csrf_token": token})
    assert refused.status_code == 403
    assert "此账户只能查看，不能修改任何内容。" in refused.get_data(as_text=True)
    # reading is allowed, read-only
    page = auditor.get(f"/tasks/{started}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert ">提交</button>" not in html and "disabled" in html
    assert "发起改进" not in auditor.get("/").get_data(as_text=True)


def test_task_of_another_role_is_403(app: Any, started: str) -> None:
    po1 = client_for(app, "po1")
    assert po1.get(f"/tasks/{started}").status_code == 403
    token = csrf_token(po1, "/")
    refused = po1.post(f"/tasks/{started}", data={"csrf_token": token})
    assert refused.status_code == 403
    assert "此任务属于其他角色或人员。" in refused.get_data(as_text=True)


def test_a_task_claimed_by_someone_else_says_so_in_the_readers_language(
    app: Any, owner: Any, started: str
) -> None:
    owner.post(f"/tasks/{started}/claim", data={"csrf_token": csrf_token(owner, "/")})
    admin = client_for(app, "admin")
    refused = admin.post(f"/tasks/{started}/claim", data={"csrf_token": csrf_token(admin, "/")})
    assert refused.status_code == 409
    assert "此任务已由 owner 认领；如需办理，请其先释放。" in refused.get_data(as_text=True)


def test_process_owner_may_not_start(app: Any) -> None:
    po1 = client_for(app, "po1")
    assert po1.get("/instances/new").status_code == 403


def test_an_engine_refusal_reads_in_the_readers_language(app: Any, started: str) -> None:
    """The engine says why in English (for logs and the API); a page says it in zh."""
    cab = client_for(app, "cab")
    refused = cab.post(f"/tasks/{started}/claim", data={"csrf_token": csrf_token(cab, "/")})
    assert refused.status_code == 403
    assert "此操作需要角色：服务改进负责人。" in refused.get_data(as_text=True)


# -- language -------------------------------------------------------------------------------------


def test_language_switch_to_english_sticks(owner: Any, started: str) -> None:
    assert ">待办</a>" in owner.get("/").get_data(as_text=True)
    html = owner.get("/?lang=en").get_data(as_text=True)
    assert ">Inbox</a>" in html and ">Improvements</a>" in html and ">Start</a>" in html
    assert "Register improvement input" in html  # task name from the form's English title
    page = owner.get(f"/tasks/{started}").get_data(as_text=True)
    assert '<option value="customer_feedback">Customer feedback</option>' in page
    assert ">Inbox</a>" in owner.get("/instances").get_data(as_text=True)
    assert ">待办</a>" in owner.get("/?lang=zh_CN").get_data(as_text=True)


# -- instances -------------------------------------------------------------------------------------


def test_instance_list_and_page(owner: Any, started: str, db: Any) -> None:
    register_input(owner, started)
    [task] = [t for t in open_tasks(db, "propose_metrics") if t.assignee == "po1"]
    listing = owner.get("/instances").get_data(as_text=True)
    number = re.search(r"SI-\d{4}-\d{4}", listing)
    assert number
    assert "客户反馈意见" in listing

    response = owner.get(f"/instances/{task.instance_id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert number.group(0) in html
    assert "提出度量指标" in html  # where it stands
    assert f'data-url="/instances/{task.instance_id}/diagram.bpmn"' in html
    assert "register_input" in html  # completed element for the diagram, and history
    assert "vendor/bpmn-js/bpmn-navigated-viewer.production.min.js" in html

    diagram = owner.get(f"/instances/{task.instance_id}/diagram.bpmn")
    assert diagram.status_code == 200
    assert diagram.mimetype == "application/xml"
    assert b'id="service_improvement"' in diagram.data


def test_unknown_instance_is_404(owner: Any) -> None:
    assert owner.get("/instances/999999").status_code == 404


def test_start_redirects_to_the_first_task(owner: Any, started: str) -> None:
    page = owner.get(f"/tasks/{started}")
    assert page.status_code == 200
    assert "登记改进输入" in page.get_data(as_text=True)
