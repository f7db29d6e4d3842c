"""Loading an instance's workflow for a command, and recording what the command did
once the workflow moved: the main event with a checkpoint, each service result, the
projections (tasks, record, readings), the instance row and, when due, a snapshot.

Every command's main event records `id_base` (task ids are derived from it, see
engine.workflow.ids) and `after`, a checkpoint of the state it left, so that replay
can rebuild the instance event by event and compare at every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow

from engine.access import Actor
from engine.audit import replay, state
from engine.audit.chain import EventLog
from engine.commands.context import LiveServices, Remembered, Unit
from engine.forms.versions import VersionForms
from engine.pack import Completed
from engine.persistence import instances
from engine.persistence.instances import LockedInstance
from engine.persistence.records import write as write_record
from engine.projections import records
from engine.projections.readings import write_readings
from engine.projections.tasks import TaskRows, sync_tasks
from engine.workflow import definitions, stepping
from engine.workflow.model import ProcessModel
from engine.workflow.parsing import ParsedSpecs


@dataclass
class CommandResult:
    instance_id: int
    status: str
    events: list[int] = field(default_factory=list)
    open_tasks: list[str] = field(default_factory=list)
    started_instance_id: int | None = None
    # The seed of the instance that follows this one, when the pack's rule says so.
    successor: dict[str, Any] | None = None


MainEvent = tuple[str, str | None, str | None, dict[str, Any]]  # type, task id, element, payload


def engine_for(unit: Unit, host: LiveServices) -> stepping.SafeScriptEngine:
    return stepping.SafeScriptEngine(host, unit.ctx.pack.services, host.at)


@dataclass
class Moving:
    """An instance a command moves: the locked row, its workflow and the specs it runs
    on, what the previous command left (None for a new instance), the host its service
    calls read through, the events the command appends and the base of its task ids."""

    unit: Unit
    instance: LockedInstance
    workflow: BpmnWorkflow
    parsed: ParsedSpecs
    before: stepping.Observation | None
    host: LiveServices
    events: EventLog

    def __post_init__(self) -> None:
        self.id_base = self.instance.last_seq

    @property
    def forms(self) -> VersionForms:
        """The forms of the versions the workflow runs on."""
        return definitions.forms_for(self.unit.session, self.unit.ctx.forms, self.parsed)

    @property
    def model(self) -> ProcessModel | None:
        """What the instance's process declares (its record, labels)."""
        return self.parsed.models.get(self.instance.process_id)

    def record(
        self, main_event: MainEvent, actor: Actor, *, migrated: bool = False
    ) -> CommandResult:
        return record_progress(self, main_event, actor, migrated=migrated)


def load(unit: Unit, instance: LockedInstance, now: datetime | None = None) -> Moving:
    """The instance's workflow for a command at `now` (the clock's time by default): the
    cached one when it is current, else the snapshot plus the events since."""
    ctx = unit.ctx
    now = now or ctx.clock()
    host = LiveServices(unit.session, now)
    kept = ctx.cache.get(instance.id, instance.last_seq)
    if kept is None:
        # Refused (DamagedState) when the snapshot cannot be read or is not the state its
        # event recorded: a command must not build on it.
        snapshot = state.load_checked(unit.session, instance, ctx.serializer)
        workflow, parsed = snapshot.workflow, snapshot.parsed
        if snapshot.seq < instance.last_seq:
            replay.catch_up(unit.session, instance.id, workflow, snapshot.seq, ctx.pack.services)
        kept = Remembered(workflow, parsed, stepping.observe(workflow))
    kept.workflow.script_engine = engine_for(unit, host)
    return Moving(
        unit, instance, kept.workflow, kept.parsed, kept.seen, host, EventLog(instance, now)
    )


