"""Rules across fields and passes: what a form starts from, and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from engine.access import Actor
from engine.errors import ValidationFailed
from engine.persistence.database import Database
from engine.queries.tasks import TaskPage
from engine.runtime import Runtime
from tests.cycle import MEASURES, METRICS, REGISTER, TARGETS, Driver
from tests.helpers.doors import RuntimeDoor


@pytest.fixture
def door(rt: Runtime, db: Database, actors: dict[str, Actor]) -> RuntimeDoor:
    return RuntimeDoor(rt, db, actors)


def page(door: RuntimeDoor, task_id: str) -> TaskPage:
    """The task's page as someone who may read every task sees it."""
    return door.rt.queries.task_page(door.actors["admin"], task_id)[0]


def _to_targets(door: RuntimeDoor) -> tuple[Driver, int]:
    driver = Driver(door)
    iid = door.start("owner")
    driver.do("owner", iid, "register_input", REGISTER)
    for owner in ("po1", "po2"):
        driver.do(owner, iid, "propose_metrics", {"metrics": [{"name": "x", "method": "y"}]})
    driver.do("owner", iid, "define_metrics", {"metrics": METRICS})
    return driver, iid


def _to_plan(door: RuntimeDoor) -> tuple[Driver, int]:
    """An improvement whose gaps are analysed: record_improvement is open."""
    driver, iid = _to_targets(door)
    driver.do("owner", iid, "set_baseline_targets", {"targets": TARGETS})
    driver.collect(iid, 99.3, 3.5)
    driver.do("owner", iid, "analyse_gaps", {"impact": "i"})
    return driver, iid


def _plan(measures: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "problem": "p",
        "root_cause": "r",
        "improvement_type": "corrective",
        "measures": measures,
    }


