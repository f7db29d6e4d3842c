"""The metric catalogue kept through the engine: create, edit, retire and reactivate a
metric; import its history from CSV and xlsx, all rows or none. Who may (the
improvement owner and administrators) is also a column of the access table."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from engine.access import Actor
from engine.commands.metrics import ImportRejected
from engine.errors import Forbidden, NotFound, ValidationFailed
from engine.metrics import catalogue, importing
from engine.persistence.database import Database
from engine.persistence.models import MetricValue
from engine.runtime import Runtime
from tests.cycle import REGISTER
from tests.helpers.sheets import csv_text, xlsx

NEW = {
    "name_zh": "变更回退率",
    "name_en": "Change rollback rate",
    "category": "quality",
    "unit": "%",
    "direction": "lower_better",
    "method": "变更管理记录按季统计",
    "owner": "po1",
}


def values_of(db: Database, code: str) -> list[tuple[str, float, str | None, int | None]]:
    with db.sessions() as session:
        return [
            (v.period, v.value, v.recorded_by, v.instance_id)
            for v in session.scalars(
                select(MetricValue).where(MetricValue.code == code).order_by(MetricValue.period)
            )
        ]


def count_values(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(MetricValue)) or 0


def catalogue_offered(rt: Runtime, actors: dict[str, Actor]) -> list[str]:
    """The catalogue a process owner's proposal form offers."""
    owner = actors["owner"]
    started = rt.start_instance(owner, "service_improvement")
    registered = rt.complete_task(started.open_tasks[0], owner, REGISTER)
    task_id = next(
        t
        for t in registered.open_tasks
        if rt.queries.open_task(t).assignee == "po1"  # type: ignore[union-attr]
    )
    page, _ = rt.queries.task_page(actors["po1"], task_id)
    code = page.schema["properties"]["metrics"]["items"]["properties"]["code"]
    return list(code["enum"])


def test_create_edit_retire_and_reactivate(rt: Runtime, actors: dict[str, Actor]) -> None:
    owner = actors["owner"]
    assert rt.create_metric(owner, " chg_back ", NEW) == "CHG_BACK"
    created = rt.queries.metric(owner, "CHG_BACK")
    assert created.as_dict() == {"code": "CHG_BACK", "active": True, **NEW}

    rt.update_metric(owner, "CHG_BACK", {**NEW, "unit": "‰", "owner": ""})
    edited = rt.queries.metric(owner, "CHG_BACK")
    assert (edited.unit, edited.owner, edited.name_zh) == ("‰", "", NEW["name_zh"])

    rt.retire_metric(owner, "CHG_BACK")
    assert not rt.queries.metric(owner, "CHG_BACK").active
    assert "CHG_BACK" in {m.code for m in rt.queries.metrics(owner, active=False)}
    assert "CHG_BACK" not in {m.code for m in rt.queries.metrics(owner, active=True)}

    rt.reactivate_metric(actors["admin"], "CHG_BACK")
    assert rt.queries.metric(owner, "CHG_BACK").active


def test_the_catalogue_filters_by_category(rt: Runtime, actors: dict[str, Actor]) -> None:
    found = rt.queries.metrics(actors["po1"], category="cost")
    assert [m.code for m in found] == ["COST_TKT"]


def test_a_retired_metric_is_no_longer_offered_and_keeps_its_history(
    rt: Runtime, db: Database, actors: dict[str, Actor]
) -> None:
    owner = actors["owner"]
    assert "MTBF" in catalogue_offered(rt, actors)
    rt.import_readings_file(
        owner, csv_text([["period", "value"], ["2026-01", "700"]]), "h.csv", "MTBF"
    )
    rt.retire_metric(owner, "MTBF")
    offered = catalogue_offered(rt, actors)
    assert "MTBF" not in offered
    assert "AVAIL" in offered
    history = rt.queries.metric_history(owner, "MTBF")
    assert not history.metric.active
    assert [(r.period, r.value) for r in history.readings] == [("2026-01", 700.0)]
    assert values_of(db, "MTBF") == [("2026-01", 700.0, "owner", None)]


