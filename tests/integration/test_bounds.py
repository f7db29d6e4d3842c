"""No request or diagram makes a command's work unbounded: a duration, an expression,
a multi-instance task or a loop past the engine's bounds fails the command at once
with a 422 naming the field or element, and changes nothing.

Each test drives the engine through the Runtime or the JSON API, on SQLite and on
PostgreSQL, with a clock the test moves (never a sleep)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from xml.sax.saxutils import escape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from engine.access import Actor
from engine.errors import UnsafeExpression, ValidationFailed
from engine.persistence.database import Database
from engine.persistence.models import Event, HumanTask, Instance
from engine.runtime import Runtime
from engine.workflow import bounds
from tests.cycle import Driver
from tests.helpers.api import bearer
from tests.helpers.clock import FakeClock
from tests.helpers.deadline import quickly
from tests.helpers.diagrams import diagram
from tests.helpers.doors import ApiDoor, RuntimeDoor
from tests.helpers.pages import client_for

# Before: a 500 (the due date ran past the year 9999), 25 s then a 500, a thread
# spinning for ever.
DURATIONS_OUT_OF_BOUNDS = ["P9999Y", "P1000000Y", "P99999999999999999999999999999Y"]


def facts(db: Database) -> tuple[Any, ...]:
    """What a refused command must leave as it was: every instance row, every event,
    every task row."""
    with db.sessions() as session:
        return (
            session.execute(
                select(
                    Instance.id,
                    Instance.status,
                    Instance.last_seq,
                    Instance.last_hash,
                    Instance.next_timer_at,
                    Instance.data,
                ).order_by(Instance.id)
            ).all(),
            session.scalar(select(func.count()).select_from(Event)),
            session.execute(
                select(HumanTask.id, HumanTask.status, HumanTask.claimed_by).order_by(HumanTask.id)
            ).all(),
        )


# -- 1. durations --------------------------------------------------------------------------


def _refuses_each_recheck_interval(
    db: Database, complete: Callable[[str, str], tuple[int, dict[str, Any]]]
) -> Callable[[dict[str, Any]], None]:
    """The hook the cycle calls at monitor_progress: each out-of-bounds interval is
    refused at once, naming recheck_after, and changes nothing; then the cycle goes on."""

    def refuse(task: dict[str, Any]) -> None:
        before = facts(db)
        for value in DURATIONS_OUT_OF_BOUNDS:
            with quickly():
                status, details = complete(task["id"], value)
            assert status == 422, value
            assert "recheck_after" in details, details
            assert facts(db) == before

    return refuse


def test_a_recheck_interval_out_of_bounds_is_refused_by_the_runtime(
    rt: Runtime, db: Database, actors: dict[str, Actor]
) -> None:
    def complete(task_id: str, value: str) -> tuple[int, dict[str, Any]]:
        data = {"outcome": "continue", "recheck_after": value}
        with pytest.raises(ValidationFailed) as refused:
            rt.complete_task(task_id, actors["owner"], data)
        return refused.value.status, refused.value.details

    door = RuntimeDoor(rt, db, actors)
    result = Driver(door, before_monitoring=_refuses_each_recheck_interval(db, complete)).run()
    assert result.final["status"] == "completed"  # the refusals left the cycle whole


def test_a_recheck_interval_out_of_bounds_is_refused_by_the_api(
    client: FlaskClient, app: Flask, db: Database
) -> None:
    door = ApiDoor(client, app)

    def complete(task_id: str, value: str) -> tuple[int, dict[str, Any]]:
        response = client.post(
            f"/api/v1/tasks/{task_id}/complete",
            json={"data": {"outcome": "continue", "recheck_after": value}},
            headers=door.headers("owner"),
        )
        assert value not in response.get_data(as_text=True)  # no echo of the value
        return response.status_code, response.json["details"]

    result = Driver(door, before_monitoring=_refuses_each_recheck_interval(db, complete)).run()
    assert result.final["status"] == "completed"


def _timer_diagram(wait: str) -> bytes:
    """A script sets `wait`, a timer waits for it, then a user task."""
    return diagram(
        "timed",
        f"""
        <bpmn:startEvent id="start" />
        <bpmn:scriptTask id="set_wait"><bpmn:script>wait = {wait!r}</bpmn:script></bpmn:scriptTask>
        <bpmn:intermediateCatchEvent id="wait_a_while">
          <bpmn:timerEventDefinition>
            <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">wait</bpmn:timeDuration>
          </bpmn:timerEventDefinition>
        </bpmn:intermediateCatchEvent>
        <bpmn:userTask id="register_input" />
        <bpmn:endEvent id="end" />
        """,
        ("start", "set_wait"),
        ("set_wait", "wait_a_while"),
        ("wait_a_while", "register_input"),
        ("register_input", "end"),
    )


@pytest.mark.parametrize("wait", DURATIONS_OUT_OF_BOUNDS)
def test_a_timer_duration_out_of_bounds_is_refused_naming_the_timer(
    db: Database, actors: dict[str, Actor], wait: str
) -> None:
    rt = Runtime(db)
    rt.deploy(actors["admin"], _timer_diagram(wait), "timed.bpmn")
    before = facts(db)
    with quickly(), pytest.raises(ValidationFailed) as refused:
        rt.start_instance(actors["owner"], "timed")
    assert list(refused.value.details) == ["wait_a_while"]
    assert "longer than 5 years" in refused.value.message
    assert facts(db) == before


def test_a_timer_is_due_by_the_commands_clock(db: Database, actors: dict[str, Actor]) -> None:
    clock = FakeClock()
    clock.advance(timedelta(days=30))  # far from the wall clock SpiffWorkflow would read
    rt = Runtime(db, clock=clock)
    rt.deploy(actors["admin"], _timer_diagram("P1M"), "timed.bpmn")
    iid = rt.start_instance(actors["owner"], "timed").instance_id
    with db.sessions() as session:
        started = session.get(Instance, iid)
        assert started is not None
        due, began = started.next_timer_at, started.started_at
    assert due is not None
    assert due - began in {timedelta(days=d) for d in (28, 29, 30, 31)}  # one calendar month
    assert rt.fire_due_timers(due - timedelta(seconds=1)) == []
    assert rt.fire_due_timers(due) == [iid]
    assert [t.bpmn_id for t in rt.queries.inbox(actors["owner"], iid)] == ["register_input"]


# -- 2. expressions, multi-instance tasks and loops -----------------------------------------


def _scripted(script: str, condition: str = "False") -> bytes:
    """A script, then a gateway on `condition`, then a user task."""
    return diagram(
        "scripted",
        f"""
        <bpmn:startEvent id="start" />
        <bpmn:scriptTask id="compute"><bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>
        <bpmn:exclusiveGateway id="decide" default="decide_register_input" />
        <bpmn:userTask id="register_input" />
        <bpmn:endEvent id="end" />
        <bpmn:endEvent id="other_end" />
        <bpmn:sequenceFlow id="decide_other_end" sourceRef="decide" targetRef="other_end">
          <bpmn:conditionExpression>{escape(condition)}</bpmn:conditionExpression>
        </bpmn:sequenceFlow>
        """,
        ("start", "compute"),
        ("compute", "decide"),
        ("decide", "register_input"),
        ("register_input", "end"),
    )


def _fanning_out(loop: str) -> str:
    """A multi-instance user task with `loop` characteristics."""
    return f"""<bpmn:userTask id="propose_metrics">
      <bpmn:multiInstanceLoopCharacteristics>{loop}</bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>"""


def _multi_instance(script: str, loop: str) -> bytes:
    """A script, then a multi-instance user task with `loop` characteristics."""
    return diagram(
        "fan_out",
        f"""
        <bpmn:startEvent id="start" />
        <bpmn:scriptTask id="compute"><bpmn:script>{escape(script)}</bpmn:script></bpmn:scriptTask>
        {_fanning_out(loop)}
        <bpmn:endEvent id="end" />
        """,
        ("start", "compute"),
        ("compute", "propose_metrics"),
        ("propose_metrics", "end"),
    )


CARDINALITY = "<bpmn:loopCardinality>count</bpmn:loopCardinality>"
COLLECTION = """<bpmn:loopDataInputRef>owners</bpmn:loopDataInputRef>
    <bpmn:loopDataOutputRef>proposals</bpmn:loopDataOutputRef>
    <bpmn:inputDataItem id="process_owner" name="process_owner" />
    <bpmn:outputDataItem id="proposal" name="proposal" />"""

LOOP = diagram(
    "looping",
    """
    <bpmn:startEvent id="start" />
    <bpmn:scriptTask id="begin"><bpmn:script>n = 0</bpmn:script></bpmn:scriptTask>
    <bpmn:scriptTask id="count_up"><bpmn:script>n = n + 1</bpmn:script></bpmn:scriptTask>
    <bpmn:exclusiveGateway id="again" default="again_register_input" />
    <bpmn:userTask id="register_input" />
    <bpmn:endEvent id="end" />
    <bpmn:sequenceFlow id="again_count_up" sourceRef="again" targetRef="count_up">
      <bpmn:conditionExpression>n &lt; LIMIT</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    """,
    ("start", "begin"),
    ("begin", "count_up"),
    ("count_up", "again"),
    ("again", "register_input"),
    ("register_input", "end"),
)

# (diagram, process, element refused, words of the reason)
REFUSED_AT_START = {
    "a string doubled past the bound": (
        _scripted("a = 'x' * 100000\n" + "a = a + a\n" * 7),
        "scripted",
        "compute",
        "at most 100000 items",
    ),
    "a sum of lists past the bound": (
        _scripted("flat = sum([[0] * 100000] * 100, [])"),
        "scripted",
        "compute",
        "at most 100000 items",
    ),
    "a power past the integer bound": (
        _scripted("x = 1", "((((10**64)**64)**64)**64) > 0"),
        "scripted",
        "decide",
        "at most 4096 bits",
    ),
    "a comparison of a structure repeated into itself": (
        _scripted("x = 1", "[[0] * 100000] * 100000 == [[0] * 100000] * 100000"),
        "scripted",
        "decide",
        "steps of work",
    ),
    "a loopCardinality of 10,000": (
        _multi_instance("count = 10000", CARDINALITY),
        "fan_out",
        "propose_metrics",
        "at most 100",
    ),
    "a loopDataInputRef collection of 101": (
        _multi_instance("owners = ['po1'] * 101", COLLECTION),
        "fan_out",
        "propose_metrics",
        "at most 100",
    ),
    "a loop of 1,000 passes in one command": (
        LOOP.replace(b"LIMIT", b"1000"),
        "looping",
        "again",
        "500 engine steps",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_AT_START))
def test_work_past_the_bounds_is_refused_by_the_runtime(
    db: Database, actors: dict[str, Actor], case: str
) -> None:
    xml, process, element, reason = REFUSED_AT_START[case]
    rt = Runtime(db)
    rt.deploy(actors["admin"], xml, f"{process}.bpmn")
    before = facts(db)
    with quickly(3.0), pytest.raises(ValidationFailed) as refused:
        rt.start_instance(actors["owner"], process)
    assert refused.value.status == 422
    assert list(refused.value.details) == [element]
    assert reason in refused.value.message
    assert facts(db) == before


@pytest.mark.parametrize("case", list(REFUSED_AT_START))
def test_work_past_the_bounds_is_refused_by_the_api(
    client: FlaskClient, db: Database, case: str
) -> None:
    xml, process, element, reason = REFUSED_AT_START[case]
    deployed = client.post(
        "/api/v1/models",
        data=xml,
        headers={**bearer(client, "admin"), "Content-Type": "application/xml"},
    )
    assert deployed.status_code == 201, deployed.json
    before = facts(db)
    with quickly(3.0):
        response = client.post(
            "/api/v1/instances",
            json={"process": process, "data": {}},
            headers=bearer(client, "owner"),
        )
    assert response.status_code == 422, response.json
    assert list(response.json["details"]) == [element]
    assert reason in response.json["message"]
    assert facts(db) == before


def test_the_refusal_of_an_expression_says_so(db: Database, actors: dict[str, Actor]) -> None:
    xml, process, _, _ = REFUSED_AT_START["a power past the integer bound"]
    rt = Runtime(db)
    rt.deploy(actors["admin"], xml, "scripted.bpmn")
    with pytest.raises(UnsafeExpression):
        rt.start_instance(actors["owner"], process)


@pytest.mark.parametrize(
    ("xml", "process", "open_tasks"),
    [
        (_multi_instance("count = 3", CARDINALITY), "fan_out", 3),
        (_multi_instance("owners = ['po1'] * 100", COLLECTION), "fan_out", 100),
        (LOOP.replace(b"LIMIT", b"200"), "looping", 1),
    ],
)
def test_work_within_the_bounds_runs(
    db: Database, actors: dict[str, Actor], xml: bytes, process: str, open_tasks: int
) -> None:
    rt = Runtime(db)
    rt.deploy(actors["admin"], xml, f"{process}.bpmn")
    result = rt.start_instance(actors["owner"], process)
    assert len(result.open_tasks) == open_tasks


def test_what_a_command_evaluates_for_its_task_rows_counts_against_it_too(
    db: Database, actors: dict[str, Actor]
) -> None:
    """Each instance's `assignee` costs 1.8 million steps: a hundred of them would take
    half a minute, but the command's allowance runs out after five; the rest get none."""
    heavy = "'po1' if [[0] * 1000] * 900 == [[0] * 1000] * 900 else 'po2'"
    xml = _multi_instance("owners = ['po1'] * 100", COLLECTION).replace(
        b'<bpmn:userTask id="propose_metrics">',
        b'<bpmn:userTask id="propose_metrics"><bpmn:extensionElements><spiffworkflow:properties>'
        + f'<spiffworkflow:property name="assignee" value="{escape(heavy)}" />'.encode()
        + b"</spiffworkflow:properties></bpmn:extensionElements>",
    )
    rt = Runtime(db)
    rt.deploy(actors["admin"], xml, "fan_out.bpmn")
    with quickly(5.0):
        iid = rt.start_instance(actors["owner"], "fan_out").instance_id
    assignees = [t.assignee for t in rt.queries.instance(actors["admin"], iid).open_tasks]
    assert assignees.count("po1") == 5
    assert assignees.count(None) == 95


