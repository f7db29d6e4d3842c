"""Replay: rebuild an instance from its pinned definition by feeding its recorded
events in order, through the same stepping code the live commands use, and compare
with the record at every step.

What is compared: the pinned definitions' content against their hashes; at each
command event, that the recorded task was READY, each service result (recomputed from
the reads the record holds: the metric history the call read, the numbers it drew)
and then the state the command left (open tasks, timers, a digest of the data, and
which variables changed); timers fire where the record says they fired; a migration
is re-run from the definitions it recorded. At the end, what the pages show (the
instance row, its task rows, its record, its metric values) must be what the events
produce. The first difference is reported with its seq, element and both values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.task import Task
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import services
from engine.audit import state
from engine.audit.chain import describe as describe_event
from engine.audit.chain import plain
from engine.audit.mismatch import Mismatch, payload_of
from engine.audit.projection_checks import check_projections, pinned_after
from engine.audit.state import COMMAND_EVENTS, REPAIRED
from engine.errors import DamagedState, DomainError, NotFound
from engine.pack import Pack
from engine.persistence.models import Event, Instance, ProcessDefinition
from engine.workflow import definitions, parsing, stepping

NEUTRAL_EVENTS = {"task_claimed", "task_unclaimed"}


class ReplayServices:
    """Services as they ran: each call gets the answers the record says it had (the
    metric history it read, the numbers it drew), so a faithful record replays the same
    whatever was written since. A call that asks for something the record lacks, or
    more calls than the record has, is a mismatch."""

    def __init__(self, recorded: list[Event]) -> None:
        self.recorded = recorded
        self.calls: list[tuple[Task, services.ServiceCall, dict[str, Any]]] = []
        self._numbers: dict[int, int] = {}
        self._histories: dict[int, int] = {}

    def _reads(self, what: str) -> Any:
        index = len(self.calls)
        if index >= len(self.recorded):
            raise DomainError("the replay calls a service the record has no result for")
        return (payload_of(self.recorded[index]).get("reads") or {}).get(what)

    def metric_history(self, code: str, limit: int) -> list[float]:
        """The call's next recorded read, which must be of this metric and length."""
        reads = self._reads("metric_history") or []
        index = len(self.calls)
        taken = self._histories.get(index, 0)
        if taken >= len(reads) or list(reads[taken][:2]) != [code, limit]:
            raise DomainError(f"the record holds no metric history of {code} for this step")
        self._histories[index] = taken + 1
        return list(reads[taken][2])

    def next_number(self, prefix: str) -> str:
        numbers = self._reads("next_number") or []
        index = len(self.calls)
        drawn = self._numbers.get(index, 0)
        value = numbers[drawn] if drawn < len(numbers) else None
        if not isinstance(value, str) or not value.startswith(prefix):
            raise DomainError(f"the record holds no {prefix} number for this step")
        self._numbers[index] = drawn + 1
        return value

    def record(self, task: Task, call: services.ServiceCall, reads: dict[str, Any]) -> None:
        self.calls.append((task, call, reads))


@dataclass
class StepState:
    seq: int
    type: str
    actor: str | None
    at: str
    bpmn_id: str | None
    definition_id: int | None  # the definition the instance ran on at this step
    completed_elements: list[str]
    active_elements: list[str]
    taken_flows: list[str]
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
            "definition_id": self.definition_id,
            "completed_elements": self.completed_elements,
            "active_elements": self.active_elements,
            "taken_flows": self.taken_flows,
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