@pytest.mark.parametrize(
    ("code", "values", "errors"),
    [
        ("", NEW, {"code": [catalogue.REQUIRED]}),
        ("9LIVES", NEW, {"code": [catalogue.INVALID_CODE]}),
        ("AVAIL", NEW, {"code": [catalogue.TAKEN]}),
        ("NEW_ONE", {**NEW, "name_zh": " "}, {"name_zh": [catalogue.REQUIRED]}),
        ("NEW_ONE", {**NEW, "unit": "x" * 17}, {"unit": [catalogue.TOO_LONG]}),
        ("NEW_ONE", {**NEW, "category": "speed"}, {"category": [catalogue.UNKNOWN_CHOICE]}),
        ("NEW_ONE", {**NEW, "direction": "up"}, {"direction": [catalogue.UNKNOWN_CHOICE]}),
        ("NEW_ONE", {**NEW, "owner": "nobody"}, {"owner": [catalogue.UNKNOWN_USER]}),
    ],
)
def test_invalid_metrics_are_refused_field_by_field(
    rt: Runtime, actors: dict[str, Actor], code: str, values: dict[str, Any], errors: Any
) -> None:
    before = len(rt.queries.metrics(actors["owner"]))
    with pytest.raises(ValidationFailed) as refused:
        rt.create_metric(actors["owner"], code, values)
    assert refused.value.details == errors
    assert len(rt.queries.metrics(actors["owner"])) == before


def test_editing_an_unknown_metric_is_not_found(rt: Runtime, actors: dict[str, Actor]) -> None:
    with pytest.raises(NotFound):
        rt.update_metric(actors["owner"], "NOPE", NEW)
    with pytest.raises(NotFound):
        rt.retire_metric(actors["owner"], "NOPE")


@pytest.mark.parametrize("who", ["po1", "manager", "auditor", "cab"])
def test_others_may_not_keep_the_catalogue(
    rt: Runtime, db: Database, actors: dict[str, Actor], who: str
) -> None:
    actor = actors[who]
    attempts = [
        lambda: rt.create_metric(actor, "NEW_ONE", NEW),
        lambda: rt.update_metric(actor, "AVAIL", {**NEW, "name_zh": "改"}),
        lambda: rt.retire_metric(actor, "AVAIL"),
        lambda: rt.reactivate_metric(actor, "AVAIL"),
        lambda: rt.import_readings_file(
            actor, csv_text([["period", "value"], ["2026-01", "1"]]), "h.csv", "AVAIL"
        ),
        lambda: rt.queries.preview_import(
            actor, b"period,value\r\n2026-01,1\r\n", "h.csv", "AVAIL"
        ),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden):
            attempt()
    avail = rt.queries.metric(actor, "AVAIL")
    assert (avail.name_zh, avail.active) == ("服务可用率", True)
    with pytest.raises(NotFound):
        rt.queries.metric(actor, "NEW_ONE")
    assert values_of(db, "AVAIL") == []


def test_a_good_csv_is_previewed_then_recorded(
    rt: Runtime, db: Database, actors: dict[str, Actor]
) -> None:
    owner = actors["owner"]
    content = csv_text(
        [["code", "period", "value"], ["AVAIL", "2026-01", "99.2"], ["MTTR", "2026-01", "3.5"]]
    )
    preview = rt.queries.preview_import(owner, content, "history.csv", None)
    assert preview.ok
    assert count_values(db) == 0  # a preview records nothing
    recorded = rt.import_readings_file(owner, content, "history.csv")
    assert len(recorded.rows) == 2
    assert values_of(db, "AVAIL") == [("2026-01", 99.2, "owner", None)]
    assert values_of(db, "MTTR") == [("2026-01", 3.5, "owner", None)]


