"""Runtime commands: start, claim, unclaim, complete, fire timers, deploy.

Each command is one transaction: lock the instance row, check the task is READY
and the actor may do it, validate the data, move the workflow (engine.stepping),
then append events and write the projections and the state, and commit. Any
failure rolls all of it back and evicts the in-memory workflow, so the next
command reloads the last committed state.

Every command's main event records `id_base` (task ids are derived from it, see
engine.ids) and `after`, a checkpoint of the state it left, so that replay can
rebuild the instance event by event and compare at every step.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.task import Task
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import forms, history, records, replay, services, specs, stepping
from engine.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from engine.roles import ADMIN, AUDITOR, MODELER, role_for_lane
from engine.serializer import StateSerializer
from engine.store import (
    Database,
    HumanTask,
    Instance,
    Metric,
    MetricValue,
    ProcessDefinition,
    User,
    WorkflowState,
    Writes,
    is_postgres,
    table,
    utcnow,
)

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
# Serialising the whole workflow costs far more than a step (DESIGN 9), so the state
# is written every N events; a cold load replays the events after the snapshot.
DEFAULT_SNAPSHOT_EVERY = 20


@dataclass(frozen=True)
class Actor:
    username: str
    roles: frozenset[str]

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.username, frozenset(user.roles or []))

    @property
    def read_only(self) -> bool:
        """Auditors read everything and change nothing, unless also holding a working role."""
        return not (self.roles - {AUDITOR})


SYSTEM = Actor(SYSTEM_ACTOR, frozenset({ADMIN}))
CLI = Actor("cli", frozenset({ADMIN}))


class DatabaseServices:
    """The ServiceHost of a live command: services read and number through its session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.calls: list[tuple[Task, services.ServiceCall, dict[str, Any]]] = []

    def metric_history(self, code: str, limit: int) -> list[float]:
        rows = self.session.connection().execute(_METRIC_HISTORY, {"code": code, "limit": limit})
        return [value for (value,) in reversed(rows.all())]

    def next_number(self, prefix: str) -> str:
        return records.next_number(self.session, prefix)

    def record(self, task: Task, call: services.ServiceCall, reads: dict[str, Any]) -> None:
        self.calls.append((task, call, reads))


@dataclass
class Remembered:
    """A workflow kept between commands, with what its last command observed of it."""

    workflow: BpmnWorkflow
    seen: stepping.Observation