def _pinned_specs(session: Session, event: Event) -> parsing.ParsedSpecs:
    """The definitions an instance_started or instance_migrated event names, checked
    against their content hashes and the hash the event recorded."""
    payload = payload_of(event)
    recorded = payload.get("definition") or {}
    called = {str(k): v for k, v in (payload.get("called") or {}).items()}
    rows: list[ProcessDefinition] = []
    for definition_id in [recorded.get("id"), *called.values()]:
        row = (
            session.get(ProcessDefinition, definition_id)
            if isinstance(definition_id, int)
            else None
        )
        if row is None:
            raise Mismatch(event.seq, None, "a pinned process definition is missing")
        rows.append(row)
        if definitions.hash_of(row) != row.content_hash:
            raise Mismatch(
                event.seq,
                row.process_id,
                f"definition {row.process_id} v{row.version} no longer matches its content hash",
                recorded=row.content_hash,
                replayed=definitions.hash_of(row),
            )
    top = rows[0]
    if recorded.get("hash") != top.content_hash:
        raise Mismatch(
            event.seq,
            top.process_id,
            "the instance ran on another definition than the one stored under its id",
            recorded=recorded,
            replayed={"id": top.id, "hash": top.content_hash},
        )
    return parsing.parsed_specs(top.process_id, rows)


def _services_after(events: list[Event], index: int) -> list[Event]:
    """The service results recorded right after the command event at `index`."""
    found = []
    for later in events[index + 1 :]:
        if later.type != "service_completed":
            break
        found.append(later)
    return found


@dataclass
class Run:
    """A replay in progress: the workflow, the specs it runs on, what the last command
    left, the readings it drew.

    The record names definitions by id and hash, tasks and timers by id (ids are
    deterministic), and checkpoints the state each command left: this run takes the
    pinned definitions, finds what the record names by its id and holds each step to
    its checkpoint. A what-if run (engine.audit.what_if) replays the same record on
    other definitions, and overrides these ways."""

    session: Session
    instance: Instance
    functions: Mapping[str, services.ServiceFunction]
    workflow: BpmnWorkflow | None = None
    parsed: parsing.ParsedSpecs | None = None
    seen: stepping.Observation | None = None
    readings: list[tuple[str, float, str | None]] = field(default_factory=list)
    who: ClassVar[str] = "the replay"  # what the messages call this run

    def specs_for(self, event: Event) -> parsing.ParsedSpecs:
        """The specs an instance_started or instance_migrated event moves the run onto."""
        return _pinned_specs(self.session, event)

    def open_task(self, workflow: BpmnWorkflow, event: Event) -> Task:
        """The open task `event` names; a DomainError when it is not open here."""
        return stepping.ready_task(workflow, event.task_id or "")

    def timers_named(self, workflow: BpmnWorkflow, event: Event) -> set[str]:
        """The ids of the waiting timers a timer_fired event fired."""
        return set(payload_of(event).get("fired") or [])

    def is_recorded_task(self, service_event: Event, task: Task) -> bool:
        """Whether `task` is the one a recorded service result names."""
        return str(task.id) == service_event.task_id

    def settle(
        self, workflow: BpmnWorkflow, event: Event, before: dict[str, Any]
    ) -> stepping.Observation:
        """Where `workflow` stands after `event`, held to the checkpoint it records."""
        return _check_checkpoint(event, workflow, before)

    def services_for(self, recorded: list[Event]) -> ReplayServices:
        """The host a command's service calls read through: the reads the record holds."""
        return ReplayServices(recorded)

    def command(self, events: list[Event], index: int) -> list[Event]:
        """Replay the command event at `index`, compare the service results recorded
        after it and then the state it left; returns those service events."""
        event = events[index]
        recorded = _services_after(events, index)
        host = self.services_for(recorded)
        try:
            workflow = self.workflow = _replay_command(self, event, host)
        except DomainError as error:
            raise Mismatch(event.seq, event.bpmn_id, error.message) from error
        self.check_services(event, recorded, host)
        self.seen = self.settle(workflow, event, self.seen.data if self.seen is not None else {})
        return recorded

    def check_services(self, event: Event, recorded: list[Event], host: ReplayServices) -> None:
        """The service calls a command made, against the results recorded after it."""
        for offset, service_event in enumerate(recorded):
            if offset >= len(host.calls):
                raise Mismatch(
                    service_event.seq,
                    service_event.bpmn_id,
                    f"the record has a service result {self.who} did not produce",
                )
            _check_service(self, service_event, *host.calls[offset][:2])
            for reading in host.calls[offset][1].extra.get("metric_values", []):
                self.readings.append(
                    (reading["code"], float(reading["value"]), reading.get("recorded_by"))
                )
        if len(host.calls) > len(recorded):
            task, call, _ = host.calls[len(recorded)]
            raise Mismatch(
                event.seq,
                stepping.element(task),
                f"{self.who} called {call.operation}, the record has no such result",
            )

    def event(self, events: list[Event], index: int, consumed: set[int]) -> list[int]:
        """Replay the event at `index`; returns the seqs of the service events it consumed."""
        event = events[index]
        payload_of(event)
        if event.type in COMMAND_EVENTS:
            return [e.seq for e in self.command(events, index)]
        if event.type == "service_completed":
            if event.seq not in consumed:
                raise Mismatch(event.seq, event.bpmn_id, "a service result that follows no command")
        elif event.type in NEUTRAL_EVENTS:
            # A claim moves nothing, but its task must be open in the replay too.
            if self.workflow is None or event.task_id is None:
                raise Mismatch(event.seq, event.bpmn_id, "a claim without an open task")
            try:
                self.open_task(self.workflow, event)
            except DomainError as exc:
                raise Mismatch(
                    event.seq, event.bpmn_id, f"the claimed task is not open in {self.who}"
                ) from exc
        elif event.type == "instance_completed":
            if self.workflow is None or not self.workflow.completed:
                raise Mismatch(event.seq, None, f"recorded as completed, but {self.who} is not")
        elif event.type == REPAIRED:
            # The snapshot was rebuilt here: nothing moves, and the state must be the one
            # its checkpoint records.
            if self.workflow is None or self.seen is None:
                raise Mismatch(event.seq, None, "a repair before the instance started")
            self.seen = self.settle(self.workflow, event, self.seen.data)
        else:
            raise Mismatch(event.seq, event.bpmn_id, f"cannot replay an event of type {event.type}")
        return []