def test_a_loop_the_engine_would_lose_track_of_is_refused(
    db: Database, actors: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more engine steps allowed than SpiffWorkflow's task iterator can follow
    (it looks no deeper than 1000 levels), the loop's next task would stay ready
    unseen and the instance running with nothing to do: the command is refused."""
    monkeypatch.setattr(bounds, "MAX_ENGINE_STEPS", 5000)
    rt = Runtime(db)
    rt.deploy(actors["admin"], LOOP.replace(b"LIMIT", b"1000"), "looping.bpmn")
    before = facts(db)
    with pytest.raises(ValidationFailed) as refused:
        rt.start_instance(actors["owner"], "looping")
    assert "SpiffWorkflow looks no deeper than 1000" in refused.value.message
    assert facts(db) == before


def _fan_out_later(owners: int) -> bytes:
    """A timer, then a script that lists `owners` process owners, then a task each."""
    return diagram(
        "fan_out_later",
        f"""
        <bpmn:startEvent id="start" />
        <bpmn:intermediateCatchEvent id="wait_a_while">
          <bpmn:timerEventDefinition>
            <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"PT1H"</bpmn:timeDuration>
          </bpmn:timerEventDefinition>
        </bpmn:intermediateCatchEvent>
        <bpmn:scriptTask id="compute"><bpmn:script>owners = ['po1'] * {owners}</bpmn:script></bpmn:scriptTask>
        {_fanning_out(COLLECTION)}
        <bpmn:endEvent id="end" />
        """,
        ("start", "wait_a_while"),
        ("wait_a_while", "compute"),
        ("compute", "propose_metrics"),
        ("propose_metrics", "end"),
    )


def test_a_bound_a_timer_hits_is_an_incident_the_instance_page_shows(
    db: Database, app: Flask, actors: dict[str, Actor], caplog: pytest.LogCaptureFixture
) -> None:
    """No one waits for the worker's answer: the refusal goes to the log and onto the
    instance as its incident, the instance stays as it was, and the worker leaves it
    alone until a command moves it (here onto a mended version)."""
    clock = FakeClock()
    rt = Runtime(db, clock=clock)
    admin = actors["admin"]
    rt.deploy(admin, _fan_out_later(101), "fan_out_later.bpmn")
    iid = rt.start_instance(actors["owner"], "fan_out_later").instance_id
    before = facts(db)
    later = clock.advance(timedelta(hours=2))
    with caplog.at_level(logging.ERROR, logger="engine.commands.timers"), quickly():
        assert rt.fire_due_timers(later) == []
    assert "makes at most 100" in caplog.text
    assert facts(db) == before
    incident = rt.queries.instance(admin, iid).instance.incident
    assert incident is not None
    assert list(incident["details"]) == ["propose_metrics"]
    assert "makes at most 100" in incident["message"]
    page = client_for(app, "owner").get(f"/instances/{iid}").get_data(as_text=True)
    assert "后台任务未能推进此实例" in page  # "The worker could not move this instance on"
    assert "makes at most 100" in page

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="engine.commands.timers"):
        assert rt.fire_due_timers(later) == []  # left alone: it would fail the same way
    assert caplog.text == ""

    rt.deploy(admin, _fan_out_later(3), "fan_out_later.bpmn")
    rt.migrate_instance(iid, admin)
    assert rt.queries.instance(admin, iid).instance.incident is None
    assert rt.fire_due_timers(clock.advance(timedelta(hours=1))) == [iid]
    assert len(rt.queries.instance(admin, iid).open_tasks) == 3
