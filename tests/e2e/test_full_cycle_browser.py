"""The README's promise: the whole procedure, steps 1 to 8, only through the browser.

Eight people take turns in one Chromium; timers fire from the server's own
background thread, as under `make run`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from engine.persistence.database import Database
from engine.persistence.models import Record
from tests.helpers.browser import login, logout, refused_by_csp
from tests.helpers.clock import RECHECK_AFTER, FakeClock
from tests.helpers.databases import prepared_database

CLOCK = FakeClock()


@pytest.fixture
def server_with_timers(tmp_path: Path) -> Iterator[tuple[str, Database]]:
    """The served app reads the time from CLOCK, which the test moves past the re-check."""
    from web import create_app

    db = prepared_database(f"sqlite:///{tmp_path / 'browser-cycle.sqlite3'}")
    app = create_app(
        {
            "SECRET_KEY": "e2e",
            "DATABASE": db,
            "DATABASE_URL": db.url,
            "EMBEDDED_WORKER": True,
            "WORKER_INTERVAL": 0.1,
            "CLOCK": CLOCK,
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", db
    finally:
        app.extensions["csi_worker_stop"].set()
        server.shutdown()
        db.dispose()


class Person:
    """One browser tab acting as whoever is logged in."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.user: str | None = None

    def login(self, username: str) -> None:
        if self.user == username:
            self.page.goto(f"{self.base}/")
            return
        if self.user is not None:
            logout(self.page)
        login(self.page, self.base, username)
        self.user = username

    def open(self, username: str, task_name: str, detail: str | None = None) -> None:
        self.login(username)
        rows = self.page.locator("table.inbox tbody tr").filter(
            has=self.page.locator("a.task-link", has_text=task_name)
        )
        if detail:
            rows = rows.filter(has_text=detail)
        assert rows.count() >= 1, f"{username} does not see {task_name} {detail or ''}"
        rows.first.locator("a.task-link").click()
        self.page.wait_for_url("**/tasks/**")

    def submit(self) -> None:
        self.page.click("form.task-form button[type=submit]")
        self.page.wait_for_url(f"{self.base}/")

    def fill(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            field = self.page.locator(f"[name='{name}']").first
            if field.evaluate("e => e.tagName") == "SELECT":
                field.select_option(value)
            else:
                field.fill(value)

    def check(self, name: str, value: str) -> None:
        self.page.check(f"input[name='{name}'][value='{value}']")

    def text(self) -> str:
        return str(self.page.inner_text("main"))


def collect(person: Person, avail: str, mttr: str) -> None:
    for owner, value in (("po1", avail), ("po2", mttr)):
        person.open(owner, "搜集数据")
        person.fill({"period": "2026-11", "values-0-value": value, "report": f"{owner} 报告"})
        person.submit()


def test_whole_procedure_in_the_browser(
    browser: Any, server_with_timers: tuple[str, Database], artifacts: Path
) -> None:
    base, db = server_with_timers
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15000)
    refused = refused_by_csp(page)
    me = Person(page, base)

    # 1. the owner registers a customer complaint with two process owners
    me.login("owner")
    page.goto(f"{base}/instances/new")
    page.click("form button[type=submit]")
    page.wait_for_url("**/tasks/**")
    me.fill(
        {
            "source": "customer_feedback",
            "reference": "KF-2026-118",
            "description": "客户投诉：结账期间系统中断、恢复慢",
        }
    )
    me.check("process_owners", "po1")
    me.check("process_owners", "po2")
    me.submit()

    # 2. each process owner proposes metrics
    for owner, name, unit, direction in (
        ("po1", "服务可用率", "%", "higher_better"),
        ("po2", "平均修复时间", "h", "lower_better"),
    ):
        me.open(owner, "提出度量指标")
        me.fill(
            {
                "metrics-0-name": name,
                "metrics-0-unit": unit,
                "metrics-0-direction": direction,
                "metrics-0-method": "系统统计",
            }
        )
        me.submit()

    # 3. the owner defines two metrics and sets baselines and targets
    me.open("owner", "识别、定义度量项")
    assert (
        page.locator("[name='metrics-1-name']").input_value() == "平均修复时间"
    )  # prefilled from proposals
    me.fill(
        {
            "metrics-0-code": "AVAIL",
            "metrics-0-category": "quality",
            "metrics-0-owner": "po1",
            "metrics-1-code": "MTTR",
            "metrics-1-category": "efficiency",
            "metrics-1-owner": "po2",
        }
    )
    me.submit()
    me.open("owner", "确定基准和目标")
    me.fill(
        {
            "targets-0-baseline": "99.0",
            "targets-0-target": "99.9",
            "targets-1-baseline": "4",
            "targets-1-target": "2",
        }
    )
    me.submit()

    # 4. each process owner reports the measured value of their metric
    collect(me, "99.3", "3.5")

    # 5. the gap table
    me.open("owner", "分析数据，寻找差距")
    gaps = page.inner_text("table.gaps") if page.locator("table.gaps").count() else me.text()
    assert "33.3" in gaps
    assert "25" in gaps
    assert "0.6" in gaps
    assert "1.5" in gaps
    page.screenshot(path=str(artifacts / "browser-cycle-gaps.png"), full_page=True)
    me.fill({"impact": "结账期间业务中断"})
    me.submit()

    # 6. the record with two measures; rejected with a comment, revised, approved
    me.open("owner", "填写服务改进记录")
    me.fill(
        {
            "problem": "可用率不足、恢复慢",
            "root_cause": "单点数据库",
            "improvement_type": "corrective",
        }
    )
    me.fill(
        {
            "measures-0-title": "主备自动切换",
            "measures-0-responsible": "manager",
            "measures-0-due_date": "2026-12-31",
        }
    )
    me.check("measures-0-metric_codes", "AVAIL")
    page.click("[data-table-field='measures'] [data-add-row]")
    me.fill(
        {
            "measures-1-title": "故障处理知识库",
            "measures-1-responsible": "po2",
            "measures-1-due_date": "2026-12-15",
        }
    )
    me.submit()
    me.open("manager", "审核改进方案")
    me.fill({"decision": "reject", "comment": "请补充回退方案"})
    me.submit()
    me.open("owner", "填写服务改进记录")
    assert "请补充回退方案" in me.text()
    me.fill({"measures-0-rollback": "切回原主库"})
    me.submit()
    me.open("manager", "审核改进方案")
    me.fill({"decision": "approve", "comment": "同意"})
    me.submit()

    # 7. one RFC per measure: CAB approves one and rejects the other
    assessment = {
        "type": "normal",
        "risk": "medium",
        "impact": "短时切换",
        "implementation_plan": "夜间窗口",
        "rollback_plan": "回退",
    }
    for title in ("主备自动切换", "故障处理知识库"):
        me.open("manager", "变更评估", title)
        me.fill(assessment)
        me.submit()
    me.open("cab", "CAB审批", "主备自动切换")
    me.fill({"decision": "approve"})
    me.submit()
    me.open("cab", "CAB审批", "故障处理知识库")
    me.fill({"decision": "reject", "comment": "资源不足"})
    me.submit()
    me.open("impl", "实施变更", "主备自动切换")
    me.fill({"result": "success", "implemented_on": "2026-11-20"})
    me.submit()
    me.open("manager", "实施后评审", "主备自动切换")
    me.fill({"review": "实施成功"})
    me.submit()

    # 8. re-baseline, monitor, wait for the timer, collect again, achieve, verify, close
    me.open("owner", "重新建立基准和目标")
    assert "implemented" in me.text() or "已实施" in me.text()
    me.submit()
    collect(me, "99.6", "3.0")
    me.open("owner", "改进监控")
    me.fill({"outcome": "continue", "recheck_after": RECHECK_AFTER})
    me.submit()
    CLOCK.advance()  # the server's worker thread fires the re-check on its next pass
    deadline = time.monotonic() + 20
    while "搜集数据" not in me.text():
        assert time.monotonic() < deadline, "the timer never fired"
        time.sleep(0.2)
        me.login("po1")
    collect(me, "99.95", "1.8")
    me.open("owner", "改进监控")
    me.fill({"outcome": "achieved"})
    me.submit()
    me.open("owner", "填写验证信息")
    me.fill(
        {
            "verified_on": "2026-11-25",
            "method": "对比三个月监控数据",
            "evidence": "可用率 99.95%",
            "result": "effective",
        }
    )
    me.submit()
    me.open("owner", "改进关闭")
    me.fill({"summary": "目标达成"})
    me.submit()

    with db.sessions() as session:
        record = session.scalar(select(Record))
        assert record is not None
        assert record.status == "closed"
        number, instance_id = record.number, record.instance_id
    page.goto(f"{base}/instances/{instance_id}")
    assert number in me.text()
    assert re.search("已关闭|已完成|closed", me.text())
    page.screenshot(path=str(artifacts / "browser-cycle-closed.png"), full_page=True)
    assert refused == []  # every page of the cycle runs under the CSP
    context.close()
