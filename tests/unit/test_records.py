"""What a diagram declares of its record (engine.workflow.model) and how the register's
row follows it (engine.projections.records), over small diagrams, without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from engine.persistence.records import RecordRow
from engine.projections import records
from engine.workflow.model import (
    Element,
    ProcessModel,
    RecordLog,
    read_models,
    record_status_problems,
    task_label_problem,
)
from engine.workflow.safe_xml import safe_tree


def props(**values: str) -> str:
    entries = "".join(
        f'<spiffworkflow:property name="{name}" value="{value}" />'
        for name, value in values.items()
    )
    return (
        "<bpmn:extensionElements><spiffworkflow:properties>"
        f"{entries}</spiffworkflow:properties></bpmn:extensionElements>"
    )


def diagram(*processes: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
        'id="d" targetNamespace="x">' + "".join(processes) + "</bpmn:definitions>"
    ).encode("utf-8")


IMPROVE_PROPS = props(
    name_en="Improvement",
    documentation_en="What it is for",
    record_prefix="SI",
    task_label="reference",
    **{
        "record_status:open": "已登记 | Open",
        "record_status:review": "审核",
        "record_status: done ": "",
    },
)
REGISTER_PROPS = props(name_en="Register", record_status="open", record_actor="registrar")
REVIEW_PROPS = props(
    record_status="review", record_log="reviews", record_log_fields=" decision  comment "
)
END_PROPS = props(record_status="done", name_en="Done")
RECORDED = f"""
<bpmn:process id="improve" name="改进" isExecutable="true">
  <bpmn:documentation>  改进说明  </bpmn:documentation>
  {IMPROVE_PROPS}
  <bpmn:property id="pv" name="pv" />
  <bpmn:laneSet id="ls">
    <bpmn:lane id="L1" name="Owner">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>review</bpmn:flowNodeRef>
    </bpmn:lane>
    <bpmn:lane id="L2" name="Manager"><bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane>
  </bpmn:laneSet>
  <bpmn:startEvent id="start" name="开始"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
  <bpmn:userTask id="register" name="登记">{REGISTER_PROPS}</bpmn:userTask>
  <bpmn:userTask id="review" name="审核">{REVIEW_PROPS}</bpmn:userTask>
  <bpmn:endEvent id="end">{END_PROPS}</bpmn:endEvent>
  <bpmn:endEvent id="plain_end" />
  <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="register" />
</bpmn:process>
"""

PLAIN = """
<bpmn:process id="plain">
  <bpmn:startEvent id="s" />
  <bpmn:task id="t"><bpmn:extensionElements><spiffworkflow:properties>
    <spiffworkflow:property value="no name" />
    <spiffworkflow:property name="empty" />
  </spiffworkflow:properties></bpmn:extensionElements></bpmn:task>
