"""The metric pages through the test client, CSRF on: the catalogue with its filters,
creating, editing and retiring a metric, a metric's history (chart data, bands and
readings, usable without JavaScript), and importing a file with preview and confirm."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from engine.access import Actor
from engine.persistence.database import Database
from engine.persistence.models import Instance
from tests.helpers import html
from tests.helpers.pages import client_for, csrf_token
from tests.helpers.sheets import csv_text, xlsx


@pytest.fixture
def owner(app: Any) -> Any:
    return client_for(app, "owner")


def codes_listed(client: Any, query: str = "") -> list[str]:
    doc = html.page(client.get(f"/metrics{query}"))
    return [str(row.get("data-code")) for row in html.select(doc, "table.metrics tbody tr")]


def runtime(app: Any) -> Any:
    return app.extensions["csi"].runtime


def test_the_catalogue_lists_and_filters(app: Any) -> None:
    po1 = client_for(app, "po1")
    listed = codes_listed(po1)
    assert {"AVAIL", "MTTR", "COST_TKT"} <= set(listed)
    assert codes_listed(po1, "?category=cost") == ["COST_TKT"]
    assert codes_listed(po1, "?status=retired") == []
    doc = html.page(po1.get("/metrics"))
    # a process owner reads the catalogue and may not change it
    assert html.select(doc, 'a[href="/metrics/new"]') == []
    assert html.select(doc, "table.metrics form") == []
    assert html.select(doc, 'nav.mainnav a[href="/metrics"][aria-current="page"]')


def test_owner_creates_edits_and_retires_a_metric(owner: Any) -> None:
    form = {
        "csrf_token": csrf_token(owner, "/metrics/new"),
        "code": "CHG_BACK",
        "name_zh": "变更回退率",
        "name_en": "Change rollback rate",
        "category": "quality",
        "unit": "%",
        "direction": "lower_better",
        "method": "变更记录",
        "owner": "po2",
    }
    created = owner.post("/metrics/new", data=form)
    assert created.status_code == 302
    assert created.headers["Location"].endswith("/metrics/CHG_BACK")
    assert "CHG_BACK" in codes_listed(owner)

    edited = owner.post(
        "/metrics/CHG_BACK/edit",
        data={**form, "csrf_token": csrf_token(owner, "/metrics/CHG_BACK/edit"), "unit": "‰"},
    )
    assert edited.status_code == 302
    doc = html.page(owner.get("/metrics"))
    row = html.select_one(doc, 'table.metrics tr[data-code="CHG_BACK"]')
    assert "‰" in html.text_of(row)

    retired = owner.post(
        "/metrics/CHG_BACK/retire", data={"csrf_token": csrf_token(owner, "/metrics")}
    )
    assert retired.status_code == 302
    assert "CHG_BACK" not in codes_listed(owner)
    assert codes_listed(owner, "?status=retired") == ["CHG_BACK"]
    page = html.page(owner.get("/metrics/CHG_BACK"))
    assert html.select(page, 'form[action="/metrics/CHG_BACK/reactivate"]')


def test_an_invalid_metric_is_422_with_the_field_marked(owner: Any) -> None:
    response = owner.post(
        "/metrics/new",
        data={"csrf_token": csrf_token(owner, "/metrics/new"), "code": "bad code", "unit": ""},
    )
    assert response.status_code == 422
    doc = html.page(response)
    assert html.select(doc, "#f-code-errors li")
    assert html.select(doc, "#f-name_zh-errors li")
    assert html.select_one(doc, "#f-code").get("aria-invalid") == "true"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/metrics/new"),
        ("post", "/metrics/new"),
        ("get", "/metrics/AVAIL/edit"),
        ("post", "/metrics/AVAIL/edit"),
        ("post", "/metrics/AVAIL/retire"),
        ("get", "/metrics/import"),
        ("post", "/metrics/import"),
        ("post", "/metrics/import/confirm"),
    ],
)
def test_a_process_owner_may_not_change_the_catalogue(
    app: Any, rt: Any, method: str, path: str
) -> None:
    po1 = client_for(app, "po1")
    token = csrf_token(po1, "/inbox")
    data = {"csrf_token": token, "name_zh": "改", "rows": "[]"} if method == "post" else None
    response = getattr(po1, method)(path, data=data)
    assert response.status_code == 403
    assert rt.queries.metric(Actor("po1", frozenset({"ProcessOwner"})), "AVAIL").active


def test_the_metric_page_has_its_chart_data_bands_and_readings(
    app: Any, owner: Any, db: Database, actors: dict[str, Actor]
) -> None:
    rt = runtime(app)
    started = rt.start_instance(actors["owner"], "service_improvement")
    with db.transaction() as session:
        instance = session.get(Instance, started.instance_id)
        assert instance is not None
        instance.data = {
            **instance.data,
            "targets": [{"code": "AVAIL", "baseline": 99.0, "target": 99.9}],
        }
    rt.import_readings_file(
        actors["owner"],
        csv_text([["period", "value"], ["2026-02", "99.2"], ["2026-01", "98.9"]]),
        "a.csv",
        "AVAIL",
    )
    response = owner.get("/metrics/AVAIL")
    assert response.status_code == 200
    doc = html.page(response)
    chart = json.loads(html.text_of(html.select_one(doc, "script#metric-chart-data")))
    assert chart["points"] == [
        {"period": "2026-01", "value": 98.9},
        {"period": "2026-02", "value": 99.2},
    ]
    [band] = chart["bands"]
    assert (band["baseline"], band["target"]) == (99.0, 99.9)
    assert html.select_one(doc, "canvas#metric-chart").get("role") == "img"
    assert html.select(doc, 'script[src$="vendor/chartjs/chart.umd.min.js"]')
    # the tables hold the same without JavaScript
    band_row = html.select_one(doc, "table.metric-bands tbody tr")
    assert band["number"] in html.text_of(band_row)
    readings = [
        [html.text_of(td) for td in html.select(tr, "td")]
        for tr in html.select(doc, "table.metric-readings tbody tr")
    ]
    assert [r[:3] for r in readings] == [["2026-01", "98.9", "owner"], ["2026-02", "99.2", "owner"]]
    # no inline script: the CSP would refuse it
    for script in html.select(doc, "script:not([src])"):
        assert script.get("type") == "application/json"


def test_an_unknown_metric_is_404(owner: Any) -> None:
    assert owner.get("/metrics/NOPE").status_code == 404


def upload(client: Any, content: bytes, filename: str, code: str | None = None) -> Any:
    data: dict[str, Any] = {
        "csrf_token": csrf_token(client, "/metrics/import"),
        "file": (io.BytesIO(content), filename),
    }
    if code:
        data["code"] = code
    return client.post("/metrics/import", data=data, content_type="multipart/form-data")


def test_import_previews_then_records_on_confirm(owner: Any, app: Any) -> None:
    content = xlsx([["统计周期", "数值"], ["2026-Q1", 3.9], ["2026-Q2", 3.1]])
    preview = upload(owner, content, "mttr.xlsx", "MTTR")
    assert preview.status_code == 200
    doc = html.page(preview)
    lines = [r.get("data-line") for r in html.select(doc, "table.import-rows tbody tr")]
    assert lines == ["2", "3"]
    assert codes_readings(owner, "MTTR") == []  # nothing recorded yet
    confirm = html.select_one(doc, "form.import-confirm")
    fields = {i.get("name"): i.get("value") for i in html.select(confirm, "input")}
    recorded = owner.post("/metrics/import/confirm", data=fields)
    assert recorded.status_code == 302
    assert recorded.headers["Location"].endswith("/metrics/MTTR")
    assert codes_readings(owner, "MTTR") == [["2026-Q1", "3.9"], ["2026-Q2", "3.1"]]


def codes_readings(client: Any, code: str) -> list[list[str]]:
    doc = html.page(client.get(f"/metrics/{code}"))
    return [
        [html.text_of(td) for td in html.select(tr, "td")][:2]
        for tr in html.select(doc, "table.metric-readings tbody tr")
    ]


def test_one_bad_row_lists_every_error_and_offers_no_confirm(owner: Any) -> None:
    content = csv_text(
        [
            ["code", "period", "value"],
            ["AVAIL", "2026-01", "99"],
            ["AVAIL", "2026-02", "abc"],
            ["NOPE", "2026-03", "1"],
        ]
    )
    response = upload(owner, content, "bad.csv")
    assert response.status_code == 422
    doc = html.page(response)
    errors = {
        tr.get("data-line"): [li.get("data-error") for li in html.select(tr, "li")]
        for tr in html.select(doc, "table.import-rows tbody tr.row-error")
    }
    assert errors == {"3": ["bad_number"], "4": ["unknown_code"]}
    assert html.select(doc, "form.import-confirm") == []
    assert codes_readings(owner, "AVAIL") == []


def test_a_file_that_is_no_table_is_refused(owner: Any) -> None:
    response = upload(owner, b"\x00\x01binary", "x.csv")
    assert response.status_code == 422
    doc = html.page(response)
    assert html.select(doc, ".import-preview .alert-error")