def record_progress(
    moving: Moving, main_event: MainEvent, actor: Actor, *, migrated: bool = False
) -> CommandResult:
    """Record what the command did (its main event with a checkpoint, then each service
    result), update the projections and the state, and remember the workflow for the
    next command once the transaction commits."""
    unit, instance, workflow, parsed = moving.unit, moving.instance, moving.workflow, moving.parsed
    before, host, events, id_base = moving.before, moving.host, moving.events, moving.id_base
    session, now = unit.session, events.at
    seen = stepping.observe(workflow)
    type_, task_id, bpmn_id, payload = main_event
    events.append(
        type_,
        actor.username,
        {**payload, "id_base": id_base, "after": seen.checkpoint(before.data if before else {})},
        task_id=task_id,
        bpmn_id=bpmn_id,
    )
    for task, call, reads in host.calls:
        recorded: dict[str, Any] = {"operation": call.operation, "result": call.result}
        if reads:
            recorded["reads"] = reads
        events.append(
            "service_completed",
            actor.username,
            recorded,
            task_id=str(task.id),
            bpmn_id=stepping.element(task),
        )
    write_readings(session, instance.id, [call for _, call, _ in host.calls], now)
    rows = TaskRows(unit.ctx.pack.roles, moving.forms, parsed.models)
    sync_tasks(
        session,
        rows,
        instance.id,
        set(before.open_tasks) if before is not None else set(),
        seen,
        now,
        task_id if type_ == "task_completed" else None,
        migrated=migrated,
        actor=actor.username,
    )
    if seen.completed:
        instance.status = "completed"
        events.append(
            "instance_completed", actor.username, {"data_sha256": stepping.data_digest(seen.data)}
        )
    model = moving.model
    if instance.record is not None and model is not None:
        records.sync(
            model,
            instance.record,
            seen.data,
            seen.completed,
            seen.completed_elements,
            seen.active_elements,
            now,
            records.columns_of(unit.ctx.pack.manifest),
        )
        write_record(session, instance.record)
    events.write(session)
    _save_instance(unit, instance, before, seen, workflow, now, migrated=migrated)
    unit.remember_after_commit(instance.id, instance.last_seq, Remembered(workflow, parsed, seen))
    successor = None
    if seen.completed and unit.ctx.pack.successor is not None:
        successor = unit.ctx.pack.successor(
            Completed(
                instance.id,
                instance.process_id,
                seen.data,
                instance.record.number if instance.record else None,
            )
        )
    return CommandResult(
        instance.id,
        instance.status,
        [e.seq for e in events.appended],
        seen.open_tasks,
        successor=successor,
    )


def _save_instance(
    unit: Unit,
    instance: LockedInstance,
    before: stepping.Observation | None,
    seen: stepping.Observation,
    workflow: BpmnWorkflow,
    now: Any,
    *,
    migrated: bool = False,
) -> None:
    """The instance row (only the columns that changed) and, when due, the snapshot:
    every N events, at the start, at the end and whenever the instance comes to rest
    on a timer (a cold load then replays nothing)."""
    first = before is None
    values: dict[str, Any] = {
        "last_seq": instance.last_seq,
        "last_hash": instance.last_hash,
        "updated_at": now,
    }
    if before is None or seen.data_sha256 != before.data_sha256:  # digests are at hand
        values["data"] = seen.data
    if before is None or seen.completed_elements != before.completed_elements:
        values["completed_elements"] = seen.completed_elements
    if before is None or seen.active_elements != before.active_elements:
        values["active_elements"] = seen.active_elements
    if before is None or seen.next_timer_at != before.next_timer_at:
        values["next_timer_at"] = seen.next_timer_at
    if seen.completed:
        values["status"] = "completed"
        values["completed_at"] = now
    if instance.incident is not None:
        values["incident"] = None  # it moved again: the worker may try its timers anew
    if migrated:
        # The state names elements of the new version from here on: a cold load must
        # start from a snapshot taken on it.
        values["definition_id"] = instance.definition_id
        values["called_definitions"] = instance.called_definitions
    resting = not seen.open_tasks and bool(seen.timers)
    if (
        first
        or migrated
        or seen.completed
        or resting
        or instance.last_seq - instance.snapshot_seq >= unit.ctx.snapshot_every
    ):
        dumped = unit.ctx.serializer.dumps(workflow)
        instances.save_state(unit.session, instance, dumped, now, first=first)
        values["snapshot_seq"] = instance.last_seq
    instances.update_instance(unit.session, instance.id, values)