class WorkflowCache:
    """Workflows kept in memory between commands, keyed by instance and valid for one seq."""

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._items: OrderedDict[int, tuple[int, Remembered]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, instance_id: int, seq: int) -> Remembered | None:
        with self._lock:
            hit = self._items.get(instance_id)
            if hit is None or hit[0] != seq:
                return None
            self._items.move_to_end(instance_id)
            return hit[1]

    def put(self, instance_id: int, seq: int, remembered: Remembered) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._items[instance_id] = (seq, remembered)
            self._items.move_to_end(instance_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def evict(self, instance_id: int) -> None:
        with self._lock:
            self._items.pop(instance_id, None)


@dataclass
class LockedInstance:
    """The instance row as a command holds it (locked) and the end of its event chain."""

    id: int
    process_id: str
    definition_id: int
    called_definitions: dict[str, int]
    status: str
    last_seq: int
    last_hash: str
    snapshot_seq: int
    next_timer_at: datetime | None = None
    record: records.RecordRow | None = None


INSTANCE = table(Instance)
HUMAN_TASK = table(HumanTask)
WORKFLOW_STATE = table(WorkflowState)
METRIC_VALUE = table(MetricValue)

_INSTANCE_COLUMNS = (
    INSTANCE.c.id,
    INSTANCE.c.process_id,
    INSTANCE.c.definition_id,
    INSTANCE.c.called_definitions,
    INSTANCE.c.status,
    INSTANCE.c.last_seq,
    INSTANCE.c.last_hash,
    INSTANCE.c.snapshot_seq,
    INSTANCE.c.next_timer_at,
)
_TASK_COLUMNS = (
    HUMAN_TASK.c.id,
    HUMAN_TASK.c.bpmn_id,
    HUMAN_TASK.c.name,
    HUMAN_TASK.c.role,
    HUMAN_TASK.c.assignee,
    HUMAN_TASK.c.claimed_by,
    HUMAN_TASK.c.status,
)


# Statements built once: building one per call costs more than SQLite takes to run it.
_TASK_AND_INSTANCE = (
    select(*_TASK_COLUMNS, *_INSTANCE_COLUMNS, *records.RECORD_ROW_COLUMNS)
    .select_from(HUMAN_TASK)
    .join(INSTANCE, HUMAN_TASK.c.instance_id == INSTANCE.c.id)
    .outerjoin(records.RECORD_TABLE, records.RECORD_TABLE.c.instance_id == INSTANCE.c.id)
    .where(HUMAN_TASK.c.id == bindparam("task_id"))
)
_LOCK_TASK_AND_INSTANCE = _TASK_AND_INSTANCE.with_for_update(of=[HUMAN_TASK, INSTANCE])
_INSTANCE_AND_RECORD = (
    select(*_INSTANCE_COLUMNS, *records.RECORD_ROW_COLUMNS)
    .select_from(INSTANCE)
    .outerjoin(records.RECORD_TABLE, records.RECORD_TABLE.c.instance_id == INSTANCE.c.id)
    .where(INSTANCE.c.id == bindparam("instance_id"))
)
_LOCK_INSTANCE = _INSTANCE_AND_RECORD.with_for_update(of=INSTANCE)
_LOCK_INSTANCE_SKIP_LOCKED = _INSTANCE_AND_RECORD.with_for_update(of=INSTANCE, skip_locked=True)
# SET columns come from the parameters given; the row is named by `row_id`.
_UPDATE_INSTANCE = update(INSTANCE).where(INSTANCE.c.id == bindparam("row_id"))
_UPDATE_TASK = update(HUMAN_TASK).where(HUMAN_TASK.c.id == bindparam("row_id"))
_CANCEL_TASKS = (
    update(HUMAN_TASK)
    .where(HUMAN_TASK.c.id.in_(bindparam("ids", expanding=True)), HUMAN_TASK.c.status == "open")
    .values(status="cancelled", completed_at=bindparam("at"))
)
# inline: no RETURNING of generated keys, which nothing reads (and a pipeline cannot yet)
_INSERT_TASKS = insert(HUMAN_TASK).inline()
_INSERT_READINGS = insert(METRIC_VALUE).inline()
_INSERT_STATE = insert(WORKFLOW_STATE).inline()
_UPDATE_STATE = update(WORKFLOW_STATE).where(WORKFLOW_STATE.c.instance_id == bindparam("row_id"))
_STATE_OF = select(WORKFLOW_STATE.c.seq, WORKFLOW_STATE.c.state).where(
    WORKFLOW_STATE.c.instance_id == bindparam("instance_id")
)
_METRIC_HISTORY = (
    select(METRIC_VALUE.c.value)
    .where(METRIC_VALUE.c.code == bindparam("code"))
    .order_by(METRIC_VALUE.c.recorded_at.desc(), METRIC_VALUE.c.id.desc())
    .limit(bindparam("limit"))
)


@dataclass(frozen=True)
class OpenTask:
    """The human_task columns a command checks."""

    id: str
    bpmn_id: str
    name: str
    role: str | None
    assignee: str | None
    claimed_by: str | None
    status: str


def _locked(values: Any) -> LockedInstance:
    instance = LockedInstance(*values[: len(_INSTANCE_COLUMNS)])
    instance.called_definitions = dict(instance.called_definitions or {})
    instance.record = records.row_from(values[len(_INSTANCE_COLUMNS) :])
    return instance


@dataclass
class CommandResult:
    instance_id: int
    status: str
    events: list[int] = field(default_factory=list)
    open_tasks: list[str] = field(default_factory=list)
    started_instance_id: int | None = None


@dataclass
class TaskView:
    """A task with its form, for the form page and GET /tasks/<id>."""

    task: HumanTask
    form: forms.Form
    schema: dict[str, Any]
    data: dict[str, Any]
    context: dict[str, Any]
    record_number: str | None


def _duration(value: str | None) -> timedelta | None:
    if not value:
        return None
    try:
        parsed = TimerEventDefinition.parse_iso_duration(value)
        return TimerEventDefinition.get_timedelta_from_start(parsed)
    except Exception:
        return None


class Runtime:
    """The service layer: use-case functions that own their transaction.

    The write path uses Core statements on the tables, a handful per command: the
    ORM's unit of work cost several times the engine step itself."""

    def __init__(
        self,
        db: Database,
        *,
        cache: WorkflowCache | None = None,
        forms_dir: Path = forms.FORMS_DIR,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        # Every command reads the time from here: tests and the worker's --now pass
        # their own, so nothing waits in real time for a timer to come due.
        self.clock = clock
        self.cache = cache if cache is not None else WorkflowCache()
        self.snapshot_every = max(1, snapshot_every)
        self.forms_dir = forms_dir
        self.serializer = StateSerializer()

    # ---- transactions and loading --------------------------------------------------------

    @contextmanager
    def _command(self) -> Iterator[Session]:
        """One command's transaction. On any failure the workflows it touched are
        evicted from memory (they may hold uncommitted steps); a unique-key clash
        means another command won a race for the same instance: 409, not 500."""
        touched: set[int] = set()
        remember: list[tuple[int, int, Remembered]] = []
        try:
            with self.db.transaction() as session:
                session.info["csi_touched"] = touched
                session.info["csi_remember"] = remember
                writes = Writes(session)
                yield session
                writes.flush()
            for instance_id, seq, remembered in remember:
                self.cache.put(instance_id, seq, remembered)
        except IntegrityError as exc:
            self._evict(touched)
            raise Conflict(
                "the instance changed at the same time; reload and try again",
                reason="changed_meanwhile",
            ) from exc
        except BaseException:
            self._evict(touched)
            raise

    def _evict(self, instance_ids: set[int]) -> None:
        for instance_id in instance_ids:
            self.cache.evict(instance_id)

    @staticmethod
    def _touch(session: Session, instance_id: int) -> None:
        session.info.setdefault("csi_touched", set()).add(instance_id)

    def _lock_instance(
        self, session: Session, instance_id: int, *, skip_locked: bool = False
    ) -> LockedInstance | None:
        query = _INSTANCE_AND_RECORD
        if is_postgres(session):
            query = _LOCK_INSTANCE_SKIP_LOCKED if skip_locked else _LOCK_INSTANCE
        values = session.connection().execute(query, {"instance_id": instance_id}).one_or_none()
        if values is None:
            return None
        self._touch(session, instance_id)
        return _locked(values)

    def _load(
        self, session: Session, instance: LockedInstance, host: DatabaseServices
    ) -> Remembered:
        """The cached workflow when it is current, else the snapshot plus the events since."""
        remembered = self.cache.get(instance.id, instance.last_seq)
        if remembered is None:
            state = (
                session.connection().execute(_STATE_OF, {"instance_id": instance.id}).one_or_none()
            )
            if state is None:
                raise NotFound(f"instance {instance.id} has no state")
            parsed = specs.spec_for_instance(
                session, instance.definition_id, instance.called_definitions
            )
            workflow = self.serializer.loads(state.state, parsed)
            if state.seq < instance.last_seq:
                replay.catch_up(session, instance.id, workflow, state.seq)
            remembered = Remembered(workflow, stepping.observe(workflow))
        remembered.workflow.script_engine = stepping.SafeScriptEngine(host)
        return remembered

    def _remember_after_commit(
        self, session: Session, instance: LockedInstance, remembered: Remembered
    ) -> None:
        """Keep the workflow for the next command, once (and only if) this one commits."""
        remembered.workflow.script_engine = stepping.SafeScriptEngine(None)
        session.info["csi_remember"].append((instance.id, instance.last_seq, remembered))

    # ---- who may do what -------------------------------------------------------------------

    def _require_writer(self, actor: Actor) -> None:
        if actor.read_only:
            raise Forbidden("this account may read but not change anything", reason="read_only")

    def may_work_on(self, row: HumanTask | OpenTask, actor: Actor) -> bool:
        if row.role is None or row.role not in actor.roles:
            return False
        return row.assignee is None or row.assignee == actor.username

    def _check_actor(self, row: HumanTask | OpenTask, actor: Actor) -> None:
        self._require_writer(actor)
        if row.role is None or row.role not in actor.roles:
            raise Forbidden(
                f"task {row.bpmn_id} needs the role {row.role}",
                reason="needs_role",
                params={"role": row.role},
            )
        if row.assignee is not None and row.assignee != actor.username:
            raise Forbidden(
                f"task {row.bpmn_id} is assigned to {row.assignee}",
                reason="assigned_to_other",
                params={"user": row.assignee},
            )

    @staticmethod
    def _check_task_id(task_id: str) -> None:
        try:
            UUID(task_id)
        except (ValueError, TypeError, AttributeError) as exc:
            raise NotFound(f"no task {task_id}", reason="no_task") from exc

    def _task_row(self, session: Session, task_id: str) -> HumanTask:
        self._check_task_id(task_id)
        row = session.get(HumanTask, task_id)
        if row is None:
            raise NotFound(f"no task {task_id}", reason="no_task")
        return row

    def _locked_open_task(
        self, session: Session, task_id: str, actor: Actor
    ) -> tuple[OpenTask, LockedInstance]:
        """The task, its instance and its record in one statement, the task and instance
        rows locked on PostgreSQL."""
        self._check_task_id(task_id)
        query = _LOCK_TASK_AND_INSTANCE if is_postgres(session) else _TASK_AND_INSTANCE
        values = session.connection().execute(query, {"task_id": task_id}).one_or_none()
        if values is None:
            raise NotFound(f"no task {task_id}", reason="no_task")
        row = OpenTask(*values[: len(_TASK_COLUMNS)])
        instance = _locked(values[len(_TASK_COLUMNS) :])
        self._touch(session, instance.id)
        if row.status != "open":
            raise Conflict(
                f"task {row.bpmn_id} is already {row.status}",
                reason="task_done",
                params={"status": row.status},
            )
        self._check_actor(row, actor)
        if row.claimed_by not in (None, actor.username):
            raise Conflict(
                f"task {row.bpmn_id} is claimed by {row.claimed_by}",
                reason="claimed_by_other",
                params={"user": row.claimed_by},
            )
        return row, instance

    # ---- after the engine moved -------------------------------------------------------------

    def _finish(
        self,
        session: Session,
        instance: LockedInstance,
        before: stepping.Observation | None,
        workflow: BpmnWorkflow,
        host: DatabaseServices,
        events: history.EventLog,
        main_event: tuple[str, str | None, str | None, dict[str, Any]],
        actor: Actor,
        id_base: int,
        *,
        migrated: bool = False,
    ) -> CommandResult:
        """Record what the command did (its main event with a checkpoint, then each
        service result), update the projections and the state, and remember the workflow
        for the next command once the transaction commits."""
        now = events.at
        seen = stepping.observe(workflow)
        before_data = before.data if before is not None else {}
        type_, task_id, bpmn_id, payload = main_event
        events.append(
            type_,
            actor.username,
            {**payload, "id_base": id_base, "after": seen.checkpoint(before_data)},
            task_id=task_id,
            bpmn_id=bpmn_id,
        )
        readings: list[dict[str, Any]] = []
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
            for reading in call.extra.get("metric_values", []):
                readings.append(
                    {
                        "code": reading["code"],
                        "value": reading["value"],
                        "period": str(reading.get("period") or ""),
                        "instance_id": instance.id,
                        "recorded_by": reading.get("recorded_by"),
                        # replay reads the history as it stood before this event
                        "recorded_at": now,
                    }
                )
        if readings:
            Writes.of(session).add(_INSERT_READINGS, readings)
        self._sync_tasks(
            session,
            instance,
            before,
            seen,
            now,
            task_id if type_ == "task_completed" else None,
            migrated=migrated,
        )
        if seen.completed:
            instance.status = "completed"
            events.append(
                "instance_completed",
                actor.username,
                {"data_sha256": stepping.data_digest(seen.data)},
            )
        if instance.record is not None:
            records.sync(instance.record, seen.data, seen.completed, seen.active_elements, now)
            records.write(session, instance.record)
        events.write(session)
        self._save_instance(
            session, instance, before, seen, workflow, now, first=before is None, migrated=migrated
        )
        self._remember_after_commit(session, instance, Remembered(workflow, seen))
        started = None
        if seen.completed and seen.data.get("next_cycle"):
            started = self._start_next_cycle(session, instance, seen.data, actor)
        return CommandResult(
            instance.id,
            instance.status,
            [e.seq for e in events.appended],
            seen.open_tasks,
            started,
        )

    def _sync_tasks(
        self,
        session: Session,
        instance: LockedInstance,
        before: stepping.Observation | None,
        seen: stepping.Observation,
        now: datetime,
        completed: str | None,
        migrated: bool = False,
    ) -> None:
        """Open a row for each task that became ready; cancel the rows of tasks that went
        away without being completed (a boundary event, a gateway that moved on). After a
        migration, a task that stays open may now be another element, with another name
        or in another lane: its row is written anew (claims stay)."""
        was_open = set(before.open_tasks) if before is not None else set()
        still_open = set(seen.open_tasks)
        gone = sorted(was_open - still_open - {completed} if completed else was_open - still_open)
        writes = Writes.of(session)
        if gone:
            writes.add(_CANCEL_TASKS, {"ids": gone, "at": now})
        fresh = [t for t in seen.ready if str(t.id) not in was_open]
        if fresh:
            writes.add(_INSERT_TASKS, [self._task_row_values(instance, t, now) for t in fresh])
        if migrated:
            for task in seen.ready:
                if str(task.id) in was_open:
                    values = self._task_row_values(instance, task, now)
                    kept = {"id", "instance_id", "claimed_by", "status", "created_at", "due_at"}
                    changed = {k: v for k, v in values.items() if k not in kept}
                    writes.add(_UPDATE_TASK, {"row_id": values["id"], **changed})

    def _task_row_values(
        self, instance: LockedInstance, task: Task, now: datetime
    ) -> dict[str, Any]:
        bpmn_id = stepping.element(task) or task.task_spec.name
        assignee = stepping.assignee_of(task)
        due = _duration(stepping.properties(task).get("due_in"))
        return {
            "id": str(task.id),
            "instance_id": instance.id,
            "process_id": task.workflow.spec.name,
            "bpmn_id": bpmn_id,
            "name": task.task_spec.bpmn_name or task.task_spec.name,
            "lane": task.task_spec.lane,
            "role": role_for_lane(task.task_spec.lane),
            "assignee": assignee,
            "claimed_by": None,
            "label": self._label(task, assignee),
            "status": "open",
            "created_at": now,
            "due_at": now + due if due else None,
            "completed_at": None,
            "completed_by": None,
            "data": self._form_inputs(bpmn_id, task),
        }

    def _form_inputs(self, bpmn_id: str, task: Task) -> dict[str, Any]:
        try:
            names = forms.load_form(bpmn_id, self.forms_dir).inputs
        except NotFound:
            return {}
        return history.plain({k: v for k, v in task.data.items() if k in names})

    @staticmethod
    def _label(task: Task, assignee: str | None) -> str:
        data = task.data
        parts = []
        if data.get("rfc_number"):
            parts.append(str(data["rfc_number"]))
        measure = data.get("measure")
        if isinstance(measure, dict) and measure.get("title"):
            parts.append(str(measure["title"]))
        if assignee:
            parts.append(assignee)
        return " · ".join(parts)[:250]

    def _save_instance(
        self,
        session: Session,
        instance: LockedInstance,
        before: stepping.Observation | None,
        seen: stepping.Observation,
        workflow: BpmnWorkflow,
        now: datetime,
        *,
        first: bool,
        migrated: bool = False,
    ) -> None:
        """The instance row (only the columns that changed) and, when due, the snapshot:
        every N events, at the start, at the end and whenever the instance comes to rest
        on a timer (a cold load then replays nothing)."""
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
            or instance.last_seq - instance.snapshot_seq >= self.snapshot_every
        ):
            state = {
                "seq": instance.last_seq,
                "state": self.serializer.dumps(workflow),
                "saved_at": now,
            }
            if first:
                Writes.of(session).add(_INSERT_STATE, {"instance_id": instance.id, **state})
            else:
                Writes.of(session).add(_UPDATE_STATE, {"row_id": instance.id, **state})
            instance.snapshot_seq = instance.last_seq
            values["snapshot_seq"] = instance.last_seq
        Writes.of(session).add(_UPDATE_INSTANCE, {"row_id": instance.id, **values})

    # ---- commands --------------------------------------------------------------------------

    def start_instance(
        self,
        actor: Actor,
        process_id: str = records.IMPROVEMENT_PROCESS,
        data: Mapping[str, Any] | None = None,
    ) -> CommandResult:
        """Start a process: a user holding the role of its start event's lane (or an
        administrator) may."""
        self._require_writer(actor)
        with self._command() as session:
            return self._start(
                session, actor, process_id, data if data is not None else {}, check_starter=True
            )

    def _start(
        self,
        session: Session,
        actor: Actor,
        process_id: str,
        data: Any,
        parent_id: int | None = None,
        *,
        check_starter: bool = False,
    ) -> CommandResult:
        if not isinstance(data, dict):
            raise ValidationFailed("initial data must be an object", {"data": ["not an object"]})
        try:
            data = json.loads(json.dumps(data, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValidationFailed("initial data must be JSON", {"data": [str(exc)]}) from exc
        bad = [k for k in data if not k.isidentifier() or k.startswith("_")]
        if bad:
            raise ValidationFailed(
                "variable names must be identifiers without a leading '_'",
                {f"data/{k}": ["bad name"] for k in bad},
            )
        definition = specs.latest(session, process_id)
        called = specs.pin_called(session, definition)
        if process_id in specs.called_by_others(session):
            raise ValidationFailed(
                f"{process_id} runs only when another process calls it",
                {"process": ["not startable"]},
            )
        parsed = specs.spec_for_instance(session, definition.id, called)
        starters = parsed.starter_roles
        if check_starter and starters and ADMIN not in actor.roles and not starters & actor.roles:
            raise Forbidden(
                f"starting {process_id} needs the role {', '.join(sorted(starters))}",
                reason="needs_role",
                params={"role": ", ".join(sorted(starters))},
            )
        now = self.clock()
        instance_id = session.execute(
            insert(INSTANCE)
            .values(
                process_id=process_id,
                definition_id=definition.id,
                called_definitions=called,
                status="running",
                last_seq=0,
                last_hash=history.GENESIS_HASH,
                snapshot_seq=0,
                data={},
                completed_elements=[],
                active_elements=[],
                started_by=actor.username,
                started_at=now,
                updated_at=now,
                parent_instance_id=parent_id,
            )
            .returning(INSTANCE.c.id)
        ).scalar_one()
        self._touch(session, instance_id)
        instance = LockedInstance(
            instance_id,
            process_id,
            definition.id,
            dict(called),
            "running",
            0,
            history.GENESIS_HASH,
            0,
        )
        if process_id == records.IMPROVEMENT_PROCESS:
            instance.record = records.create(session, instance_id, actor.username, now)
        host = DatabaseServices(session)
        workflow = stepping.start(parsed, instance_id, data, host)
        events = history.EventLog(instance, now)
        payload = {
            "process_id": process_id,
            "definition": {
                "id": definition.id,
                "version": definition.version,
                "hash": definition.content_hash,
            },
            "called": called,
            "data": data,
            "record_number": instance.record.number if instance.record else None,
        }
        return self._finish(
            session,
            instance,
            None,
            workflow,
            host,
            events,
            ("instance_started", None, None, payload),
            actor,
            0,
        )

    def _start_next_cycle(
        self, session: Session, instance: LockedInstance, data: dict[str, Any], actor: Actor
    ) -> int:
        """4.8: the next cycle starts from this one's metrics, with the measured values as
        the new baselines."""
        current = {g.get("metric"): g.get("current") for g in data.get("gaps") or []}
        targets = [
            {
                "code": t.get("code"),
                "baseline": current.get(t.get("code"), t.get("baseline")),
                "target": t.get("target"),
            }
            for t in data.get("targets") or []
        ]
        record = instance.record
        seed = {
            "source": "periodic_review",
            "reference": record.number if record is not None else f"#{instance.id}",
            "description": data.get("carried_over") or data.get("summary") or "",
            "process_owners": data.get("process_owners") or [],
            "metrics": data.get("metrics") or [],
            "targets": targets,
            "previous_instance": instance.id,
        }
        return self._start(
            session, actor, instance.process_id, seed, parent_id=instance.id
        ).instance_id

    def claim_task(self, task_id: str, actor: Actor) -> CommandResult:
        return self._set_claim(task_id, actor, claim=True)

    def unclaim_task(self, task_id: str, actor: Actor) -> CommandResult:
        return self._set_claim(task_id, actor, claim=False)

    def _set_claim(self, task_id: str, actor: Actor, *, claim: bool) -> CommandResult:
        with self._command() as session:
            row, instance = self._locked_open_task(session, task_id, actor)
            cached = self.cache.get(instance.id, instance.last_seq)
            events = history.EventLog(instance, self.clock())
            if claim and row.claimed_by is None:
                claimed_by: str | None = actor.username
                events.append(
                    "task_claimed", actor.username, {}, task_id=row.id, bpmn_id=row.bpmn_id
                )
            elif not claim and row.claimed_by == actor.username:
                claimed_by = None
                events.append(
                    "task_unclaimed", actor.username, {}, task_id=row.id, bpmn_id=row.bpmn_id
                )
            else:
                return CommandResult(instance.id, instance.status)
            writes = Writes.of(session)
            writes.add(_UPDATE_TASK, {"row_id": row.id, "claimed_by": claimed_by})
            events.write(session)
            writes.add(
                _UPDATE_INSTANCE,
                {
                    "row_id": instance.id,
                    "last_seq": instance.last_seq,
                    "last_hash": instance.last_hash,
                    "updated_at": events.at,
                },
            )
            if cached is not None:
                # A claim moves no workflow: the cached copy stays valid for the new seq.
                self._remember_after_commit(session, instance, cached)
            return CommandResult(instance.id, instance.status, [e.seq for e in events.appended])

    def complete_task(self, task_id: str, actor: Actor, data: Mapping[str, Any]) -> CommandResult:
        with self._command() as session:
            row, instance = self._locked_open_task(session, task_id, actor)
            id_base = instance.last_seq
            host = DatabaseServices(session)
            loaded = self._load(session, instance, host)
            workflow = loaded.workflow
            task = stepping.ready_task(workflow, task_id)
            form = forms.load_form(row.bpmn_id, self.forms_dir)
            clean = forms.validate_submission(form, self._option_source(session, task.data), data)
            # A field left out clears what an earlier pass stored under that name (a
            # second review without a comment must not keep the first one's).
            clean = {name: clean.get(name) for name in form.schema.get("properties", {})}

            events = history.EventLog(instance, self.clock())
            if row.claimed_by is None:
                events.append(
                    "task_claimed", actor.username, {}, task_id=row.id, bpmn_id=row.bpmn_id
                )
            Writes.of(session).add(
                _UPDATE_TASK,
                {
                    "row_id": row.id,
                    "status": "completed",
                    "claimed_by": actor.username,
                    "completed_at": events.at,
                    "completed_by": actor.username,
                },
            )
            if instance.record is not None:
                records.note_task(
                    session, instance.record, row.bpmn_id, clean, actor.username, events.at
                )

            stepping.complete(workflow, instance.id, id_base, task, clean, actor.username)
            payload = {"data": clean, "name": row.name}
            return self._finish(
                session,
                instance,
                loaded.seen,
                workflow,
                host,
                events,
                ("task_completed", row.id, row.bpmn_id, payload),
                actor,
                id_base,
            )

    def fire_due_timers(self, now: datetime | None = None, limit: int = 100) -> list[int]:
        """Fire timers that are due; returns the instances that moved. Several workers may
        run this at once: on PostgreSQL each skips rows another worker holds."""
        now = now or self.clock()
        with self.db.sessions() as session:
            due_ids = session.scalars(
                select(INSTANCE.c.id)
                .where(INSTANCE.c.status == "running", INSTANCE.c.next_timer_at <= now)
                .order_by(INSTANCE.c.next_timer_at)
                .limit(limit)
            ).all()
        moved: list[int] = []
        for instance_id in due_ids:
            try:
                if self._fire_timers_of(instance_id, now):
                    moved.append(instance_id)
            except DomainError:
                log.exception("timer of instance %s failed", instance_id)
        return moved

    def _fire_timers_of(self, instance_id: int, now: datetime) -> bool:
        with self._command() as session:
            instance = self._lock_instance(session, instance_id, skip_locked=True)
            if instance is None or instance.status != "running":
                return False
            if instance.next_timer_at is None or instance.next_timer_at > now:
                return False
            id_base = instance.last_seq
            host = DatabaseServices(session)
            loaded = self._load(session, instance, host)
            fired = stepping.fire_timers(loaded.workflow, instance.id, id_base, now=now)
            if not fired:
                self.cache.evict(instance.id)
                return False
            events = history.EventLog(instance, now)
            payload = {
                "fired": [str(t.id) for t in fired],
                "due": [t.internal_data.get("event_value") for t in fired],
            }
            main = ("timer_fired", str(fired[0].id), stepping.element(fired[0]), payload)
            self._finish(
                session, instance, loaded.seen, loaded.workflow, host, events, main, SYSTEM, id_base
            )
            return True

    def migrate_instance(
        self, instance_id: int, actor: Actor, version: int | None = None
    ) -> CommandResult:
        """Move a running instance onto another deployed version of its process (the
        latest by default), with the latest versions of what that version calls: an
        explicit, audited command (instance_migrated), never a side effect of deploy."""
        if not (MODELER in actor.roles or ADMIN in actor.roles):
            raise Forbidden("migrating an instance needs the modeler role")
        with self._command() as session:
            instance = self._lock_instance(session, instance_id)
            if instance is None:
                raise NotFound(f"no instance {instance_id}")
            if instance.status != "running":
                raise Conflict(f"instance {instance_id} is {instance.status}")
            current = session.get(ProcessDefinition, instance.definition_id)
            target = specs.version_of(session, instance.process_id, version)
            called = specs.pin_called(session, target)
            if target.id == instance.definition_id and called == instance.called_definitions:
                raise Conflict(f"instance {instance_id} already runs on v{target.version}")
            parsed = specs.spec_for_instance(session, target.id, called)
            id_base = instance.last_seq
            host = DatabaseServices(session)
            loaded = self._load(session, instance, host)
            stepping.migrate(
                loaded.workflow, parsed, self.serializer.registry, instance.id, id_base
            )
            payload = {
                "from": {
                    "id": instance.definition_id,
                    "version": current.version if current is not None else None,
                    "called": instance.called_definitions,
                },
                "definition": {
                    "id": target.id,
                    "version": target.version,
                    "hash": target.content_hash,
                },
                "called": called,
            }
            instance.definition_id, instance.called_definitions = target.id, called
            events = history.EventLog(instance, self.clock())
            return self._finish(
                session,
                instance,
                loaded.seen,
                loaded.workflow,
                host,
                events,
                ("instance_migrated", None, None, payload),
                actor,
                id_base,
                migrated=True,
            )

    def deploy(self, actor: Actor, xml: bytes, filename: str) -> specs.Deployed:
        """Validate and store a diagram as a new version (modelers and admins only)."""
        if not (MODELER in actor.roles or ADMIN in actor.roles):
            raise Forbidden("deploying diagrams needs the modeler role")
        with self.db.transaction() as session:
            deployed = specs.deploy(session, xml, filename=filename, deployed_by=actor.username)
            session.expunge_all()
            return deployed

    # ---- reads used by forms -----------------------------------------------------------------

    def users_for_options(self, session: Session) -> Callable[[str | None], list[tuple[str, str]]]:
        """Users by role for option lists; read only if a form asks for them."""
        loaded: list[User] = []

        def pick(role: str | None) -> list[tuple[str, str]]:
            if not loaded:
                loaded.extend(
                    session.scalars(
                        select(User).where(User.active.is_(True)).order_by(User.username)
                    )
                )
            users = loaded
            return [
                (u.username, f"{u.display_name} ({u.username})" if u.display_name else u.username)
                for u in users
                if role is None or u.has_role(role)
            ]

        return pick

    def _history_source(self, session: Session) -> forms.HistorySource:
        history_of = DatabaseServices(session).metric_history

        def latest(code: str) -> float | None:
            values = history_of(code, 1)
            return values[-1] if values else None

        def catalogue() -> dict[str, dict[str, Any]]:
            return {
                m.code: {
                    "name_zh": m.name_zh,
                    "name_en": m.name_en,
                    "category": m.category,
                    "unit": m.unit,
                    "direction": m.direction,
                    "method": m.method,
                }
                for m in session.scalars(select(Metric))
            }

        return forms.HistorySource(latest, catalogue)

    @staticmethod
    def _catalogue_options(session: Session) -> Callable[[], list[tuple[str, str]]]:
        def options() -> list[tuple[str, str]]:
            return [
                (m.code, f"{m.code} {m.name_zh} / {m.name_en} ({m.unit})")
                for m in session.scalars(select(Metric).order_by(Metric.code))
            ]

        return options

    def _option_source(self, session: Session, data: Mapping[str, Any]) -> forms.OptionSource:
        return forms.OptionSource(
            self.users_for_options(session), data, self._catalogue_options(session)
        )

    def task_view(self, task_id: str) -> TaskView:
        """The task, its concrete schema and prefilled data, from the projection."""
        with self.db.sessions() as session:
            row = self._task_row(session, task_id)
            form = forms.load_form(row.bpmn_id, self.forms_dir)
            task_data = dict(row.data or {})
            schema = forms.resolve_schema(form.schema, self._option_source(session, task_data))
            data = forms.prefill(form, task_data, self._history_source(session))
            context = {name: task_data[name] for name in form.context if name in task_data}
            record = records.for_instance(session, row.instance_id)
            session.expunge_all()
            return TaskView(row, form, schema, data, context, record.number if record else None)


def seed_definitions(
    session: Session, files: Sequence[Path] | None = None, deployed_by: str = SYSTEM_ACTOR
) -> list[Any]:
    """Deploy the bundled diagrams (idempotent: same content, same version)."""
    deployed = []
    for path in files or specs.bundled_files():
        result = specs.deploy(
            session, path.read_bytes(), filename=path.name, deployed_by=deployed_by
        )
        deployed += result.definitions
    return deployed