def _refused(call: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as refused:
        call()
    return refused.value.details


def test_targets_cover_each_metric_once(door: RuntimeDoor) -> None:
    driver, iid = _to_targets(door)
    task = driver.one("owner", iid, "set_baseline_targets")["id"]
    owner = door.actors["owner"]
    errors = _refused(lambda: door.rt.complete_task(task, owner, {"targets": TARGETS[:1]}))
    assert errors == {"targets": ["a metric has no row"]}
    twice = [TARGETS[0], TARGETS[0], TARGETS[1]]
    errors = _refused(lambda: door.rt.complete_task(task, owner, {"targets": twice}))
    assert errors == {"targets/1/code": ["duplicate"]}
    stray = [*TARGETS, {"code": "CSAT", "baseline": 4, "target": 4.5}]
    errors = _refused(lambda: door.rt.complete_task(task, owner, {"targets": stray}))
    assert list(errors) == ["targets/2/code"]  # the option list already refuses it
    door.rt.complete_task(task, owner, {"targets": TARGETS})  # still open, now accepted


def test_metric_codes_are_unique(door: RuntimeDoor) -> None:
    driver = Driver(door)
    iid = door.start("owner")
    driver.do("owner", iid, "register_input", REGISTER)
    for owner in ("po1", "po2"):
        driver.do(owner, iid, "propose_metrics", {"metrics": [{"name": "x", "method": "y"}]})
    task = driver.one("owner", iid, "define_metrics")["id"]
    same = [METRICS[0], {**METRICS[1], "code": METRICS[0]["code"]}]
    errors = _refused(lambda: door.rt.complete_task(task, door.actors["owner"], {"metrics": same}))
    assert errors == {"metrics/1/code": ["duplicate"]}


def test_a_process_owner_reports_only_their_own_metrics(door: RuntimeDoor) -> None:
    driver, iid = _to_targets(door)
    driver.do("owner", iid, "set_baseline_targets", {"targets": TARGETS})
    mine = driver.one("po2", iid, "collect_data")["id"]
    theirs = {"period": "2026-11", "values": [{"code": "AVAIL", "value": 50.0}], "report": "r"}
    errors = _refused(lambda: door.rt.complete_task(mine, door.actors["po2"], theirs))
    assert errors == {"values/0/code": ["not a metric you own"]}


def test_measures_need_distinct_titles(door: RuntimeDoor) -> None:
    driver, iid = _to_plan(door)
    task = driver.one("owner", iid, "record_improvement")["id"]
    plan = _plan([MEASURES[0], {**MEASURES[1], "title": MEASURES[0]["title"]}])
    errors = _refused(lambda: door.rt.complete_task(task, door.actors["owner"], plan))
    assert errors == {"measures/1/title": ["duplicate"]}


def test_a_second_review_starts_empty_and_a_revised_plan_from_the_last(
    door: RuntimeDoor,
) -> None:
    driver, iid = _to_plan(door)
    plan = _plan(MEASURES)
    driver.do("owner", iid, "record_improvement", plan)
    driver.do("manager", iid, "review_plan", {"decision": "reject", "comment": "补充回退方案"})

    revised = page(door, driver.one("owner", iid, "record_improvement")["id"])
    assert revised.data["problem"] == "p"
    assert len(revised.data["measures"]) == 2
    assert revised.context["comment"] == "补充回退方案"  # shown, not carried into the form
    driver.do("owner", iid, "record_improvement", plan)

    second = page(door, driver.one("manager", iid, "review_plan")["id"])
    assert "decision" not in second.data
    assert "comment" not in second.data


def test_a_recheck_interval_the_timer_cannot_read_is_refused(
    door: RuntimeDoor, rt: Runtime
) -> None:
    from engine.forms.options import OptionSource
    from engine.forms.validation import validate_submission

    form = rt.forms.get("monitor_progress")
    source = OptionSource(lambda role: [], {})
    for bad in ("P1W2D", "P", "7 days"):
        data = {"outcome": "continue", "recheck_after": bad}
        with pytest.raises(ValidationFailed) as refused:
            validate_submission(form, source, data)
        assert "recheck_after" in refused.value.details, bad
    for good in ("P7D", "P2W", "PT12H", "P1DT2H"):
        validate_submission(form, source, {"outcome": "continue", "recheck_after": good})
    with pytest.raises(ValidationFailed):
        validate_submission(form, source, {"outcome": "achieved", "note": float("inf")})


def test_proposals_naming_catalogue_metrics_take_the_catalogue_code(door: RuntimeDoor) -> None:
    driver = Driver(door)
    iid = door.start("owner")
    driver.do("owner", iid, "register_input", REGISTER)
    propose = driver.one("po1", iid, "propose_metrics")["id"]
    schema = page(door, propose).schema
    codes = schema["properties"]["metrics"]["items"]["properties"]["code"]["enum"]
    assert {"AVAIL", "MTTR", "CSAT"} <= set(codes)
    door.complete(
        "po1", propose, {"metrics": [{"code": "AVAIL", "name": "可用率", "method": "监控"}]}
    )
    driver.do(
        "po2",
        iid,
        "propose_metrics",
        {"metrics": [{"name": "mean time to repair", "method": "工单"}]},
    )
    metrics = page(door, driver.one("owner", iid, "define_metrics")["id"]).data["metrics"]
    assert [(m["code"], m["unit"], m["direction"], m["owner"]) for m in metrics] == [
        ("AVAIL", "%", "higher_better", "po1"),
        ("MTTR", "h", "lower_better", "po2"),
    ]
    assert metrics[0]["name"] == "可用率"
    assert metrics[1]["method"] == "工单"


def test_an_rfc_starts_from_the_measure_it_implements(door: RuntimeDoor) -> None:
    driver, iid = _to_plan(door)
    measures = [{**MEASURES[0], "rollback": "切回原主库"}, MEASURES[1]]
    plan = _plan(measures)
    driver.do("owner", iid, "record_improvement", plan)
    driver.do("manager", iid, "review_plan", {"decision": "approve"})
    first = driver.one("manager", iid, "assess_change", label=MEASURES[0]["title"])
    data = page(door, first["id"]).data
    assert data["planned_date"] == MEASURES[0]["due_date"]
    assert data["rollback_plan"] == "切回原主库"
    assert data["implementation_plan"] == MEASURES[0]["description"]
    second = driver.one("manager", iid, "assess_change", label=MEASURES[1]["title"])
    assert "rollback_plan" not in page(door, second["id"]).data  # none given
