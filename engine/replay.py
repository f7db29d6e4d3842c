"""Replay: rebuild an instance from its pinned definition by feeding its recorded
events in order, through the same stepping code the live commands use, and compare
with the record at every step.

What is compared: the pinned definition's content against its hash; at each command
event, that the recorded task was READY and the state it left (open tasks, a digest
of the data) matches the recorded checkpoint; each service result, recomputed with
the metric history as it stood then, matches the recorded one (numbers drawn from a
sequence are taken from the record, not recomputed); timers fire where the record
says they fired. The first difference is reported with its seq and element.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.task import Task
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import services, specs, stepping
from engine.errors import DomainError, NotFound
from engine.history import describe as describe_event
from engine.store import Event, Instance, MetricValue, ProcessDefinition

COMMAND_EVENTS = {"instance_started", "task_completed", "timer_fired"}
NEUTRAL_EVENTS = {"task_claimed", "task_unclaimed"}


class Mismatch(Exception):
    def __init__(
        self, seq: int, element: str | None, message: str, expected: Any = None, actual: Any = None
    ) -> None:
        super().__init__(message)
        self.seq = seq
        self.element = element
        self.message = message
        self.expected = expected
        self.actual = actual

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "element": self.element,
            "message": self.message,
            "expected": self.expected,
            "actual": self.actual,
        }


class ReplayServices:
    """Services as they stood when the command ran: history before it, recorded numbers."""

    def __init__(self, session: Session, before: datetime, recorded: list[Event]) -> None:
        self.session = session
        self.before = before
        self.recorded_numbers: Iterator[Any] = iter(
            e.payload.get("result")
            for e in recorded
            if e.payload.get("operation") == "csi/assign_rfc"
        )
        self.calls: list[tuple[Task, services.ServiceCall]] = []

    def metric_history(self, code: str, limit: int) -> list[float]:
        rows = self.session.scalars(
            select(MetricValue.value)
            .where(MetricValue.code == code, MetricValue.recorded_at < self.before)
            .order_by(MetricValue.recorded_at.desc(), MetricValue.id.desc())
            .limit(limit)
        ).all()
        return list(reversed(rows))

    def next_number(self, prefix: str) -> str:
        value = next(self.recorded_numbers, None)
        if not isinstance(value, str) or not value.startswith(prefix):
            raise DomainError(f"the record holds no {prefix} number for this step")
        return value

    def record(self, task: Task, call: services.ServiceCall) -> None:
        self.calls.append((task, call))


@dataclass
class StepState:
    seq: int
    type: str
    actor: str | None
    at: str
    bpmn_id: str | None
    completed_elements: list[str]
    active_elements: list[str]
    open_tasks: list[dict[str, Any]]
    data: dict[str, Any]
    changed: list[str]
    before: dict[str, Any]  # the previous step's value of each changed key
    event: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "type": self.type,
            "actor": self.actor,
            "at": self.at,
            "bpmn_id": self.bpmn_id,
            "completed_elements": self.completed_elements,
            "active_elements": self.active_elements,
            "open_tasks": self.open_tasks,
            "data": self.data,
            "changed": self.changed,
            "before": self.before,
            "event": self.event,
        }


@dataclass
class ReplayResult:
    ok: bool
    steps: int
    step: int
    state: StepState | None
    mismatch: Mismatch | None
    trail: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "steps": self.steps,
            "step": self.step,
            "state": self.state.as_dict() if self.state else None,
            "mismatch": self.mismatch.as_dict() if self.mismatch else None,
        }


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def _pinned_specs(session: Session, instance: Instance, started: Event) -> specs.ParsedSpecs:
    ids = [instance.definition_id, *(instance.called_definitions or {}).values()]
    rows = [session.get(ProcessDefinition, i) for i in ids]
    for row in rows:
        if row is None:
            raise Mismatch(started.seq, None, "a pinned process definition is missing")
        if specs.content_hash(row.bpmn_xml.encode("utf-8")) != row.content_hash:
            raise Mismatch(
                started.seq,
                row.process_id,
                f"definition {row.process_id} v{row.version} no longer matches its content hash",
                row.content_hash,
                specs.content_hash(row.bpmn_xml.encode("utf-8")),
            )
    recorded = started.payload.get("definition") or {}
    top = rows[0]
    assert top is not None
    if recorded.get("id") != top.id or recorded.get("hash") != top.content_hash:
        raise Mismatch(
            started.seq,
            top.process_id,
            "the instance was started on another definition",
            recorded,
            {"id": top.id, "hash": top.content_hash},
        )
    return specs.parsed_specs(top.process_id, [r for r in rows if r is not None])


def replay(
    session: Session, instance_id: int, step: int | None = None, *, to_the_end: bool = True
) -> ReplayResult:
    """Replay every event; return the state at `step` (default: the last) and the first
    mismatch, if any. A mismatch stops the replay: what follows it cannot be trusted.
    With `to_the_end=False` the replay stops at `step` (and vouches only for that far)."""
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"no instance {instance_id}")
    events = list(
        session.scalars(select(Event).where(Event.instance_id == instance_id).order_by(Event.seq))
    )
    total = len(events)
    target = total if step is None else max(0, min(step, total))
    workflow: BpmnWorkflow | None = None
    state: StepState | None = None
    previous: dict[str, Any] = {}
    pending: list[tuple[Task, services.ServiceCall]] = []
    current: Event | None = None
    try:
        for index, event in enumerate(events):
            current = event
            if event.seq != index + 1:
                raise Mismatch(index + 1, None, f"event {index + 1} is missing from the log")
            following = []
            for later in events[index + 1 :]:
                if later.type != "service_completed":
                    break
                following.append(later)
            if event.type in COMMAND_EVENTS:
                if pending:
                    task, call = pending[0]
                    raise Mismatch(
                        event.seq,
                        stepping.element(task),
                        f"the replay called {call.operation} before this step, the record has no such result",
                    )
                host = ReplayServices(session, event.at, following)
                workflow = _replay_command(session, instance, event, workflow, host)
                pending = list(host.calls)
                _check_checkpoint(event, workflow)
            elif event.type == "service_completed":
                _check_service(event, pending)
            elif event.type in NEUTRAL_EVENTS:
                # A claim moves nothing, but its task must be open in the replay too.
                if workflow is None or event.task_id is None:
                    raise Mismatch(event.seq, event.bpmn_id, "a claim without an open task")
                try:
                    stepping.ready_task(workflow, event.task_id)
                except DomainError as exc:
                    raise Mismatch(
                        event.seq, event.bpmn_id, "the claimed task is not open in the replay"
                    ) from exc
            elif event.type == "instance_completed":
                if workflow is None or not workflow.completed:
                    raise Mismatch(event.seq, None, "recorded as completed, but the replay is not")
            else:
                raise Mismatch(
                    event.seq, event.bpmn_id, f"cannot replay an event of type {event.type}"
                )
            if workflow is not None and event.seq == target - 1:
                previous = stepping.observe(workflow).data
            if workflow is not None and event.seq == target:
                state = _state_at(event, workflow, previous)
                if not to_the_end:
                    return ReplayResult(True, total, target, state, None)
        if pending:
            task, call = pending[0]  # the replay produced results the record lacks
            raise Mismatch(
                total,
                stepping.element(task),
                f"the replay called {call.operation}, the record has no such result",
            )
        return ReplayResult(True, total, target, state, None)
    except Mismatch as mismatch:
        return ReplayResult(False, total, target, state, mismatch)
    except DomainError as error:
        seq = current.seq if current is not None else 0
        element = current.bpmn_id if current is not None else None
        return ReplayResult(False, total, target, state, Mismatch(seq, element, error.message))


def catch_up(session: Session, instance: Instance, workflow: BpmnWorkflow, from_seq: int) -> None:
    """Bring a workflow loaded from the snapshot at `from_seq` up to the instance's last
    event, through the same steps replay takes (and the same checks: a divergence here
    means the stored state and the log disagree, which must stop the command)."""
    events = list(
        session.scalars(
            select(Event)
            .where(Event.instance_id == instance.id, Event.seq > from_seq)
            .order_by(Event.seq)
        )
    )
    pending: list[tuple[Task, services.ServiceCall]] = []
    for index, event in enumerate(events):
        if event.type in COMMAND_EVENTS:
            following = []
            for later in events[index + 1 :]:
                if later.type != "service_completed":
                    break
                following.append(later)
            host = ReplayServices(session, event.at, following)
            try:
                _replay_command(session, instance, event, workflow, host)
                _check_checkpoint(event, workflow)
            except Mismatch as mismatch:
                raise DomainError(
                    f"instance {instance.id} cannot be rebuilt at seq {mismatch.seq}: {mismatch.message}"
                ) from mismatch
            pending = list(host.calls)
        elif event.type == "service_completed":
            try:
                _check_service(event, pending)
            except Mismatch as mismatch:
                raise DomainError(
                    f"instance {instance.id} cannot be rebuilt at seq {mismatch.seq}: {mismatch.message}"
                ) from mismatch


def _replay_command(
    session: Session,
    instance: Instance,
    event: Event,
    workflow: BpmnWorkflow | None,
    host: ReplayServices,
) -> BpmnWorkflow:
    payload = event.payload or {}
    id_base = int(payload.get("id_base", event.seq - 1))
    if event.type == "instance_started":
        if workflow is not None:
            raise Mismatch(event.seq, None, "the instance was started twice")
        parsed = _pinned_specs(session, instance, event)
        return stepping.start(parsed, instance.id, payload.get("data") or {}, host)
    if workflow is None:
        raise Mismatch(event.seq, event.bpmn_id, "an event before the instance started")
    workflow.script_engine = stepping.SafeScriptEngine(host)
    if event.type == "task_completed":
        try:
            task = stepping.ready_task(workflow, event.task_id or "")
        except Exception as exc:
            raise Mismatch(
                event.seq, event.bpmn_id, "the recorded task is not ready in the replay"
            ) from exc
        if stepping.element(task) != event.bpmn_id:
            raise Mismatch(
                event.seq,
                event.bpmn_id,
                "the recorded task is another element in the replay",
                event.bpmn_id,
                stepping.element(task),
            )
        stepping.complete(
            workflow, instance.id, id_base, task, payload.get("data") or {}, event.actor or ""
        )
        return workflow
    # timer_fired
    expected = set(payload.get("fired") or [])
    fired = stepping.fire_timers(workflow, instance.id, id_base, force=expected)
    actual = {str(t.id) for t in fired}
    if actual != expected:
        raise Mismatch(
            event.seq,
            event.bpmn_id,
            "other timers fired in the replay",
            sorted(expected),
            sorted(actual),
        )
    return workflow


def _check_checkpoint(event: Event, workflow: BpmnWorkflow) -> None:
    recorded = (event.payload or {}).get("after")
    if recorded is None:
        return
    stepping.restore_timers(workflow, recorded.get("timers") or {})
    actual = stepping.observe(workflow).checkpoint()
    for key in ("open_tasks", "data_sha256", "completed", "timers"):
        if recorded.get(key) != actual.get(key):
            raise Mismatch(
                event.seq,
                event.bpmn_id,
                f"after this step the replay differs from the record in {key}",
                recorded.get(key),
                actual.get(key),
            )


def _check_service(event: Event, pending: list[tuple[Task, services.ServiceCall]]) -> None:
    if not pending:
        raise Mismatch(
            event.seq, event.bpmn_id, "the record has a service result the replay did not produce"
        )
    task, call = pending.pop(0)
    recorded = event.payload or {}
    if call.operation != recorded.get("operation") or str(task.id) != event.task_id:
        raise Mismatch(
            event.seq,
            event.bpmn_id,
            "the replay called another service here",
            recorded.get("operation"),
            call.operation,
        )
    result = stepping.plain(call.result)
    if result != recorded.get("result"):
        raise Mismatch(
            event.seq,
            event.bpmn_id,
            f"{call.operation} gives another result on replay",
            recorded.get("result"),
            result,
        )


def _state_at(event: Event, workflow: BpmnWorkflow, previous: dict[str, Any]) -> StepState:
    seen = stepping.observe(workflow)
    open_tasks = [
        {
            "id": str(t.id),
            "bpmn_id": stepping.element(t),
            "name": t.task_spec.bpmn_name,
            "process_id": t.workflow.spec.name,
        }
        for t in stepping.ready_user_tasks(workflow)
    ]
    described = describe_event(event)
    changed = _changed(previous, seen.data)
    return StepState(
        seq=event.seq,
        type=event.type,
        actor=event.actor,
        at=described["at"],
        bpmn_id=event.bpmn_id,
        completed_elements=seen.completed_elements,
        active_elements=seen.active_elements,
        open_tasks=open_tasks,
        data=seen.data,
        changed=changed,
        before={key: previous.get(key) for key in changed},
        event=described,
    )
