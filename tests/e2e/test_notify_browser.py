"""In Chromium: an administrator sets a quarterly review schedule, the worker's pass
starts the quarter's improvement, and the owner finds it counted in the header and
listed under notifications, linking to the task."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from engine.persistence.database import Database
from engine.runtime import Runtime
from tests.helpers.browser import login, logout


def test_a_schedule_set_in_the_browser_starts_a_review_the_owner_is_told_of(
    browser: Any, live_app: tuple[str, Database], artifacts: Path
) -> None:
    base, db = live_app
    page = browser.new_page()
    login(page, base, "admin")
    # By address, not by words: the pages' Chinese is added when the translations are.
    page.click('nav.mainnav a[href="/admin/schedules"]')
    page.click('a[href="/admin/schedules/new"]')
    page.fill("#f-name", "季度服务改进评审")
    page.fill("#f-period", "R/2026-01-01T00:00:00+08:00/P3M")
    page.select_option("#f-owner", "owner")
    page.check('input[name="process_owners"][value="po1"]')
    page.click("form.user-form button[type=submit]")
    row = page.locator("tr[data-schedule]")
    expect(row).to_contain_text("季度服务改进评审")
    page.screenshot(path=str(artifacts / "notify-schedules.png"), full_page=True)
    logout(page)

    now = datetime.now(UTC)
    started = Runtime(db, clock=lambda: now).worker_pass(now).reviews
    assert len(started) == 1

    login(page, base, "owner")
    expect(page.locator("[data-open-tasks]")).to_have_text("1")
    page.click("a.notices-link")
    notice = page.locator("tr[data-notice]")
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text("登记改进输入")
    page.screenshot(path=str(artifacts / "notify-notifications.png"), full_page=True)
    notice.get_by_role("link").click()
    expect(page).to_have_url(f"{base}/tasks/{page.url.rsplit('/', 1)[-1]}")
    expect(page.locator("#f-source")).to_have_value("periodic_review")
    page.screenshot(path=str(artifacts / "notify-task.png"), full_page=True)
