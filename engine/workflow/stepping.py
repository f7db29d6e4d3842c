"""Moving one workflow forward, with no database: shared by live commands and replay.

The runtime wraps these in transactions and projections; the auditor's replay feeds
them the recorded events. Both go through the same functions, so a replay that
agrees with the record says something about the code that made the record.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.exceptions import (
    SpiffWorkflowException,
    TaskNotFoundException,
    WorkflowException,
)
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine import services
from engine.audit.chain import canonical_json
from engine.errors import Conflict, DomainError, ServiceFailed, UnsafeExpression, ValidationFailed
from engine.workflow import bounds, compaction, expressions, ids
from engine.workflow.parsing import ParsedSpecs


class ServiceHost(services.ServiceContext, Protocol):
    """A ServiceContext that also hears what each service call read and returned."""

    def record(self, task: Task, call: services.ServiceCall, reads: dict[str, Any]) -> None: ...


class ReadLog:
    """The ServiceContext a service call sees: the host's answers, each written down.

    The event log keeps them with the result, so a replay hands the service the very
    answers it had: metric history another transaction added since (or committed a
    moment before, with an earlier time) cannot make a faithful record look forged."""

    def __init__(self, host: services.ServiceContext) -> None:
        self.host = host
        self.reads: dict[str, Any] = {}

    def metric_history(self, code: str, limit: int) -> list[float]:
        values = list(self.host.metric_history(code, limit))
        self.reads.setdefault("metric_history", []).append([code, limit, values])
        return values

    def next_number(self, prefix: str) -> str:
        number = self.host.next_number(prefix)
        self.reads.setdefault("next_number", []).append(number)
        return number


class _SafeEnvironment(BasePythonScriptEngineEnvironment):
    """Used where SpiffWorkflow evaluates without a task (completion conditions)."""

    def evaluate(
        self, expression: str, context: dict[str, Any], external_context: Any = None
    ) -> Any:
        return expressions.evaluate(expression, {**(external_context or {}), **context})

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        expressions.execute(script, context)
        return True


def _at_element(task: Task, exc: UnsafeExpression) -> UnsafeExpression:
    """The refusal of an expression, naming the element that evaluated it."""
    element = bounds.element_of(task)
    return UnsafeExpression(f"{element}: {exc.message}", {element: [exc.message]})


class SafeScriptEngine(PythonScriptEngine):
    """Conditions and scripts through the AST whitelist; services only those the pack
    registers, through the host that answers their reads. `now` is the time of the
    command the engine moves a workflow for: timers count from it (engine.workflow.bounds)."""

    def __init__(
        self,
        host: ServiceHost | None = None,
        functions: Mapping[str, services.ServiceFunction] | None = None,
        now: datetime | None = None,
    ) -> None:
        super().__init__(environment=_SafeEnvironment())
        self.host = host
        self.functions = functions or {}
        self.now = now
        self.failure: BaseException | None = None
        # An engine is made for each command: its evaluations share this allowance.
        self.allowance = expressions.Allowance()

    def evaluate(self, task: Task, expression: str, external_context: Any = None) -> Any:
        names = {**(external_context or {}), **task.data}
        try:
            return expressions.evaluate(expression, names, self.allowance)
        except UnsafeExpression as exc:
            raise _at_element(task, exc) from exc
        except Exception as exc:
            raise WorkflowException(
                f"cannot evaluate {expression!r} at {task.task_spec.bpmn_id}: {exc}"
            ) from exc

    def execute(self, task: Task, script: str, external_context: Any = None) -> bool:
        try:
            expressions.execute(script, task.data, self.allowance)
        except UnsafeExpression as exc:
            raise _at_element(task, exc) from exc
        return True

    def call_service(self, task: Task, **kwargs: Any) -> str:
        name = kwargs["operation_name"]
        function = self.functions.get(name)
        if function is None or self.host is None:
            raise ServiceFailed(f"service {name!r} is not available")
        params = {k: v["value"] for k, v in (kwargs.get("operation_params") or {}).items()}
        log = ReadLog(self.host)
        try:
            call = function(params, log)
            result = json.dumps(call.result)
        except Exception as exc:
            # SpiffWorkflow masks errors raised here; keep the original to re-raise.
            self.failure = exc
            raise
        self.host.record(task, call, log.reads)
        return result


# -- small facts about tasks ------------------------------------------------------------------


def element(task: Task) -> str | None:
    return getattr(task.task_spec, "bpmn_id", None)


def multi_instance_of(task: Task) -> MultiInstanceTask | None:
    """The multi-instance spec `task` is one instance of (a task that merely follows a
    multi-instance task is its child in the tree too, so compare the child spec)."""
    parent = task.parent
    spec = parent.task_spec if parent is not None else None
    if isinstance(spec, MultiInstanceTask) and spec.task_spec == task.task_spec.name:
        return spec
    return None


def properties(task: Task) -> dict[str, str]:
    extensions = getattr(task.task_spec, "extensions", None) or {}
    return dict(extensions.get("properties") or {})


def assignee_of(task: Task) -> str | None:
    """The one user a task is for, from its `assignee` property (an expression over the
    task's data, e.g. the multi-instance item `process_owner`); None: anyone in the lane."""
    expression = properties(task).get("assignee")
    if not expression:
        return None
    try:
        value = expressions.evaluate(expression, task.data, allowance_of(task))
    except Exception:
        return None
    return str(value) if isinstance(value, str | int) else None


def allowance_of(task: Task) -> expressions.Allowance | None:
    """The allowance of the command moving `task`'s workflow: what the pages' rows
    evaluate for its tasks (assignee, label) counts against the command too."""
    allowance = getattr(task.workflow.script_engine, "allowance", None)
    return allowance if isinstance(allowance, expressions.Allowance) else None


def ready_user_tasks(workflow: BpmnWorkflow) -> list[Task]:
    """Open user tasks, the top process's first, each process's in creation order
    (which a replay reproduces); sub-workflows that finished hold none."""
    ready = [
        t for t in workflow.tasks.values() if t.state == TaskState.READY and t.task_spec.manual
    ]
    for subprocess in workflow.subprocesses.values():
        if not subprocess.completed:
            ready.extend(
                t
                for t in subprocess.tasks.values()
                if t.state == TaskState.READY and t.task_spec.manual
            )
    return ready


# -- moving forward -----------------------------------------------------------------------------


class _EngineSteps:
    """Counts the engine tasks one command runs; refuses the command past the bound."""

    def __init__(self) -> None:
        self.limit = bounds.MAX_ENGINE_STEPS
        self.taken = 0

    def __call__(self, task: Task) -> None:
        self.taken += 1
        if self.taken > self.limit:
            raise bounds.refusal(
                task,
                f"the process was still running here after {self.limit} engine steps, the "
                "most one command may take (a loop that does not end?)",
            )


_REFRESHED_EVENTS = (TimerEventDefinition, MultipleEventDefinition)


def _refuse_stalled(workflow: BpmnWorkflow) -> None:
    """Refuse the command when SpiffWorkflow stopped with an engine task still ready:
    it finds none deeper than SPIFF_MAX_DEPTH levels in the task tree (compaction
    cannot cut the tree inside open parallel branches), and the instance would stay
    running with nothing to do. Timer events its last refresh found due wait for the
    worker, as they always did."""
    for flow in [workflow, *workflow.subprocesses.values()]:
        for task in flow.tasks.values():
            if (
                task.state == TaskState.READY
                and not task.task_spec.manual
                and not isinstance(
                    getattr(task.task_spec, "event_definition", None), _REFRESHED_EVENTS
                )
            ):
                raise bounds.refusal(
                    task,
                    f"the engine left this step ready without running it ({task.depth} "
                    "levels deep in the task tree; SpiffWorkflow looks no deeper than "
                    f"{bounds.SPIFF_MAX_DEPTH})",
                )


def _run(workflow: BpmnWorkflow, step: Callable[[], Any]) -> None:
    engine = workflow.script_engine
    try:
        step()
        workflow.do_engine_steps(will_complete_task=_EngineSteps())
        _refuse_stalled(workflow)
        compaction.compact(workflow)
    except DomainError:
        raise
    except SpiffWorkflowException as exc:
        failure = getattr(engine, "failure", None)
        if failure is not None:
            raise ServiceFailed(f"service failed: {failure}", {"error": repr(failure)}) from failure
        original = exc.__cause__ or getattr(exc, "exception", None)
        if isinstance(original, DomainError):
            raise original from exc
        raise ServiceFailed(f"the process could not continue: {exc}") from exc


def start(
    parsed: ParsedSpecs,
    instance_id: int,
    data: Mapping[str, Any],
    engine: SafeScriptEngine,
) -> BpmnWorkflow:
    with ids.deterministic(instance_id, 0):
        workflow = compaction.CsiWorkflow(
            parsed.spec, parsed.subprocess_specs, script_engine=engine
        )
        first = workflow.get_next_task(state=TaskState.READY)
        if first is not None:
            first.data.update(copy.deepcopy(dict(data)))
        _run(workflow, lambda: None)
    return workflow


def ready_task(workflow: BpmnWorkflow, task_id: str) -> Task:
    try:
        task = workflow.get_task_from_id(UUID(task_id))
    except TaskNotFoundException as exc:
        raise Conflict("the task is not part of this workflow") from exc
    if task.state != TaskState.READY:
        raise Conflict("the task is not ready")
    return task


def complete(
    workflow: BpmnWorkflow, instance_id: int, base: int, task: Task, data: dict[str, Any], by: str
) -> None:
    """Store the submitted data on the task, run it and everything that follows."""

    def step() -> None:
        task.data.update(copy.deepcopy(data))
        spec = multi_instance_of(task)
        if spec is not None and spec.output_item is not None:
            # One entry per participant in the output collection, tagged with who it is.
            entry = copy.deepcopy(data)
            item = spec.input_item.bpmn_id if spec.input_item is not None else None
            if item and item in task.data:
                entry[item] = task.data[item]
            entry["submitted_by"] = by
            task.data[spec.output_item.bpmn_id] = entry
        task.run()

    with ids.deterministic(instance_id, base):
        _run(workflow, step)


def elements_missing(workflow: BpmnWorkflow, parsed: ParsedSpecs, registry: Any) -> list[str]:
    """The elements of `workflow`'s kept task tree, finished or not, that `parsed` no
    longer has: while there are any, `migrate` refuses (impact asks the same)."""
    return _migration_diff(workflow, parsed, registry)[2]


def _migration_diff(
    workflow: BpmnWorkflow, parsed: ParsedSpecs, registry: Any
) -> tuple[Any, dict[str, Any], list[str]]:
    top, called = diff_workflow(registry, workflow, parsed.spec, parsed.subprocess_specs)
    gone = {t.task_spec.bpmn_id or t.task_spec.name for t in top.removed}
    for sub_id, diff in called.items():
        subprocess = workflow.subprocesses[sub_id]
        if diff is None:
            gone.add(subprocess.spec.name)
        else:
            gone |= {t.task_spec.bpmn_id or t.task_spec.name for t in diff.removed}
    return top, called, sorted(gone)


def migrate(
    workflow: BpmnWorkflow, parsed: ParsedSpecs, registry: Any, instance_id: int, base: int
) -> None:
    """Move a running workflow onto another version of its definition (and of the
    processes it calls). Tasks keep their ids and data; ready and waiting tasks are
    reset and predicted anew on the new diagram. Refused when the kept task tree holds
    a task, finished or not, whose element the new version no longer has: its state
    could not be loaded on the new version. (Finished tasks compaction already cut do
    not count; their elements stay in the run's record of elements done.)"""
    top, called, gone = _migration_diff(workflow, parsed, registry)
    if gone:
        raise ValidationFailed(
            "the instance is at elements the new version no longer has",
            {element: ["not in the new version"] for element in gone},
        )

    def step() -> None:
        migrate_workflow(top, workflow, parsed.spec)
        for sub_id, diff in called.items():
            subprocess = workflow.subprocesses[sub_id]
            migrate_workflow(diff, subprocess, parsed.subprocess_specs[subprocess.spec.name])
        workflow.subprocess_specs = dict(parsed.subprocess_specs)

    with ids.deterministic(instance_id, base):
        _run(workflow, step)


def waiting_timers(workflow: BpmnWorkflow) -> list[Task]:
    return [
        t
        for t in workflow.get_tasks(state=TaskState.WAITING)
        if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)
    ]