def test_a_good_xlsx_is_recorded_for_the_metric_it_is_imported_for(
    rt: Runtime, db: Database, actors: dict[str, Actor]
) -> None:
    content = xlsx([["统计周期", "数值"], ["2026-Q1", 3.9], ["2026-Q2", 3.1]])
    rt.import_readings_file(actors["admin"], content, "mttr.xlsx", "MTTR")
    assert values_of(db, "MTTR") == [
        ("2026-Q1", 3.9, "admin", None),
        ("2026-Q2", 3.1, "admin", None),
    ]


def test_one_bad_row_and_nothing_is_recorded(
    rt: Runtime, db: Database, actors: dict[str, Actor]
) -> None:
    owner = actors["owner"]
    rt.import_readings_file(
        owner, csv_text([["period", "value"], ["2025-12", "98"]]), "a.csv", "AVAIL"
    )
    before = count_values(db)
    content = csv_text(
        [
            ["code", "period", "value"],
            ["AVAIL", "2026-01", "99.0"],
            ["AVAIL", "2026-02", "99.1"],
            ["UNKNOWN", "2026-02", "1"],
            ["AVAIL", "2026-03", "n/a"],
            ["AVAIL", "2026-02", "99.3"],
            ["AVAIL", "2025-12", "97"],
        ]
    )
    with pytest.raises(ImportRejected) as rejected:
        rt.import_readings_file(owner, content, "history.csv")
    assert rejected.value.details == {
        "4": [importing.UNKNOWN_CODE],
        "5": [importing.BAD_NUMBER],
        "6": [importing.DUPLICATE_IN_FILE],
        "7": [importing.ALREADY_RECORDED],
    }
    assert [r.line for r in rejected.value.preview.rows] == [2, 3, 4, 5, 6, 7]
    assert count_values(db) == before


def test_rows_sent_back_from_a_preview_are_checked_again(
    rt: Runtime, db: Database, actors: dict[str, Actor]
) -> None:
    """The preview page posts its rows back: a row changed since (or another import of
    the same period in between) is refused when recording."""
    owner = actors["owner"]
    rows = [{"line": 2, "code": "CSAT", "period": "2026-01", "value": 4.2}]
    rt.import_readings(owner, rows)
    with pytest.raises(ImportRejected) as rejected:
        rt.import_readings(owner, rows)
    assert rejected.value.details == {"2": [importing.ALREADY_RECORDED]}
    with pytest.raises(ImportRejected) as empty:
        rt.import_readings(owner, [])
    assert empty.value.details == {"file": [importing.EMPTY]}
    assert values_of(db, "CSAT") == [("2026-01", 4.2, "owner", None)]


def test_the_history_shows_each_improvements_baseline_and_target(
    rt: Runtime, db: Database, actors: dict[str, Actor]
) -> None:
    from engine.persistence.models import Instance

    owner = actors["owner"]
    started = rt.start_instance(owner, "service_improvement")
    with db.transaction() as session:
        instance = session.get(Instance, started.instance_id)
        assert instance is not None
        instance.data = {
            **instance.data,
            "targets": [{"code": "FRT", "baseline": 30, "target": 15}],
        }
    rt.import_readings_file(
        owner, csv_text([["period", "value"], ["2026-02", "28"], ["2025-Q4", "31"]]), "f.csv", "FRT"
    )
    history = rt.queries.metric_history(actors["manager"], "FRT")
    assert [(r.period, r.value) for r in history.readings] == [("2025-Q4", 31.0), ("2026-02", 28.0)]
    [band] = history.bands
    assert (band.instance_id, band.baseline, band.target) == (started.instance_id, 30.0, 15.0)
    assert band.number.startswith("SI-")
    assert history.chart()["bands"] == [{"number": band.number, "baseline": 30.0, "target": 15.0}]
    # a process owner who has no part in the improvement does not see its band
    assert rt.queries.metric_history(actors["po2"], "FRT").bands == []
