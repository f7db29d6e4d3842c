"""A person in a real browser: the owner registers an improvement, a process owner proposes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers.browser import login, logout


def test_owner_starts_and_process_owner_proposes(
    browser: Any, live_server: str, artifacts: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    base = live_server

    login(page, base, "owner")
    page.goto(f"{base}/instances/new")
    page.click("form button[type=submit]")
    page.wait_for_url("**/tasks/**")
    assert "登记改进输入" in page.content()
    page.select_option("select[name=source]", "customer_feedback")
    page.fill("input[name=reference]", "KF-2026-118")
    page.fill("textarea[name=description]", "客户投诉：结账期间系统中断")
    page.check("input[name=process_owners][value=po1]")
    page.check("input[name=process_owners][value=po2]")
    page.click("form.task-form button[type=submit]")
    page.wait_for_url(f"{base}/")
    assert "登记改进输入" not in page.inner_text("main")
    logout(page)

    login(page, base, "po1")
    inbox = page.inner_text("main")
    assert "提出度量指标" in inbox
    page.screenshot(path=str(artifacts / "inbox-po1.png"), full_page=True)
    page.click("a:has-text('提出度量指标')")
    page.wait_for_url("**/tasks/**")
    page.fill("input[name=metrics-0-name]", "服务可用率")
    page.fill("input[name=metrics-0-unit]", "%")
    page.select_option("select[name=metrics-0-direction]", "higher_better")
    page.fill("[name=metrics-0-method]", "监控系统按月统计")
    page.click("form.task-form button[type=submit]")
    page.wait_for_url(f"{base}/")
    assert "提出度量指标" not in page.inner_text("main")
    page.screenshot(path=str(artifacts / "inbox-po1-done.png"), full_page=True)
    logout(page)

    # po2's own proposal task is still waiting for po2
    login(page, base, "po2")
    assert "提出度量指标" in page.inner_text("main")
    context.close()
