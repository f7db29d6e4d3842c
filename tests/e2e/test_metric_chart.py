"""The improvement owner imports a metric's history in Chromium and its page draws the
chart: the readings with an improvement's baseline and target as a band, under the
app's Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.access import Actor
from engine.persistence.database import Database
from engine.persistence.models import Instance
from engine.runtime import Runtime
from tests.helpers.browser import login, refused_by_csp
from tests.helpers.sheets import csv_text

MTTR_BY_MONTH = [4.4, 4.1, 3.8, 3.0, 2.6, 2.2]


def an_improvement_aiming_at(db: Database, code: str, baseline: float, target: float) -> None:
    rt = Runtime(db)
    started = rt.start_instance(
        Actor("owner", frozenset({"ImprovementOwner"})), "service_improvement"
    )
    with db.transaction() as session:
        instance = session.get(Instance, started.instance_id)
        assert instance is not None
        instance.data = {
            **instance.data,
            "targets": [{"code": code, "baseline": baseline, "target": target}],
        }


def test_the_metric_page_draws_its_history_chart(
    browser: Any, live_app: tuple[str, Database], artifacts: Path, tmp_path: Path
) -> None:
    base, db = live_app
    an_improvement_aiming_at(db, "MTTR", 4.0, 2.0)
    history = tmp_path / "mttr.csv"
    history.write_bytes(
        csv_text(
            [["period", "value"]]
            + [[f"2026-{m:02d}", v] for m, v in enumerate(MTTR_BY_MONTH, start=1)]
        )
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    refused = refused_by_csp(page)
    login(page, base, "owner")

    page.goto(f"{base}/metrics/import?code=MTTR")
    page.set_input_files("input[name=file]", str(history))
    page.click("form.import-form button[type=submit]")
    page.wait_for_selector("table.import-rows")
    assert page.locator("table.import-rows tbody tr").count() == 6
    page.click("form.import-confirm button[type=submit]")
    page.wait_for_url(f"{base}/metrics/MTTR")

    page.wait_for_function(
        "() => { const c = document.getElementById('metric-chart');"
        " return c && window.Chart && window.Chart.getChart(c) !== undefined; }"
    )
    drawn = page.evaluate(
        "() => { const chart = window.Chart.getChart(document.getElementById('metric-chart'));"
        " return {labels: chart.data.labels, sets: chart.data.datasets.map(d => d.label),"
        " values: chart.data.datasets[0].data, width: chart.width}; }"
    )
    assert drawn["labels"] == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    assert drawn["values"] == MTTR_BY_MONTH
    assert len(drawn["sets"]) == 3  # the readings, the improvement's baseline and target
    assert drawn["width"] > 0
    assert page.locator("table.metric-readings tbody tr").count() == 6
    page.screenshot(path=str(artifacts / "metric-history.png"), full_page=True)
    assert refused == []
    context.close()
