"""What every figure shares: timing helpers, databases, and two doors for the cycle.

The improvement cycle itself (its data and its order) is `tests.cycle.Driver`; the
harness only supplies doors:

- `RawDoor` runs it on a bare in-memory `BpmnWorkflow` with SpiffWorkflow's own
  `PythonScriptEngine` (its environment stubs `call_service` with the registered pure
  service functions over an in-memory host) and no persistence: the reference.
- `RuntimeDoor` runs it through the service layer (`Runtime.complete_task` ...) on a
  real database.

Both time only the step itself (finding the task to complete is harness work, not
timed) and keep one sample per step. Every figure is a ratio against the raw door
measured in the same run, because the machine is small and noisy.
"""

from __future__ import annotations

import copy
import json
import math
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import TaskDataEnvironment
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.access import SYSTEM, Actor
from engine.commands.setup import fresh_demo_database
from engine.forms.library import FormLibrary
from engine.persistence.database import Database
from engine.persistence.models import HumanTask, Instance
from engine.projections.tasks import TaskRows
from engine.runtime import Runtime
from engine.workflow import definitions, parsing, stepping
from procedure import PACK
from tests.cycle import Driver
from tests.helpers.clock import RECHECK_AFTER

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/csi_bench"
PROCESS = "service_improvement"
# The cycle's `monitor_progress` asks for a re-check a day later; the doors fire it by
# passing the worker's command a time past it (tests.helpers.clock), so no run waits
# for it and a busy machine cannot make SpiffWorkflow fire it inside another command.

# ---- timing --------------------------------------------------------------------------


def now() -> float:
    return time.perf_counter()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return float(ordered[rank - 1])


def ms(seconds: float) -> float:
    return seconds * 1000.0


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or not denominator or math.isnan(numerator):
        return None
    return numerator / denominator


def rounded(value: Any, digits: int = 3) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


@dataclass
class Sample:
    """One timed step: what kind of step, how many user-task steps came before it."""

    kind: str  # a bpmn id, "start" or "timer"
    position: int  # user-task steps completed before this one
    seconds: float


@dataclass
class Samples:
    items: list[Sample] = field(default_factory=list)

    def add(self, kind: str, position: int, seconds: float) -> None:
        self.items.append(Sample(kind, position, seconds))

    def steps(self) -> list[float]:
        """User-task steps only (no start, no timers)."""
        return [s.seconds for s in self.items if s.kind not in ("start", "timer")]

    def total(self) -> float:
        return sum(s.seconds for s in self.items)


# ---- databases -----------------------------------------------------------------------