class Replaying(Protocol):
    """What `replay_events` feeds the log through: a Run, or runs in lockstep."""

    def event(self, events: list[Event], index: int, consumed: set[int]) -> list[int]: ...


def replay_events(
    run: Replaying,
    events: list[Event],
    first_seq: int,
    at_step: Callable[[Event], None] | None = None,
) -> None:
    """Feed `events` (seq `first_seq` onwards, in order) through `run`; `at_step(event)`
    is called after each event has been replayed. The first difference stops it, as a
    Mismatch."""
    consumed: set[int] = set()
    for index, event in enumerate(events):
        if event.seq != first_seq + index:
            raise Mismatch(
                first_seq + index, None, f"event {first_seq + index} is missing from the log"
            )
        try:
            consumed.update(run.event(events, index, consumed))
        except Mismatch:
            raise
        except Exception as exc:
            # A payload that is JSON but not what its event type holds (edited by hand):
            # reported where it is, like any other difference, never an error.
            raise Mismatch(
                event.seq, event.bpmn_id, f"event {event.seq} cannot be replayed: {exc!r}"
            ) from exc
        if at_step is not None:
            at_step(event)


def replay(
    session: Session,
    pack: Pack,
    instance_id: int,
    step: int | None = None,
    *,
    to_the_end: bool = True,
) -> ReplayResult:
    """Replay every event; return the state at `step` (default: the last) and the first
    mismatch, if any. A mismatch stops the replay: what follows it cannot be trusted.
    A replay to the end also compares what the pages show (instance, tasks, record,
    metric values) with what the replay rebuilt. With `to_the_end=False` the replay
    stops at `step` (and vouches only for that far)."""
    instance, events = instance_and_log(session, instance_id)
    total = len(events)
    target = total if step is None else max(0, min(step, total))
    run = Run(session, instance, pack.services)
    captured: dict[str, Any] = {"previous": {}, "state": None, "at_snapshot": None}
    # A replay to the end also compares the stored state with the replay at its seq.
    snapshot = state.read_snapshot(session, instance) if to_the_end else None
    snapshot_seq = snapshot.seq if snapshot is not None else None

    class _Stop(Exception):
        pass

    def at_step(event: Event) -> None:
        if run.workflow is None:
            return
        if event.seq == snapshot_seq:
            captured["at_snapshot"] = state.Standing.of(run.workflow)
        if event.seq == target - 1:
            captured["previous"] = stepping.observe(run.workflow).data
        if event.seq == target:
            definition_id = pinned_after(events[: event.seq])[0]
            captured["state"] = _state_at(event, run.workflow, captured["previous"], definition_id)
            if not to_the_end:
                raise _Stop

    try:
        replay_events(run, events, 1, at_step)
        if run.workflow is not None and run.seen is not None:
            check_projections(session, pack, instance, run, events)
            if snapshot is not None:
                state.check_snapshot(snapshot, captured["at_snapshot"])
        return ReplayResult(True, total, target, captured["state"], None)
    except _Stop:
        return ReplayResult(True, total, target, captured["state"], None)
    except Mismatch as mismatch:
        return ReplayResult(False, total, target, captured["state"], mismatch)


