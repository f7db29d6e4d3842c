"""Compaction of the task tree: a long monitoring loop keeps running, the tree stays
small, and at every step the instance looks exactly as it would uncut."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine.workflow import compaction, parsing, stepping
from engine.workflow.serializer import StateSerializer
from procedure import PACK
from tests.cycle import Driver
from tests.helpers.clock import RECHECK_AFTER
from tests.helpers.specs import bundled_parsed


@pytest.fixture(scope="module")
def parsed() -> parsing.ParsedSpecs:
    return bundled_parsed("service_improvement")


ROLES = {
    "owner": {"ImprovementOwner"},
    "manager": {"ImprovementManager", "ChangeManager"},
    "po1": {"ProcessOwner"},
    "po2": {"ProcessOwner"},
    "cab": {"ChangeAdvisoryBoard"},
    "impl": {"ChangeImplementer"},
}


class MemoryServices:
    def __init__(self) -> None:
        self.numbers = 0
        self.history: dict[str, list[float]] = {}

    def metric_history(self, code: str, limit: int) -> list[float]:
        return self.history.get(code, [])[-limit:]

    def next_number(self, prefix: str) -> str:
        self.numbers += 1
        return f"{prefix}-2026-{self.numbers:04d}"

    def record(self, task: Task, call: Any, reads: dict[str, Any]) -> None:
        for reading in call.extra.get("metric_values", []):
            self.history.setdefault(reading["code"], []).append(reading["value"])


class SteppingDoor:
    """The cycle on the engine's own stepping functions, in memory; after every command
    it writes down what the projections would show."""

    def __init__(self, parsed: parsing.ParsedSpecs, compact: bool) -> None:
        self.parsed, self.compact = parsed, compact
        self.services = MemoryServices()
        self.workflow: BpmnWorkflow | None = None
        self.seq = 0
        self.seen: list[dict[str, Any]] = []
        self.largest_tree = 0
        self.last_instance = 1

    def _after(self) -> None:
        assert self.workflow is not None
        if not self.compact:
            # Put back what compaction would have cut: nothing was.
            assert not getattr(self.workflow, "dropped_elements", [])
        observed = stepping.observe(self.workflow)
        self.largest_tree = max(self.largest_tree, len(self.workflow.tasks))
        self.seen.append(
            {
                "data": observed.data,
                "open": sorted(observed.open_tasks),
                "done": set(observed.completed_elements),
                "active": set(observed.active_elements),
                "completed": observed.completed,
                "timers": sorted(observed.timers),  # due times come from the clock
            }
        )
        self.seq += 1

    def start(self, username: str) -> int:
        engine = stepping.SafeScriptEngine(self.services, PACK.services)
        self.workflow = stepping.start(self.parsed, 1, {}, engine)
        self._after()
        return 1

    def tasks(self, username: str, instance_id: int) -> list[dict[str, Any]]:
        assert self.workflow is not None
        found = []
        for task in stepping.ready_user_tasks(self.workflow):
            assignee = stepping.assignee_of(task)
            if PACK.roles.for_lane(task.task_spec.lane) in ROLES[username] and assignee in (
                None,
                username,
            ):
                label = " · ".join(
                    str(v)
                    for v in (
                        task.data.get("rfc_number"),
                        (task.data.get("measure") or {}).get("title"),
                    )
                    if v
                )
                found.append(
                    {"id": str(task.id), "bpmn_id": stepping.element(task), "label": label}
                )
        return found

    def complete(self, username: str, task_id: str, data: dict[str, Any]) -> None:
        assert self.workflow is not None
        task = self.workflow.get_task_from_id(UUID(task_id))
        stepping.complete(self.workflow, 1, self.seq, task, copy.deepcopy(data), username)
        self._after()

    def instance(self, instance_id: int) -> dict[str, Any]:
        assert self.workflow is not None
        return {"data": stepping.observe(self.workflow).data}

    def fire_timers(self, now: datetime | None = None) -> None:
        assert self.workflow is not None
        waiting = {str(t.id) for t in stepping.waiting_timers(self.workflow)}
        fired = stepping.fire_timers(self.workflow, 1, self.seq, force=waiting)
        assert fired
        self._after()


def _monitoring(door: SteppingDoor, passes: int) -> Iterator[None]:
    driver = Driver(door)
    for n in range(passes):
        door.fire_timers()
        driver.collect(door.last_instance, avail=99.5 + (n % 5) / 10, mttr=3.0 - (n % 4) / 10)
        driver.do(
            "owner",
            door.last_instance,
            "monitor_progress",
            {"outcome": "continue", "recheck_after": RECHECK_AFTER, "note": f"pass {n}"},
        )
        yield


def run(parsed: parsing.ParsedSpecs, compact: bool, passes: int, monkeypatch: Any) -> SteppingDoor:
    door = SteppingDoor(parsed, compact)
    with monkeypatch.context() as patch:
        if not compact:
            patch.setattr(compaction, "compact", lambda workflow, **_: 0)
        Driver(door, before_timer=lambda: list(_monitoring(door, passes))).run()
    return door


def test_every_step_looks_the_same_with_and_without_compaction(
    parsed: parsing.ParsedSpecs, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = run(parsed, compact=True, passes=12, monkeypatch=monkeypatch)
    whole = run(parsed, compact=False, passes=12, monkeypatch=monkeypatch)
    assert len(cut.seen) == len(whole.seen) > 60
    for step, (a, b) in enumerate(zip(cut.seen, whole.seen, strict=True)):
        assert a == b, f"step {step} differs"
    assert cut.seen[-1]["completed"]
    assert cut.largest_tree < whole.largest_tree / 2


def test_a_long_monitoring_loop_keeps_running_on_a_small_tree(
    parsed: parsing.ParsedSpecs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Uncut, SpiffWorkflow stops finding tasks below depth 1000: about 120 passes.
    door = run(parsed, compact=True, passes=160, monkeypatch=monkeypatch)
    assert door.seen[-1]["completed"]
    assert door.largest_tree < 80
    assert {"register_input", "review_plan", "implement_measures", "close_improvement"} <= (
        door.seen[-1]["done"]
    )


def test_state_round_trip_keeps_the_dropped_elements(parsed: parsing.ParsedSpecs) -> None:
    door = SteppingDoor(parsed, compact=True)
    driver = Driver(door)
    iid = door.start("owner")
    driver.do(
        "owner",
        iid,
        "register_input",
        {
            "source": "internal_audit",
            "reference": "IA-1",
            "description": "d",
            "process_owners": ["po1"],
        },
    )
    workflow = door.workflow
    assert workflow is not None
    workflow.dropped_elements.append("register_input")  # as if cut
    serializer = StateSerializer()
    text = serializer.dumps(workflow)
    again = serializer.loads(text, parsed)
    assert again.dropped_elements == workflow.dropped_elements
    assert serializer.dumps(again) == text
    assert {str(t.id) for t in again.get_tasks(state=TaskState.READY)} == {
        str(t.id) for t in workflow.get_tasks(state=TaskState.READY)
    }