def fire_timers(
    workflow: BpmnWorkflow,
    instance_id: int,
    base: int,
    force: set[str] | None = None,
    now: datetime | None = None,
) -> list[Task]:
    """Let due timers fire: those due by `now` (the caller's clock), and those `force`
    names regardless of any clock (replay re-fires what was recorded, whenever the
    replay runs). Either way a timer also fires once it is past due by the time of the
    command the script engine holds (engine.workflow.bounds)."""
    waiting = waiting_timers(workflow)
    for task in waiting:
        due = _due_at(task)
        if (force is not None and str(task.id) in force) or (
            now is not None and due is not None and due <= now
        ):
            task.internal_data["event_fired"] = True

    def step() -> None:
        workflow.refresh_timers()

    with ids.deterministic(instance_id, base):
        _run(workflow, step)
    return [t for t in waiting if t.state != TaskState.WAITING]


def _due_at(task: Task) -> datetime | None:
    value = task.internal_data.get("event_value")
    if not isinstance(value, str):
        return None
    try:
        return TimerEventDefinition.get_datetime(value)
    except ValueError:
        return None


# -- observing ----------------------------------------------------------------------------------


@dataclass
class Observation:
    """Where a workflow stands, as the projections and the audit trail record it."""

    completed_elements: list[str] = field(default_factory=list)
    active_elements: list[str] = field(default_factory=list)
    next_timer_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)
    data_sha256: str = ""
    open_tasks: list[str] = field(default_factory=list)
    completed: bool = False
    timers: dict[str, str] = field(default_factory=dict)  # waiting timer task id -> due
    ready: list[Task] = field(default_factory=list, repr=False)  # the open user tasks

    def checkpoint(self, before: Mapping[str, Any]) -> dict[str, Any]:
        """What each command records of the state it left, for replay to compare: the
        digest of the data vouches for all of it, the change from `before` (the data the
        command started from) lets a mismatch name the difference. Timer due times are
        recorded because they come from the clock, not from the events."""
        changed, removed = data_changes(before, self.data)
        return {
            "open_tasks": sorted(self.open_tasks),
            "data_sha256": self.data_sha256 or data_digest(self.data),
            "changed": changed,
            "removed": removed,
            "completed": self.completed,
            "timers": self.timers,
        }