</bpmn:process>
"""


def models() -> dict[str, ProcessModel]:
    return read_models(safe_tree(diagram(RECORDED, PLAIN)))


def test_process_declarations() -> None:
    model = models()["improve"]
    assert (model.process_id, model.name, model.name_en) == ("improve", "改进", "Improvement")
    assert model.documentation == "改进说明"
    assert model.record_prefix == "SI"
    assert model.record_statuses == {
        "open": {"zh-CN": "已登记", "en": "Open"},
        "review": {"zh-CN": "审核", "en": "审核"},
        "done": {"zh-CN": "done", "en": "done"},
    }
    assert model.first_record_status == "open"
    assert model.task_label == "reference"
    assert model.record_logs == ["reviews"]
    assert model.starter_lanes == {"Owner"}
    assert list(model.elements) == [
        "start",
        "register",
        "review",
        "end",
        "plain_end",
        "f1",
    ]  # neither lanes nor process properties are elements


def test_element_declarations() -> None:
    model = models()["improve"]
    assert model.elements["register"] == Element(
        "register",
        "userTask",
        "登记",
        "Register",
        {"name_en": "Register", "record_status": "open", "record_actor": "registrar"},
    )
    assert model.elements["f1"].kind == "sequenceFlow"
    assert model.status_of("register") == "open"
    assert model.status_of("start") is None
    assert model.status_of("missing") is None
    assert model.end_status_of("end") == "done"
    assert model.end_status_of("register") is None  # not an end event
    assert model.end_status_of("plain_end") is None
    assert model.log_of("review") == RecordLog("reviews", ("decision", "comment"))
    assert model.log_of("register") is None
    assert model.log_of("missing") is None
    assert model.actor_field_of("register") == "registrar"
    assert model.actor_field_of("review") is None
    assert model.actor_field_of("missing") is None


def test_a_process_that_declares_nothing() -> None:
    model = models()["plain"]
    assert (model.name, model.name_en, model.documentation) == ("", "", "")
    assert model.record_prefix is None
    assert model.record_statuses == {}
    assert model.first_record_status is None
    assert model.task_label is None
    assert model.record_logs == []
    assert model.starter_lanes == frozenset()  # no lanes: anyone may start it
    assert model.elements["t"].properties == {"empty": ""}  # a nameless property is skipped
    assert records.empty_fields(model) == {}


@pytest.mark.parametrize(
    ("locale", "process", "about", "register", "start", "end", "flow"),
    [
        ("zh-CN", "改进", "改进说明", "登记", "开始", "Done", "f1"),
        ("en", "Improvement", "What it is for", "Register", "开始", "Done", "f1"),
    ],
)
def test_labels(
    locale: str, process: str, about: str, register: str, start: str, end: str, flow: str
) -> None:
    model = models()["improve"]
    assert model.label(locale) == process
    assert model.about(locale) == about
    labels = [model.element_label(e, locale) for e in ("register", "start", "end", "f1")]
    assert labels == [register, start, end, flow]
    assert model.element_label("missing", locale) is None


@pytest.mark.parametrize(
    ("name", "name_en", "documentation", "doc_en", "zh", "en", "about_zh", "about_en"),
    [
        ("", "Only en", "", "en doc", "Only en", "Only en", "en doc", "en doc"),
        ("只有中文", "", "中文说明", "", "只有中文", "只有中文", "中文说明", "中文说明"),
        ("", "", "", "", "p", "p", "", ""),
    ],
)
def test_labels_fall_back(
    name: str,
    name_en: str,
    documentation: str,
    doc_en: str,
    zh: str,
    en: str,
    about_zh: str,
    about_en: str,
) -> None:
    properties = {"name_en": name_en, "documentation_en": doc_en}
    model = ProcessModel("p", name, name_en, {}, properties, documentation=documentation)
    assert (model.label("zh-CN"), model.label("en")) == (zh, en)
    assert (model.about("zh-CN"), model.about("en")) == (about_zh, about_en)


def test_starter_lanes_are_those_holding_a_start_event() -> None:
    process = """
    <bpmn:process id="p">
      <bpmn:laneSet id="ls">
        <bpmn:lane id="a" name="A"><bpmn:flowNodeRef> s1 </bpmn:flowNodeRef></bpmn:lane>
        <bpmn:lane id="b" name="B"><bpmn:flowNodeRef>t</bpmn:flowNodeRef></bpmn:lane>
        <bpmn:lane id="c" name="C"><bpmn:flowNodeRef>s2</bpmn:flowNodeRef></bpmn:lane>
      </bpmn:laneSet>
      <bpmn:startEvent id="s1" /><bpmn:startEvent id="s2" /><bpmn:task id="t" />
    </bpmn:process>
    """
    assert read_models(safe_tree(diagram(process)))["p"].starter_lanes == {"A", "C"}


def errors_of(process: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for model in read_models(safe_tree(diagram(process))).values():
        for element, message in record_status_problems(model):
            errors.setdefault(element, []).append(message)
        label = task_label_problem(model)
        if label:
            errors.setdefault(model.process_id, []).append(label)
    return errors


def test_declared_statuses_pass_the_check() -> None:
    assert errors_of(RECORDED) == {}
    assert errors_of(PLAIN) == {}


@pytest.mark.parametrize(
    ("process_props", "element_props", "errors"),
    [
        (
            {"record_prefix": "SI", "record_status:open": "x"},
            {"record_status": "gone"},
            {
                "t": [
                    "record status 'gone' is not declared on the process "
                    "(property record_status:gone)"
                ]
            },
        ),
        (
            {"record_status:open": "x"},
            {"record_status": "open"},
            {"t": ["a record status needs the process to keep a record (property record_prefix)"]},
        ),
        (
            {},
            {"record_status": "open"},
            {
                "t": [
                    "record status 'open' is not declared on the process "
                    "(property record_status:open)",
                    "a record status needs the process to keep a record (property record_prefix)",
                ]
            },
        ),
        (
            {"task_label": "a.b"},
            {},
            {"p": ["task_label: attribute access is not allowed (column 1)"]},
        ),
        ({"task_label": "[ref, get(m, 'title')]"}, {}, {}),
    ],
)
def test_declarations_the_engine_cannot_act_on(
    process_props: dict[str, str], element_props: dict[str, str], errors: dict[str, list[str]]
) -> None:
    process = (
        f'<bpmn:process id="p">{props(**process_props)}'
        f'<bpmn:task id="t">{props(**element_props)}</bpmn:task></bpmn:process>'
    )
    assert errors_of(process) == errors


# -- the register's row -------------------------------------------------------------------------

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def row(fields: dict[str, Any] | None = None, status: str = "open") -> RecordRow:
    return RecordRow(1, "SI-2026-0001", status, "audit", None, None, fields, None)


@pytest.mark.parametrize(
    ("completed", "done", "active", "status"),
    [
        (False, [], ["register"], "open"),
        (False, [], ["start", "review", "register"], "review"),  # the first that declares one
        (False, ["register"], ["start"], "current"),  # none declares one: unchanged
        (False, [], [], "current"),
        (False, ["end"], ["missing"], "current"),  # an end only counts once completed
        (True, ["register", "end"], [], "done"),
        (True, ["end", "review"], [], "done"),  # the latest end event that declares one
        (True, ["register", "plain_end"], [], "current"),
        (True, ["register"], ["review"], "current"),  # active elements no longer count
    ],
)
def test_status_of(completed: bool, done: list[str], active: list[str], status: str) -> None:
    assert records.status_of(models()["improve"], completed, done, active, "current") == status


def test_empty_fields_hold_one_empty_list_per_log() -> None:
    assert records.empty_fields(models()["improve"]) == {"reviews": []}


def test_a_logged_task_appends_an_entry_and_keeps_its_actor() -> None:
    model = models()["improve"]
    earlier = {"decision": "reject", "comment": "no", "by": "m", "on": "2026-01-01T00:00:00+00:00"}
    stored = {"reviews": [earlier]}
    record = row(stored)
    data = {"decision": "approve", "other": 1}
    records.note_task(None, model, record, "review", data, "manager", AT)
    entry = {"decision": "approve", "comment": None, "by": "manager", "on": AT.isoformat()}
    assert record.fields == {"reviews": [earlier, entry]}
    assert record.changes == {"fields": {"reviews": [earlier, entry]}}
    assert stored == {"reviews": [earlier]}  # the loaded entries are not changed in place
    records.note_task(None, model, record, "register", {}, "owner", AT)
    assert record.fields == {"reviews": [earlier, entry], "registrar": "owner"}


def test_a_log_starts_when_the_record_has_none_yet() -> None:
    record = row({})
    records.note_task(None, models()["improve"], record, "review", {"decision": "ok"}, "m", AT)
    assert record.fields == {
        "reviews": [
            {"decision": "ok", "comment": None, "by": "m", "on": "2026-01-02T03:04:05+00:00"}
        ]
    }


def test_a_task_the_diagram_says_nothing_of_leaves_the_record_alone() -> None:
    record = row(None)  # not loaded, and no session: nothing may need it
    records.note_task(None, models()["improve"], record, "start", {"decision": "x"}, "m", AT)
    assert (record.fields, record.changes) == (None, {})


def test_sync_copies_the_filter_columns_and_the_status() -> None:
    model = models()["improve"]
    record = row(status="open")
    data = {"source": "audit", "reference": "R-1", "description": "d", "other": 1}
    records.sync(model, record, data, False, [], ["review"], AT)
    assert (record.reference, record.description, record.status) == ("R-1", "d", "review")
    assert record.changes == {"reference": "R-1", "description": "d", "status": "review"}
    assert record.closed_on is None


def test_sync_closes_the_record_once() -> None:
    model = models()["improve"]
    record = row(status="review")
    records.sync(model, record, {"source": "audit"}, True, ["review", "end"], [], AT)
    assert (record.status, record.closed_on) == ("done", AT)
    assert record.changes == {"status": "done", "closed_on": AT, "closed_quarter": "2026-Q1"}
    record.changes = {}
    later = datetime(2027, 1, 1, tzinfo=UTC)
    records.sync(model, record, {"source": "audit"}, True, ["review", "end"], [], later)
    assert (record.closed_on, record.changes) == (AT, {})


def test_sync_keeps_the_dashboard_columns() -> None:
    """Each metric's gap status, the calls' outcomes with the quarter they were recorded
    in, the verdict with the quarter of its date, and once closed the days it took."""
    model = models()["improve"]
    columns = records.RegisterColumns.of(
        {
            "metric_gaps": {"from": "gaps.metric", "value": "status"},
            "outcomes": "measures.change_outcome",
            "verdict": {"from": "result", "on": "verified_on"},
        }
    )
    record = RecordRow(1, "SI-2026-0001", "review", None, None, None, None, None, raised_on=AT)
    data: dict[str, Any] = {
        "gaps": [
            {"metric": "MTTR", "status": "regressing"},
            {"metric": "AVAIL", "status": "improving"},
            {"metric": "bad code", "status": "flat"},  # never one that LIKE would confuse
        ],
        "measures": [{"change_outcome": "implemented"}, {}, {"change_outcome": "implemented"}],
    }
    records.sync(model, record, data, False, [], ["review"], AT, columns)
    assert (record.gaps, record.outcomes, record.outcomes_quarter) == (
        " AVAIL:improving MTTR:regressing ",
        " implemented implemented ",
        "2026-Q1",
    )
    assert (record.verdict, record.verdict_quarter, record.cycle_days) == (None, None, None)

    later = datetime(2026, 5, 3, tzinfo=UTC)
    done = {**data, "result": "effective", "verified_on": "2026-04-30"}
    records.sync(model, record, done, True, ["review", "end"], [], later, columns)
    # the outcomes did not change: their quarter stays the one they were recorded in
    assert record.outcomes_quarter == "2026-Q1"
    assert (record.verdict, record.verdict_quarter) == ("effective", "2026-Q2")
    assert (record.closed_quarter, record.cycle_days) == ("2026-Q2", 120)