def instance_and_log(session: Session, instance_id: int) -> tuple[Instance, list[Event]]:
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"no instance {instance_id}")
    events = list(
        session.scalars(select(Event).where(Event.instance_id == instance_id).order_by(Event.seq))
    )
    return instance, events


@dataclass(frozen=True)
class Rebuilt:
    """An instance rebuilt from its log: the workflow, its specs, where it stands."""

    workflow: BpmnWorkflow
    parsed: parsing.ParsedSpecs
    seen: stepping.Observation


def rebuild(session: Session, pack: Pack, instance_id: int) -> Rebuilt:
    """The instance's workflow rebuilt from its log alone, every step checked as replay
    checks it; a Mismatch when the log does not replay."""
    instance, events = instance_and_log(session, instance_id)
    run = Run(session, instance, pack.services)
    replay_events(run, events, 1)
    if run.workflow is None or run.seen is None or run.parsed is None:
        raise Mismatch(1, None, "the log holds no start of the instance")
    return Rebuilt(run.workflow, run.parsed, run.seen)


def catch_up(
    session: Session,
    instance_id: int,
    workflow: BpmnWorkflow,
    from_seq: int,
    functions: Mapping[str, services.ServiceFunction],
) -> None:
    """Bring a workflow loaded from the snapshot at `from_seq` up to the instance's last
    event, through the same steps replay takes (and the same checks: a divergence here
    means the stored state and the log disagree, which must stop the command)."""
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"no instance {instance_id}")
    events = list(
        session.scalars(
            select(Event)
            .where(Event.instance_id == instance_id, Event.seq > from_seq)
            .order_by(Event.seq)
        )
    )
    run = Run(session, instance, functions, workflow, seen=stepping.observe(workflow))
    try:
        replay_events(run, events, from_seq + 1)
    except Mismatch as mismatch:
        # Not the snapshot's fault, maybe: the history after it does not replay, and a
        # rebuild would stop there too. An auditor's replay shows where.
        raise DamagedState(
            f"instance {instance_id} cannot be brought up to date at seq {mismatch.seq}:"
            f" {mismatch.message}; `csi replay {instance_id}` shows where its history differs"
        ) from mismatch