def data_changes(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The variables `after` sets differently from `before`, and those it no longer has."""
    missing = object()
    changed = {k: v for k, v in after.items() if before.get(k, missing) != v}
    return changed, sorted(k for k in before if k not in after)


def data_difference(
    expected: Mapping[str, Any], found: Mapping[str, Any]
) -> tuple[str, Any, Any] | None:
    """Where `found` differs from `expected` as JSON: ("data (name)", the expected value,
    the found one) for the first variable that differs, ("data", both wholes) when they
    differ only as JSON does (1 == 1.0 and True == 1 to Python); None when equal."""
    if data_digest(expected) == data_digest(found):
        return None
    changed, removed = data_changes(expected, found)
    names = sorted([*changed, *removed])
    if not names:
        return "data", expected, found
    return f"data ({names[0]})", expected.get(names[0]), found.get(names[0])


def data_digest(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def _detached(data: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """A JSON-only copy of `data` and its digest, from one serialisation."""
    text = canonical_json(data)
    copied: dict[str, Any] = json.loads(text)
    return copied, hashlib.sha256(text.encode("utf-8")).hexdigest()


_ACTIVE = TaskState.READY | TaskState.STARTED | TaskState.WAITING


def observe(workflow: BpmnWorkflow) -> Observation:
    """One pass over the task dictionaries (compaction keeps them small), in creation
    order, which a replay reproduces."""
    done: list[str] = list(getattr(workflow, "dropped_elements", []))
    active: list[str] = []
    next_timer: datetime | None = None
    timers: dict[str, str] = {}
    latest: Task | None = None
    for task in workflow.tasks.values():
        state = task.state
        bpmn_id = element(task)
        if bpmn_id is None:
            continue
        if state == TaskState.COMPLETED:
            if bpmn_id not in done:
                done.append(bpmn_id)
            if (latest is None or task.last_state_change > latest.last_state_change) and (
                multi_instance_of(task) is None
            ):
                latest = task
        elif state & _ACTIVE:
            if bpmn_id not in active:
                active.append(bpmn_id)
            event = getattr(task.task_spec, "event_definition", None)
            value = task.internal_data.get("event_value")
            if isinstance(event, TimerEventDefinition) and isinstance(value, str):
                due_at = TimerEventDefinition.get_datetime(value)
                next_timer = due_at if next_timer is None else min(next_timer, due_at)
                timers[str(task.id)] = value
    ready = ready_user_tasks(workflow)
    # The data of the newest finished element, not workflow.data: SpiffWorkflow's end
    # join merges every finished branch into the latter, per-person entries included.
    data, digest = _detached(dict(latest.data) if latest is not None else {})
    return Observation(
        completed_elements=done,
        active_elements=active,
        next_timer_at=next_timer,
        data=data,
        data_sha256=digest,
        open_tasks=[str(t.id) for t in ready],
        completed=bool(workflow.completed),
        timers=timers,
        ready=ready,
    )


def taken_flows(workflow: BpmnWorkflow) -> list[str]:
    """The sequence flows the run has taken ("source>target" element ids): into every
    task it reached, including those compaction has dropped."""
    taken = list(getattr(workflow, "dropped_flows", []))
    for task in workflow.tasks.values():
        if task.state & (TaskState.COMPLETED | _ACTIVE):
            flow = compaction.flow_into(task)
            if flow is not None and flow not in taken:
                taken.append(flow)
    return taken


def restore_timers(workflow: BpmnWorkflow, timers: Mapping[str, str]) -> None:
    """Give rebuilt timers the due times the live run computed from its clock."""
    for task_id, value in timers.items():
        try:
            task = workflow.get_task_from_id(UUID(task_id))
        except TaskNotFoundException:
            continue  # a replay that took another path; the checkpoint will say so
        task.internal_data["event_value"] = value
