"""The dashboard in a real browser: `manager` lands on it after logging in, sees each
figure as a chart and a table (screenshot test-artifacts/dashboard.png), clicks a bar
of the stage chart and gets the register filtered to that stage; the period report
(周期报告) of the quarter shows and prints.

The charts are drawn by Chart.js, vendored by the front-end build into
web/static/vendor/chartjs/; where the build has not put it there, the page is its
tables alone and the click goes through the table's link beside the chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.persistence.database import Database
from engine.runtime import Runtime
from tests.cycle import REGISTER, Driver
from tests.helpers.actors import actors_of
from tests.helpers.browser import login, refused_by_csp
from tests.helpers.doors import RuntimeDoor

CHART_JS = Path(__file__).resolve().parents[2] / "web/static/vendor/chartjs/chart.umd.min.js"


@pytest.fixture
def improvements(live_app: tuple[str, Database]) -> tuple[str, dict[str, str]]:
    """The live server's base URL and three records: one closed after a full cycle, one
    waiting for its plan's review, one just registered from an internal audit."""
    base, db = live_app
    runtime = Runtime(db)
    door = RuntimeDoor(runtime, db, actors_of(db))
    driver = Driver(door)
    closed = driver.run().instance_id
    review = door.start("owner")
    driver.to_first_review(review)
    audit = door.start("owner")
    driver.do("owner", audit, "register_input", {**REGISTER, "source": "internal_audit"})
    numbers = runtime.queries.record_numbers({closed, review, audit})
    return base, {"closed": numbers[closed], "review": numbers[review], "audit": numbers[audit]}


def _register_numbers(page: Any) -> set[str]:
    page.wait_for_selector("table.register")
    return set(
        page.locator("table.register tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.number)"
        )
    )


def test_the_dashboard_draws_its_figures_and_links_to_the_register(
    browser: Any, improvements: tuple[str, dict[str, str]], artifacts: Path
) -> None:
    base, numbers = improvements
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    refused = refused_by_csp(page)
    login(page, base, "manager", inbox=False)
    assert page.url == f"{base}/dashboard"

    stages = page.locator('section[data-figure="open_by_stage"]')
    rows = stages.locator("table tbody tr")
    assert rows.count() == 2  # in review, and defining metrics
    charts = page.locator("canvas[data-chart]")
    # every figure but the overdue tasks (nothing is late here) has its chart
    assert charts.count() == 6
    assert page.locator('section[data-figure="overdue_tasks"] canvas').count() == 0
    drawn = CHART_JS.is_file()
    if drawn:
        page.wait_for_selector('section[data-figure="open_by_stage"] canvas[data-drawn="1"]')
        assert page.locator('canvas[data-drawn="1"]').count() == 6
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)

    review_row = rows.filter(has_text="审核中")
    if drawn:
        # the bar of the "in review" stage, where Chart.js put it on the canvas
        canvas = stages.locator("canvas")
        index = canvas.evaluate("c => JSON.parse(c.dataset.chart).labels.indexOf('审核中')")
        x, y = canvas.evaluate(
            "(c, i) => { const bar = c.chart.getDatasetMeta(0).data[i];"
            " return [bar.x, (bar.y + bar.base) / 2]; }",
            index,
        )
        canvas.click(position={"x": x, "y": y})
    else:
        review_row.locator("a").click()
    page.wait_for_url("**/improvements?**stage=in_review**")
    assert _register_numbers(page) == {numbers["review"]}

    page.goto(f"{base}/dashboard")
    page.locator('section[data-figure="sources"] table a').filter(has_text="1").first.click()
    page.wait_for_url("**/improvements?source=**")
    assert len(_register_numbers(page)) == 1

    page.goto(f"{base}/dashboard")
    page.click("header.page-head a[href*='/reports/']")
    page.wait_for_url("**/reports/*-Q*")
    assert page.locator('section[data-section="closed"] table tbody tr').count() == 1
    page.emulate_media(media="print")
    assert not page.locator(".period-picker").is_visible()
    page.screenshot(path=str(artifacts / "period-report-print.png"), full_page=True)
    assert errors == []
    assert refused == []
    context.close()
