"""Server-rendered pages through the Flask test client, CSRF on, as the browser uses them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from engine.persistence.models import HumanTask
from engine.queries import instances
from tests.helpers import html
from tests.helpers.pages import TASK_LINK, client_for, csrf_token, login


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
    assert "用户名或密码错误" in html.text_of(
        html.select_one(html.page(response), ".flashes .alert-error")
    )


def test_login_page_has_csrf_field_and_demo_hint_when_testing(client: Any) -> None:
    doc = html.page(client.get("/login"))
    assert html.select_one(doc, 'form[action^="/login"] input[name="csrf_token"]').get("value")
    assert html.text_of(html.select_one(doc, ".hint strong")) == "演示用户"


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
    doc = html.page(owner.get("/"))
    assert "登记改进输入" in html.texts(doc, "table.inbox a.task-link")
    assert html.select(doc, f'table.inbox a.task-link[href="/tasks/{started}"]')
    assert any(
        re.fullmatch(r"SI-\d{4}-\d{4}", n) for n in html.texts(doc, "table.inbox a.record-no")
    )


def test_task_page_renders_form_with_chinese_select_labels(owner: Any, started: str) -> None:
    response = owner.get(f"/tasks/{started}")
    doc = html.page(response)
    assert response.status_code == 200
    source = html.select_one(doc, 'select#f-source[name="source"]')
    assert source.get("required") is not None
    assert html.texts(source, 'option[value="customer_feedback"]') == ["客户反馈意见"]
    assert html.select(doc, 'input[type="checkbox"][name="process_owners"][value="po1"]')
    assert html.select(doc, 'textarea#f-description[name="description"]')


def test_invalid_data_is_422_with_errors_and_input_kept(
    owner: Any, started: str, db: Any, actors: Any
) -> None:
    response = register_input(owner, started, description=None, reference="KEEP-ME")
    doc = html.page(response)
    assert response.status_code == 422
    assert "此项为必填项" in html.text_of(html.select_one(doc, "#f-description-errors"))
    # the user's input is kept
    assert html.select_one(doc, 'input[name="reference"]').get("value") == "KEEP-ME"
    assert (
        html.select_one(doc, 'input[name="process_owners"][value="po1"]').get("checked") is not None
    )
    with db.sessions() as session:
        inbox = instances.inbox(session, actors["owner"])
        assert started in [t.id for t in inbox]  # the task is still open


def test_valid_register_input_gives_each_process_owner_their_task(
    app: Any, owner: Any, started: str, db: Any
) -> None:
    response = register_input(owner, started)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    flashes = html.texts(html.page(owner.get("/")), ".flashes .alert")
    assert any("任务已完成" in text for text in flashes)

    tasks = {t.assignee: t.id for t in open_tasks(db, "propose_metrics")}
    assert set(tasks) == {"po1", "po2"}
    po1_page = html.page(client_for(app, "po1").get("/"))
    po2_page = html.page(client_for(app, "po2").get("/"))
    assert "提出度量指标" in html.texts(po1_page, "table.inbox a.task-link")
    assert "提出度量指标" in html.texts(po2_page, "table.inbox a.task-link")

    def links_to_task(doc: Any, task_id: str) -> bool:
        return bool(html.select(doc, f'table.inbox a.task-link[href="/tasks/{task_id}"]'))

    def mentions_task(doc: Any, task_id: str) -> bool:
        return any(task_id in url for url in html.urls(doc)) or task_id in html.text_of(doc)

    assert links_to_task(po1_page, tasks["po1"])
    assert not mentions_task(po1_page, tasks["po2"])
    assert links_to_task(po2_page, tasks["po2"])
    assert not mentions_task(po2_page, tasks["po1"])


def test_table_form_posts_rows_and_prefills_the_next_form(
    app: Any, owner: Any, started: str, db: Any
) -> None:
    register_input(owner, started)
    for user, name in (("po1", "平均修复时间"), ("po2", "首次响应时间")):
        client = client_for(app, user)
        [task] = [t for t in open_tasks(db, "propose_metrics") if t.assignee == user]
        form = html.page(client.get(f"/tasks/{task.id}"))
        assert html.select(form, "button[data-add-row]")
        assert html.select(form, 'template[data-row-template] [name="metrics-__index__-name"]')
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
    doc = html.page(owner.get(f"/tasks/{define.id}"))
    assert html.select_one(doc, 'input[name="metrics-0-name"]').get("value") == "平均修复时间"
    assert html.select_one(doc, 'input[name="metrics-1-name"]').get("value") == "首次响应时间"
    cards = html.select(doc, ".context-panel .person-card")  # the proposals as context cards
    assert cards
    assert any("首次响应时间" in html.text_of(card) for card in cards)


def test_claim_and_unclaim_from_the_inbox(owner: Any, started: str, db: Any) -> None:
    token = csrf_token(owner, "/")
    response = owner.post(f"/tasks/{started}/claim", data={"csrf_token": token})
    assert response.status_code == 302
    assert html.select(html.page(owner.get("/")), f'form[action="/tasks/{started}/unclaim"]')
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
    assert "此账户只能查看，不能修改任何内容。" in html.text_of(
        html.select_one(html.page(refused), ".error-message")
    )
    # reading is allowed, read-only
    response = auditor.get(f"/tasks/{started}")
    assert response.status_code == 200
    doc = html.page(response)
    assert "提交" not in html.texts(doc, "button")  # no submit button
    assert html.select(doc, "form.task-form [disabled]")
    assert "发起改进" not in html.text_of(html.page(auditor.get("/")))


def test_task_of_another_role_is_403(app: Any, started: str) -> None:
    po1 = client_for(app, "po1")
    assert po1.get(f"/tasks/{started}").status_code == 403
    token = csrf_token(po1, "/")
    refused = po1.post(f"/tasks/{started}", data={"csrf_token": token})
    assert refused.status_code == 403
    assert "此任务属于其他角色或人员。" in html.text_of(
        html.select_one(html.page(refused), ".error-message")
    )


def test_a_task_claimed_by_someone_else_says_so_in_the_readers_language(
    app: Any, owner: Any, started: str
) -> None:
    owner.post(f"/tasks/{started}/claim", data={"csrf_token": csrf_token(owner, "/")})
    admin = client_for(app, "admin")
    refused = admin.post(f"/tasks/{started}/claim", data={"csrf_token": csrf_token(admin, "/")})
    assert refused.status_code == 409
    message = html.text_of(html.select_one(html.page(refused), ".error-message"))
    assert "此任务已由 owner 认领；如需办理，请其先释放。" in message


def test_process_owner_may_not_start(app: Any) -> None:
    po1 = client_for(app, "po1")
    assert po1.get("/instances/new").status_code == 403


def test_an_engine_refusal_reads_in_the_readers_language(app: Any, started: str) -> None:
    """The engine says why in English (for logs and the API); a page says it in zh."""
    cab = client_for(app, "cab")
    refused = cab.post(f"/tasks/{started}/claim", data={"csrf_token": csrf_token(cab, "/")})
    assert refused.status_code == 403
    assert "此操作需要角色：服务改进负责人。" in html.text_of(
        html.select_one(html.page(refused), ".error-message")
    )


# -- language -------------------------------------------------------------------------------------


def test_language_switch_to_english_sticks(owner: Any, started: str) -> None:
    def nav(url: str) -> list[str]:
        return html.texts(html.page(owner.get(url)), "nav.mainnav a")

    assert "待办" in nav("/")
    doc = html.page(owner.get("/?lang=en"))
    assert {"Inbox", "Improvements", "Start"} <= set(html.texts(doc, "nav.mainnav a"))
    # task name from the form's English title
    assert "Register improvement input" in html.texts(doc, "table.inbox a.task-link")
    task = html.page(owner.get(f"/tasks/{started}"))
    assert html.texts(task, 'select#f-source option[value="customer_feedback"]') == [
        "Customer feedback"
    ]
    assert "Inbox" in nav("/instances")
    assert "待办" in nav("/?lang=zh_CN")


# -- instances -------------------------------------------------------------------------------------


def test_instance_list_and_page(owner: Any, started: str, db: Any) -> None:
    register_input(owner, started)
    [task] = [t for t in open_tasks(db, "propose_metrics") if t.assignee == "po1"]
    listing = html.page(owner.get("/instances"))
    link = html.select_one(listing, f'a.record-no[href="/instances/{task.instance_id}"]')
    number = html.text_of(link)
    assert re.fullmatch(r"SI-\d{4}-\d{4}", number)
    row = next(link.iterancestors("tr"))
    assert "客户反馈意见" in html.text_of(row)

    response = owner.get(f"/instances/{task.instance_id}")
    doc = html.page(response)
    assert response.status_code == 200
    assert html.text_of(html.select_one(doc, "h1 .record-no")) == number
    assert any("提出度量指标" in t for t in html.texts(doc, "ul.active-list li"))  # where it stands
    diagram = html.select_one(doc, "#diagram")
    assert diagram.get("data-url") == f"/instances/{task.instance_id}/diagram.bpmn"
    # completed element for the diagram, and history
    assert "register_input" in json.loads(diagram.get("data-done"))
    assert "register_input" in html.texts(doc, "table.history code")
    assert html.select(doc, 'script[src$="vendor/bpmn-js/bpmn-navigated-viewer.production.min.js"]')

    diagram = owner.get(f"/instances/{task.instance_id}/diagram.bpmn")
    assert diagram.status_code == 200
    assert diagram.mimetype == "application/xml"
    assert b'id="service_improvement"' in diagram.data


def test_unknown_instance_is_404(owner: Any) -> None:
    assert owner.get("/instances/999999").status_code == 404


def test_start_redirects_to_the_first_task(owner: Any, started: str) -> None:
    response = owner.get(f"/tasks/{started}")
    assert response.status_code == 200
    assert html.text_of(html.select_one(html.page(response), "h1")) == "登记改进输入"


def test_whoever_may_read_an_improvement_downloads_its_history(
    app: Any, owner: Any, started: str, db: Any
) -> None:
    """DESIGN section 7: an instance's exports follow who may read it, as its page does."""
    register_input(owner, started)  # po1 and po2 now each have a proposal to make
    [task] = open_tasks(db, "propose_metrics")[:1]
    iid = task.instance_id
    doc = html.page(owner.get(f"/instances/{iid}"))
    assert f"/instances/{iid}/history.csv" in html.urls(doc)
    for username in ("owner", "po1", "auditor"):
        response = client_for(app, username).get(f"/instances/{iid}/history.csv")
        assert response.status_code == 200, username
        assert response.mimetype == "text/csv"
        assert response.get_data(as_text=True).lstrip("\ufeff").startswith("instance_id,seq")
    assert client_for(app, "cab").get(f"/instances/{iid}/history.json").status_code == 404