def work_dir() -> Path:
    """Where the SQLite files live (CSI_BENCH_WORK_DIR, default /tmp/csi-bench)."""
    path = Path(os.environ.get("CSI_BENCH_WORK_DIR", "/tmp/csi-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def sqlite_url(name: str) -> str:
    """A fresh SQLite file (an earlier run's file is removed)."""
    path = work_dir() / f"{name}.sqlite3"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def postgres_url() -> str:
    return os.environ.get("CSI_BENCH_DATABASE_URL", DEFAULT_POSTGRES_URL)


def _create_database_if_missing(url: str) -> None:
    """A fresh machine's server has no `csi_bench` yet: create it through the server's
    maintenance database, so that a clean clone measures PostgreSQL too."""
    target = make_url(url)
    name = target.database or ""
    _check_bench_database(url)
    maintenance = create_engine(
        target.set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )
    try:
        with maintenance.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if exists is None:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        maintenance.dispose()


def postgres_available(url: str | None = None) -> tuple[bool, str]:
    """Whether the bench's PostgreSQL answers (its database is created when missing);
    the reason when it does not."""
    url = url or postgres_url()
    try:
        _create_database_if_missing(url)
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return True, ""
    except Exception as exc:  # any failure means: report PostgreSQL figures as missing
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _check_bench_database(url: str) -> None:
    name = make_url(url).database or ""
    if name in ("test", "csi_dev") or "bench" not in name:
        raise SystemExit(
            f"refusing to reset database {name!r}: the bench drops its schema, "
            "point CSI_BENCH_DATABASE_URL at a database of its own (e.g. csi_bench)"
        )


def prepared_database(url: str) -> Database:
    """An empty, migrated database with the demo users, catalogue and bundled diagrams
    (what tests/conftest.py prepares; PostgreSQL's schema is dropped first)."""
    if make_url(url).get_backend_name() == "postgresql":
        _check_bench_database(url)
    return fresh_demo_database(url, PACK)


def backend_url(backend: str, name: str, second: bool = False) -> str:
    """The bench database of a figure; `second` gives PostgreSQL figures that need two
    databases at once a database of their own beside the first (created if missing)."""
    if backend == "sqlite":
        return sqlite_url(f"{name}-2" if second else name)
    url = postgres_url()
    if not second:
        return url
    parsed = make_url(url)
    other = parsed.set(database=f"{parsed.database}_2").render_as_string(hide_password=False)
    _create_database_if_missing(other)
    return other


def parsed_process(db: Database) -> parsing.ParsedSpecs:
    with db.sessions() as session:
        return definitions.resolve(session, definitions.latest(session, PROCESS))


# ---- the doors -----------------------------------------------------------------------


class RuntimeDoor:
    """The cycle through the service layer; times each command (the whole command:
    load, validate, run, save state + projection + events, commit)."""

    def __init__(
        self,
        rt: Runtime,
        db: Database,
        actors: dict[str, Actor],
        around_complete: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> None:
        self.rt, self.db, self.actors = rt, db, actors
        self.samples = Samples()
        self.position = 0
        self.last_instance: int | None = None
        self.around_complete = around_complete or (lambda call: call())

    def tasks(self, username: str, instance_id: int) -> list[dict[str, Any]]:
        return [t.as_dict() for t in self.rt.queries.inbox(self.actors[username], instance_id)]

    def complete(self, username: str, task_id: str, data: dict[str, Any]) -> None:
        with self.db.sessions() as session:
            row = session.get(HumanTask, task_id)
            bpmn_id = row.bpmn_id if row is not None else "?"
        actor = self.actors[username]
        started = now()
        self.around_complete(lambda: self.rt.complete_task(task_id, actor, data))
        self.samples.add(bpmn_id, self.position, now() - started)
        self.position += 1

    def start(self, username: str) -> int:
        started = now()
        iid = self.rt.start_instance(self.actors[username]).instance_id
        self.samples.add("start", self.position, now() - started)
        self.last_instance = iid
        return iid

    def instance(self, instance_id: int) -> dict[str, Any]:
        return self.rt.queries.instance(SYSTEM, instance_id, with_events=False).as_dict()

    def fire_timers(self, at: datetime) -> None:
        iid = self.last_instance
        with self.db.sessions() as session:
            instance = session.get(Instance, iid) if iid is not None else None
            due = instance.next_timer_at if instance is not None else None
        if due is None:
            return  # another door's worker pass fired it already (instances side by side)
        started = now()
        moved = self.rt.fire_due_timers(at)
        self.samples.add("timer", self.position, now() - started)
        assert iid in moved, "a due timer did not fire"


class _InMemoryServices:
    """The ServiceContext of the raw reference: no history, numbers from a counter."""

    def __init__(self) -> None:
        self.counter = 0

    def metric_history(self, code: str, limit: int) -> list[float]:
        return []

    def next_number(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-2026-{self.counter:04d}"


class StubServiceEnvironment(TaskDataEnvironment):
    """SpiffWorkflow's default environment (eval/exec of task data), with
    `call_service` stubbed by the registered pure functions over an in-memory host."""

    def __init__(self) -> None:
        super().__init__()
        self.host = _InMemoryServices()

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> str:
        function = PACK.services[kwargs["operation_name"]]
        params = {k: v["value"] for k, v in (kwargs.get("operation_params") or {}).items()}
        return json.dumps(function(params, self.host).result)


class RawDoor:
    """The same cycle on a bare in-memory BpmnWorkflow: parse once, no persistence,
    SpiffWorkflow's PythonScriptEngine. Times the step only: put the submitted data on
    the task (with the multi-instance output item, as the cycle's diagrams require),
    run it, do_engine_steps."""

    def __init__(self, parsed: parsing.ParsedSpecs, actors: dict[str, Actor]) -> None:
        self.parsed = parsed
        self.actors = actors
        self.labels = TaskRows(PACK.roles, FormLibrary.of(PACK), parsed.models)
        self.workflow: BpmnWorkflow | None = None
        self.samples = Samples()
        self.position = 0
        self.last_instance: int | None = None

    def start(self, username: str) -> int:
        started = now()
        workflow = BpmnWorkflow(
            self.parsed.spec,
            self.parsed.subprocess_specs,
            script_engine=PythonScriptEngine(environment=StubServiceEnvironment()),
        )
        workflow.do_engine_steps()
        self.samples.add("start", self.position, now() - started)
        self.workflow = workflow
        self.last_instance = 1
        return 1

    def tasks(self, username: str, instance_id: int) -> list[dict[str, Any]]:
        assert self.workflow is not None
        actor = self.actors[username]
        found = []
        for task in self.workflow.get_tasks(state=TaskState.READY, manual=True):
            role = PACK.roles.for_lane(task.task_spec.lane)
            assignee = stepping.assignee_of(task)
            if role not in actor.roles or assignee not in (None, username):
                continue
            found.append(
                {
                    "id": str(task.id),
                    "bpmn_id": stepping.element(task),
                    "label": self.labels.label(task, assignee),
                    "assignee": assignee,
                }
            )
        return found

    def complete(self, username: str, task_id: str, data: dict[str, Any]) -> None:
        workflow = self.workflow
        assert workflow is not None
        task = workflow.get_task_from_id(UUID(task_id))
        spec = stepping.multi_instance_of(task)
        payload = data
        started = now()
        task.data.update(copy.deepcopy(payload))
        if spec is not None and spec.output_item is not None:
            entry = copy.deepcopy(payload)
            item = spec.input_item.bpmn_id if spec.input_item is not None else None
            if item and item in task.data:
                entry[item] = task.data[item]
            entry["submitted_by"] = username
            task.data[spec.output_item.bpmn_id] = entry
        task.run()
        workflow.do_engine_steps()
        self.samples.add(stepping.element(task) or "?", self.position, now() - started)
        self.position += 1

    def instance(self, instance_id: int) -> dict[str, Any]:
        assert self.workflow is not None
        seen = stepping.observe(self.workflow)
        return {"data": seen.data, "status": "completed" if seen.completed else "running"}

    def fire_timers(self, at: datetime) -> None:
        workflow = self.workflow
        assert workflow is not None
        waiting = stepping.waiting_timers(workflow)
        started = now()
        for task in waiting:
            task.internal_data["event_fired"] = True
        workflow.refresh_timers()
        workflow.do_engine_steps()
        self.samples.add("timer", self.position, now() - started)
        assert any(t.state != TaskState.WAITING for t in waiting), "no timer fired"


# ---- the cycle, with an optional monitoring loop -------------------------------------


def monitoring_passes(
    door: Any, passes: int, on_pass: Callable[[int], None] | None = None
) -> Callable[[], None]:
    """A `before_timer` for the Driver: at the cycle's first 'continue', run `passes`
    more monitoring passes (the worker fires the timer → both owners collect data →
    compute_gaps → monitor_progress 'continue') before the Driver goes on. Each pass
    adds 3 user-task steps and one timer command to the instance's history."""

    def loop() -> None:
        driver = Driver(door)
        iid = door.last_instance
        for n in range(passes):
            driver.pass_the_recheck()
            driver.collect(iid, avail=99.5 + (n % 5) / 10, mttr=3.0 - (n % 4) / 10)
            driver.do(
                "owner",
                iid,
                "monitor_progress",
                {
                    "outcome": "continue",
                    "recheck_after": RECHECK_AFTER,
                    "note": f"第 {n + 1} 次复查",
                },
            )
            if on_pass is not None:
                on_pass(n)

    return loop


def run_cycle(door: Any, passes: int = 0) -> Any:
    """One full improvement cycle (tests.cycle.Driver) through `door`; with `passes`,
    the monitoring loop runs that many extra times before the cycle finishes."""
    return Driver(door, before_timer=monitoring_passes(door, passes)).run()


CYCLE_USER_STEPS = 27  # user-task steps of one plain cycle (checked by run_cycle users)
PASS_USER_STEPS = 3


def quantiles(values: Iterable[float]) -> dict[str, float]:
    items = list(values)
    return {
        "n": float(len(items)),
        "median_ms": ms(median(items)),
        "p95_ms": ms(p95(items)),
        "mean_ms": ms(statistics.fmean(items)) if items else math.nan,
    }


class RecordingDoor(RawDoor):
    """A raw door that also writes down who completed which task with what data."""

    def __init__(self, parsed: parsing.ParsedSpecs, actors: dict[str, Actor]) -> None:
        super().__init__(parsed, actors)
        self.script: list[tuple[str, str, dict[str, Any]]] = []

    def complete(self, username: str, task_id: str, data: dict[str, Any]) -> None:
        assert self.workflow is not None
        task = self.workflow.get_task_from_id(UUID(task_id))
        self.script.append((username, stepping.element(task) or "?", copy.deepcopy(data)))
        super().complete(username, task_id, data)


def cycle_script(
    parsed: parsing.ParsedSpecs, actors: dict[str, Actor]
) -> list[tuple[str, str, dict[str, Any]]]:
    """The cycle's steps in order, as (username, bpmn id, submitted data)."""
    door = RecordingDoor(parsed, actors)
    run_cycle(door)
    return door.script