def _replay_command(run: Run, event: Event, host: ReplayServices) -> BpmnWorkflow:
    payload = payload_of(event)
    id_base = int(payload.get("id_base", event.seq - 1))
    instance, workflow = run.instance, run.workflow
    # Timers count from the time the command was recorded at, as they did live.
    engine = stepping.SafeScriptEngine(host, run.functions, event.at)
    if event.type == "instance_started":
        if workflow is not None:
            raise Mismatch(event.seq, None, "the instance was started twice")
        run.parsed = run.specs_for(event)
        return stepping.start(run.parsed, instance.id, payload.get("data") or {}, engine)
    if workflow is None:
        raise Mismatch(event.seq, event.bpmn_id, "an event before the instance started")
    workflow.script_engine = engine
    if event.type == "instance_migrated":
        run.parsed = run.specs_for(event)
        stepping.migrate(workflow, run.parsed, _registry(), instance.id, id_base)
        return workflow
    if event.type == "task_completed":
        try:
            task = run.open_task(workflow, event)
        except Exception as exc:
            raise Mismatch(
                event.seq,
                event.bpmn_id,
                f"the recorded task {event.bpmn_id} is not ready in {run.who}",
            ) from exc
        if stepping.element(task) != event.bpmn_id:
            raise Mismatch(
                event.seq,
                event.bpmn_id,
                f"the recorded task is another element in {run.who}",
                recorded=event.bpmn_id,
                replayed=stepping.element(task),
            )
        stepping.complete(
            workflow, instance.id, id_base, task, payload.get("data") or {}, event.actor or ""
        )
        return workflow
    # timer_fired
    expected = run.timers_named(workflow, event)
    fired = stepping.fire_timers(workflow, instance.id, id_base, force=expected)
    actual = {str(t.id) for t in fired}
    if actual != expected:
        raise Mismatch(
            event.seq,
            event.bpmn_id,
            f"other timers fired in {run.who}",
            recorded=sorted(expected),
            replayed=sorted(actual),
        )
    return workflow


def _check_checkpoint(
    event: Event, workflow: BpmnWorkflow, before: dict[str, Any]
) -> stepping.Observation:
    recorded = payload_of(event).get("after")
    if recorded is not None:
        stepping.restore_timers(workflow, recorded.get("timers") or {})
    seen = stepping.observe(workflow)
    if recorded is None:
        return seen
    actual = seen.checkpoint(before)
    key = state.first_difference(recorded, actual)
    if key is not None and key != "data_sha256":
        raise Mismatch(
            event.seq,
            event.bpmn_id,
            f"after this step the replay differs from the record in {key}",
            recorded=recorded.get(key),
            replayed=actual.get(key),
        )
    if key == "data_sha256":
        expected_changes = recorded.get("changed") or {}
        expected_removed = set(recorded.get("removed") or [])
        for name in sorted(set(expected_changes) | set(actual["changed"])):
            if expected_changes.get(name, _ABSENT) != actual["changed"].get(name, _ABSENT):
                raise Mismatch(
                    event.seq,
                    event.bpmn_id,
                    f"after this step the replay differs from the record in {name}",
                    recorded=expected_changes.get(name, before.get(name)),
                    replayed=actual["changed"].get(name, before.get(name)),
                )
        for name in sorted(expected_removed ^ set(actual["removed"])):
            raise Mismatch(
                event.seq,
                event.bpmn_id,
                f"after this step the replay differs from the record in {name}",
                recorded=None if name in expected_removed else before.get(name),
                replayed=None if name in actual["removed"] else before.get(name),
            )
        raise Mismatch(
            event.seq,
            event.bpmn_id,
            "after this step the replay's data differs from the record",
            recorded=recorded.get("data_sha256"),
            replayed=actual["data_sha256"],
        )
    return seen


_ABSENT = object()


def _registry() -> Any:
    """The serializer's converter registry, for spec diffs."""
    return state.shared_serializer().registry


def _check_service(run: Run, event: Event, task: Task, call: services.ServiceCall) -> None:
    recorded = payload_of(event)
    if call.operation != recorded.get("operation") or not run.is_recorded_task(event, task):
        raise Mismatch(
            event.seq,
            event.bpmn_id,
            f"{run.who} called another service here",
            recorded=recorded.get("operation"),
            replayed=call.operation,
        )
    result = plain(call.result)
    if result != recorded.get("result"):
        raise Mismatch(
            event.seq,
            event.bpmn_id,
            f"{call.operation} gives another result in {run.who}",
            recorded=recorded.get("result"),
            replayed=result,
        )


def _state_at(
    event: Event, workflow: BpmnWorkflow, previous: dict[str, Any], definition_id: int | None
) -> StepState:
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
        definition_id=definition_id,
        completed_elements=seen.completed_elements,
        active_elements=seen.active_elements,
        taken_flows=stepping.taken_flows(workflow),
        open_tasks=open_tasks,
        data=seen.data,
        changed=changed,
        before={key: previous.get(key) for key in changed},
        event=described,
    )
