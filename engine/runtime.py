"""Runtime commands: start, claim, unclaim, complete, fire timers.

Each command is one transaction: lock the instance row, check the task is READY
and the actor may do it, validate the data, run the engine, then append events and
write the projections (human tasks, instance data, record) and the state, and
commit. Any failure rolls all of it back and evicts the in-memory workflow, so the
next command reloads the last committed state.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import expressions, forms, history, records, services, specs
from engine.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    ServiceFailed,
    UnsafeExpression,
    ValidationFailed,
)
from engine.roles import ADMIN, AUDITOR, MODELER, role_for_lane
from engine.serializer import StateSerializer
from engine.store import (
    Database,
    HumanTask,
    Instance,
    MetricValue,
    User,
    WorkflowState,
    is_postgres,
    utcnow,
)

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Actor:
    username: str
    roles: frozenset[str]

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.username, frozenset(user.roles or []))

    @property
    def read_only(self) -> bool:
        return AUDITOR in self.roles and ADMIN not in self.roles and len(self.roles) == 1


SYSTEM = Actor(SYSTEM_ACTOR, frozenset())
CLI = Actor("cli", frozenset({ADMIN}))


# -- script engine --------------------------------------------------------------------------


class _SafeEnvironment(BasePythonScriptEngineEnvironment):
    """Used where SpiffWorkflow evaluates without a task (completion conditions)."""

    def evaluate(
        self, expression: str, context: dict[str, Any], external_context: Any = None
    ) -> Any:
        return expressions.evaluate(expression, {**(external_context or {}), **context})

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        expressions.execute(script, context)
        return True


class CommandContext:
    """What services may ask of the database during one command, and what they did."""

    def __init__(self, session: Session, instance: Instance) -> None:
        self.session = session
        self.instance = instance
        self.calls: list[tuple[Task, services.ServiceCall]] = []
        self.failure: BaseException | None = None

    def metric_history(self, code: str, limit: int) -> list[float]:
        rows = self.session.scalars(
            select(MetricValue.value)
            .where(MetricValue.code == code)
            .order_by(MetricValue.recorded_at.desc(), MetricValue.id.desc())
            .limit(limit)
        ).all()
        return list(reversed(rows))

    def next_number(self, prefix: str) -> str:
        return records.next_number(self.session, prefix)


class SafeScriptEngine(PythonScriptEngine):
    """Conditions and scripts through the AST whitelist; services through the registry."""

    def __init__(self, context: CommandContext | None = None) -> None:
        super().__init__(environment=_SafeEnvironment())
        self.context = context

    def evaluate(self, task: Task, expression: str, external_context: Any = None) -> Any:
        try:
            return expressions.evaluate(expression, {**(external_context or {}), **task.data})
        except UnsafeExpression:
            raise
        except Exception as exc:
            raise WorkflowException(
                f"cannot evaluate {expression!r} at {task.task_spec.bpmn_id}: {exc}"
            ) from exc

    def execute(self, task: Task, script: str, external_context: Any = None) -> bool:
        expressions.execute(script, task.data)
        return True

    def call_service(self, task: Task, **kwargs: Any) -> str:
        name = kwargs["operation_name"]
        function = services.REGISTRY.get(name)
        if function is None or self.context is None:
            raise ServiceFailed(f"service {name!r} is not available")
        params = {k: v["value"] for k, v in (kwargs.get("operation_params") or {}).items()}
        try:
            call = function(params, self.context)
            result = json.dumps(call.result)
        except Exception as exc:
            # SpiffWorkflow masks errors raised here; keep the original to re-raise.
            self.context.failure = exc
            raise
        self.context.calls.append((task, call))
        return result


# -- workflow cache ---------------------------------------------------------------------------


class WorkflowCache:
    """Workflows kept in memory between commands, keyed by instance and valid for one seq."""

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._items: OrderedDict[int, tuple[int, BpmnWorkflow]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, instance_id: int, seq: int) -> BpmnWorkflow | None:
        with self._lock:
            hit = self._items.get(instance_id)
            if hit is None or hit[0] != seq:
                return None
            self._items.move_to_end(instance_id)
            return hit[1]

    def put(self, instance_id: int, seq: int, workflow: BpmnWorkflow) -> None:
        with self._lock:
            self._items[instance_id] = (seq, workflow)
            self._items.move_to_end(instance_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def evict(self, instance_id: int) -> None:
        with self._lock:
            self._items.pop(instance_id, None)


# -- results -----------------------------------------------------------------------------------


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


# -- the runtime -----------------------------------------------------------------------------


def _duration(value: str | None, default: timedelta | None = None) -> timedelta | None:
    if not value:
        return default
    try:
        parsed = TimerEventDefinition.parse_iso_duration(value)
        return TimerEventDefinition.get_timedelta_from_start(parsed)
    except Exception:
        return default


def _element(task: Task) -> str | None:
    return getattr(task.task_spec, "bpmn_id", None)


def _multi_instance_of(task: Task) -> MultiInstanceTask | None:
    """The multi-instance spec `task` is one instance of (a task that merely follows a
    multi-instance task is its child in the tree too, so compare the child spec)."""
    parent = task.parent
    spec = parent.task_spec if parent is not None else None
    if isinstance(spec, MultiInstanceTask) and spec.task_spec == task.task_spec.name:
        return spec
    return None


def _properties(task: Task) -> dict[str, str]:
    extensions = getattr(task.task_spec, "extensions", None) or {}
    return dict(extensions.get("properties") or {})


class Runtime:
    """The service layer: use-case functions that own their transaction."""

    def __init__(
        self,
        db: Database,
        *,
        cache: WorkflowCache | None = None,
        forms_dir: Any = forms.FORMS_DIR,
    ) -> None:
        self.db = db
        self.cache = cache or WorkflowCache()
        self.forms_dir = forms_dir
        self.serializer = StateSerializer()

    # ---- helpers -------------------------------------------------------------------------

    def _lock_instance(self, session: Session, instance_id: int) -> Instance:
        query = select(Instance).where(Instance.id == instance_id)
        if is_postgres(session):
            query = query.with_for_update(of=Instance)
        instance = session.scalars(query).unique().one_or_none()
        if instance is None:
            raise NotFound(f"no instance {instance_id}")
        # The row may have changed between an earlier read and the lock.
        session.refresh(instance)
        session.info.setdefault("csi_touched", set()).add(instance.id)
        return instance

    def _load(self, session: Session, instance: Instance, context: CommandContext) -> BpmnWorkflow:
        workflow = self.cache.get(instance.id, instance.last_seq)
        if workflow is None:
            state = session.get(WorkflowState, instance.id)
            if state is None:
                raise NotFound(f"instance {instance.id} has no state")
            parsed = specs.spec_for_instance(
                session, instance.definition_id, instance.called_definitions or {}
            )
            workflow = self.serializer.loads(state.state, parsed)
        workflow.script_engine = SafeScriptEngine(context)
        return workflow

    @contextmanager
    def _command(self) -> Iterator[Session]:
        """One command's transaction. On any failure the workflows it touched are
        evicted from memory (they may hold uncommitted steps); a unique-key clash
        means another command won a race for the same instance: 409, not 500."""
        touched: set[int] = set()
        try:
            with self.db.transaction() as session:
                session.info["csi_touched"] = touched
                yield session
        except IntegrityError as exc:
            self._evict(touched)
            raise Conflict("the instance changed at the same time; reload and try again") from exc
        except BaseException:
            self._evict(touched)
            raise

    def _evict(self, instance_ids: set[int]) -> None:
        for instance_id in instance_ids:
            self.cache.evict(instance_id)

    def _run_engine(
        self, workflow: BpmnWorkflow, context: CommandContext, step: Callable[[], Any]
    ) -> None:
        try:
            step()
            workflow.do_engine_steps()
        except DomainError:
            raise
        except SpiffWorkflowException as exc:
            if context.failure is not None:
                raise ServiceFailed(
                    f"service failed: {context.failure}", {"error": repr(context.failure)}
                ) from context.failure
            original = exc.__cause__ or getattr(exc, "exception", None)
            if isinstance(original, DomainError):
                raise original from exc
            raise ServiceFailed(f"the process could not continue: {exc}") from exc

    def users_for_options(self, session: Session) -> Callable[[str | None], list[tuple[str, str]]]:
        users = session.scalars(
            select(User).where(User.active.is_(True)).order_by(User.username)
        ).all()

        def pick(role: str | None) -> list[tuple[str, str]]:
            return [
                (u.username, f"{u.display_name} ({u.username})" if u.display_name else u.username)
                for u in users
                if role is None or u.has_role(role)
            ]

        return pick

    def _history_source(self, session: Session) -> forms.HistorySource:
        def latest(code: str) -> float | None:
            return session.scalar(
                select(MetricValue.value)
                .where(MetricValue.code == code)
                .order_by(MetricValue.recorded_at.desc(), MetricValue.id.desc())
                .limit(1)
            )

        return forms.HistorySource(latest)

    # ---- projections ---------------------------------------------------------------------

    def _assignee(self, task: Task) -> str | None:
        expression = _properties(task).get("assignee")
        if not expression:
            return None
        try:
            value = expressions.evaluate(expression, task.data)
        except Exception:
            return None
        return str(value) if isinstance(value, str | int) else None

    def _form_inputs(self, bpmn_id: str, task: Task) -> dict[str, Any]:
        try:
            names = forms.inputs_of(forms.load_form(bpmn_id, self.forms_dir))
        except NotFound:
            return {}
        return history.plain({k: v for k, v in task.data.items() if k in names})

    def _label(self, task: Task, assignee: str | None) -> str:
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

    def _sync_projections(
        self, session: Session, instance: Instance, workflow: BpmnWorkflow, now: datetime
    ) -> list[str]:
        ready = {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
        open_rows = {
            row.id: row
            for row in session.scalars(
                select(HumanTask).where(
                    HumanTask.instance_id == instance.id, HumanTask.status == "open"
                )
            )
        }
        for task_id, row in open_rows.items():
            if task_id not in ready:
                row.status = "cancelled"
                row.completed_at = now
        for task_id, task in ready.items():
            if task_id in open_rows:
                continue
            assignee = self._assignee(task)
            due = _duration(_properties(task).get("due_in"))
            bpmn_id = _element(task) or task.task_spec.name
            session.add(
                HumanTask(
                    id=task_id,
                    instance_id=instance.id,
                    process_id=task.workflow.spec.name,
                    bpmn_id=bpmn_id,
                    name=task.task_spec.bpmn_name or task.task_spec.name,
                    lane=task.task_spec.lane,
                    role=role_for_lane(task.task_spec.lane),
                    assignee=assignee,
                    label=self._label(task, assignee),
                    status="open",
                    created_at=now,
                    due_at=now + due if due else None,
                    data=self._form_inputs(bpmn_id, task),
                )
            )

        done: list[str] = []
        active: list[str] = []
        next_timer: datetime | None = None
        latest: Task | None = None
        for task in workflow.get_tasks(skip_subprocesses=True):
            element = _element(task)
            if element is None:
                continue
            if task.state == TaskState.COMPLETED:
                if element not in done:
                    done.append(element)
                if _multi_instance_of(task) is None and (
                    latest is None or task.last_state_change > latest.last_state_change
                ):
                    latest = task
            elif task.state in (TaskState.READY, TaskState.STARTED, TaskState.WAITING):
                if element not in active:
                    active.append(element)
                event = getattr(task.task_spec, "event_definition", None)
                value = task.internal_data.get("event_value")
                if isinstance(event, TimerEventDefinition) and isinstance(value, str):
                    due_at = TimerEventDefinition.get_datetime(value)
                    next_timer = due_at if next_timer is None else min(next_timer, due_at)
        instance.completed_elements = done
        instance.active_elements = active
        instance.next_timer_at = next_timer
        instance.updated_at = now
        # The data of the newest finished element, not workflow.data: SpiffWorkflow's end
        # join merges every finished branch into the latter, per-person entries included.
        instance.data = history.plain(dict(latest.data) if latest is not None else {})
        if workflow.completed:
            instance.status = "completed"
            instance.completed_at = now
        return list(ready)

    def _save(self, session: Session, instance: Instance, workflow: BpmnWorkflow) -> None:
        state = session.get(WorkflowState, instance.id)
        text = self.serializer.dumps(workflow)
        if state is None:
            session.add(WorkflowState(instance_id=instance.id, seq=instance.last_seq, state=text))
        else:
            state.seq = instance.last_seq
            state.state = text
            state.saved_at = utcnow()

    def _after_engine(
        self,
        session: Session,
        instance: Instance,
        workflow: BpmnWorkflow,
        context: CommandContext,
        log_: history.EventLog,
        actor: Actor,
    ) -> CommandResult:
        now = utcnow()
        for task, call in context.calls:
            log_.append(
                "service_completed",
                actor.username,
                {"operation": call.operation, "result": call.result},
                task_id=str(task.id),
                bpmn_id=_element(task),
            )
            for reading in call.extra.get("metric_values", []):
                session.add(
                    MetricValue(
                        code=reading["code"],
                        value=reading["value"],
                        period=str(reading.get("period") or ""),
                        instance_id=instance.id,
                        recorded_by=reading.get("recorded_by"),
                        recorded_at=now,
                    )
                )
        open_tasks = self._sync_projections(session, instance, workflow, now)
        started: int | None = None
        if instance.status == "completed":
            log_.append("instance_completed", actor.username, {"data_keys": sorted(instance.data)})
        record = records.for_instance(session, instance.id)
        if record is not None:
            records.sync(record, instance)
        self._save(session, instance, workflow)
        if instance.status == "completed" and instance.data.get("next_cycle"):
            started = self._start_next_cycle(session, instance, record, actor)
        return CommandResult(
            instance.id,
            instance.status,
            [e.seq for e in log_.appended],
            open_tasks,
            started,
        )

    # ---- commands ------------------------------------------------------------------------

    def start_instance(
        self,
        actor: Actor,
        process_id: str = records.IMPROVEMENT_PROCESS,
        data: Mapping[str, Any] | None = None,
    ) -> CommandResult:
        self._require_writer(actor)
        with self._command() as session:
            return self._start(session, actor, process_id, dict(data or {}))

    def _start(
        self,
        session: Session,
        actor: Actor,
        process_id: str,
        data: dict[str, Any],
        parent_id: int | None = None,
    ) -> CommandResult:
        if not isinstance(data, dict):
            raise ValidationFailed("initial data must be an object", {"data": ["not an object"]})
        try:
            json.dumps(data)
        except (TypeError, ValueError) as exc:
            raise ValidationFailed("initial data must be JSON", {"data": [str(exc)]}) from exc
        if any(not isinstance(k, str) or k.startswith("_") for k in data):
            raise ValidationFailed("variable names may not start with '_'", {"data": ["bad name"]})
        definition = specs.latest(session, process_id)
        if process_id != records.IMPROVEMENT_PROCESS and definition.process_id in {
            "change_management"
        }:
            raise ValidationFailed(
                "change management runs as part of an improvement", {"process": ["not startable"]}
            )
        called = specs.pin_called(session, definition)
        parsed = specs.spec_for_instance(session, definition.id, called)
        instance = Instance(
            process_id=process_id,
            definition_id=definition.id,
            called_definitions=called,
            status="running",
            last_seq=0,
            data={},
            started_by=actor.username,
            started_at=utcnow(),
            parent_instance_id=parent_id,
        )
        session.add(instance)
        session.flush()
        record = None
        if process_id == records.IMPROVEMENT_PROCESS:
            record = records.create(session, instance, actor.username)
        context = CommandContext(session, instance)
        workflow = BpmnWorkflow(
            parsed.spec, parsed.subprocess_specs, script_engine=SafeScriptEngine(context)
        )
        start = workflow.get_next_task(state=TaskState.READY)
        if start is not None:
            start.data.update(copy.deepcopy(data))
        log_ = history.EventLog(session, instance)
        log_.append(
            "instance_started",
            actor.username,
            {
                "process_id": process_id,
                "definition": {
                    "id": definition.id,
                    "version": definition.version,
                    "hash": definition.content_hash,
                },
                "called": called,
                "data": data,
                "record_number": record.number if record else None,
            },
        )
        self._run_engine(workflow, context, lambda: None)
        result = self._after_engine(session, instance, workflow, context, log_, actor)
        session.flush()
        self._remember_after_commit(session, instance.id, instance.last_seq, workflow)
        return result

    def _remember_after_commit(
        self, session: Session, instance_id: int, seq: int, workflow: BpmnWorkflow
    ) -> None:
        workflow.script_engine = SafeScriptEngine(None)
        cache = self.cache

        from sqlalchemy import event as sa_event

        @sa_event.listens_for(session, "after_commit", once=True)
        def _remember(_session: Session) -> None:
            cache.put(instance_id, seq, workflow)

    def _start_next_cycle(
        self, session: Session, instance: Instance, record: Any, actor: Actor
    ) -> int:
        data = instance.data
        gaps = {g.get("metric"): g for g in data.get("gaps") or []}
        carried_targets = [
            {
                "code": t.get("code"),
                "baseline": (gaps.get(t.get("code")) or {}).get("current", t.get("baseline")),
                "target": t.get("target"),
            }
            for t in data.get("targets") or []
        ]
        seed = {
            "source": "periodic_review",
            "reference": record.number if record is not None else f"#{instance.id}",
            "description": data.get("carried_over") or data.get("summary") or "",
            "process_owners": data.get("process_owners") or [],
            "metrics": data.get("metrics") or [],
            "targets": carried_targets,
            "previous_instance": instance.id,
        }
        result = self._start(session, actor, instance.process_id, seed, parent_id=instance.id)
        return result.instance_id

    def _require_writer(self, actor: Actor) -> None:
        if actor.read_only or not actor.roles and actor is not SYSTEM:
            raise Forbidden("this account may read but not change anything")

    def _task_row(self, session: Session, task_id: str) -> HumanTask:
        try:
            UUID(task_id)
        except (ValueError, TypeError) as exc:
            raise NotFound(f"no task {task_id}") from exc
        row = session.get(HumanTask, task_id)
        if row is None:
            raise NotFound(f"no task {task_id}")
        return row

    def may_work_on(self, row: HumanTask, actor: Actor) -> bool:
        if row.role is None or row.role not in actor.roles:
            return False
        return row.assignee is None or row.assignee == actor.username

    def _check_actor(self, row: HumanTask, actor: Actor) -> None:
        self._require_writer(actor)
        if row.role is None or row.role not in actor.roles:
            raise Forbidden(f"task {row.bpmn_id} needs the role {row.role}")
        if row.assignee is not None and row.assignee != actor.username:
            raise Forbidden(f"task {row.bpmn_id} is assigned to {row.assignee}")

    def claim_task(self, task_id: str, actor: Actor) -> CommandResult:
        return self._set_claim(task_id, actor, claim=True)

    def unclaim_task(self, task_id: str, actor: Actor) -> CommandResult:
        return self._set_claim(task_id, actor, claim=False)

    def _set_claim(self, task_id: str, actor: Actor, *, claim: bool) -> CommandResult:
        with self._command() as session:
            row = self._task_row(session, task_id)
            instance = self._lock_instance(session, row.instance_id)
            session.refresh(row)
            if row.status != "open":
                raise Conflict(f"task {row.bpmn_id} is {row.status}")
            self._check_actor(row, actor)
            if row.claimed_by not in (None, actor.username):
                raise Conflict(f"task {row.bpmn_id} is claimed by {row.claimed_by}")
            log_ = history.EventLog(session, instance)
            if claim and row.claimed_by is None:
                row.claimed_by = actor.username
                log_.append("task_claimed", actor.username, {}, task_id=row.id, bpmn_id=row.bpmn_id)
            elif not claim and row.claimed_by == actor.username:
                row.claimed_by = None
                log_.append(
                    "task_unclaimed", actor.username, {}, task_id=row.id, bpmn_id=row.bpmn_id
                )
            # Claims change no workflow state: the cached workflow stays valid for the new seq.
            cached = self.cache.get(instance.id, instance.last_seq - len(log_.appended))
            if cached is not None and log_.appended:
                self._remember_after_commit(session, instance.id, instance.last_seq, cached)
            state = session.get(WorkflowState, instance.id)
            if state is not None:
                state.seq = instance.last_seq
            return CommandResult(instance.id, instance.status, [e.seq for e in log_.appended])

    def complete_task(self, task_id: str, actor: Actor, data: Mapping[str, Any]) -> CommandResult:
        with self._command() as session:
            row = self._task_row(session, task_id)
            instance = self._lock_instance(session, row.instance_id)
            session.refresh(row)
            if row.status != "open":
                raise Conflict(f"task {row.bpmn_id} is already {row.status}")
            self._check_actor(row, actor)
            if row.claimed_by not in (None, actor.username):
                raise Conflict(f"task {row.bpmn_id} is claimed by {row.claimed_by}")

            context = CommandContext(session, instance)
            workflow = self._load(session, instance, context)
            task = workflow.get_task_from_id(UUID(task_id))
            if task is None or task.state != TaskState.READY:
                raise Conflict(f"task {row.bpmn_id} is not ready")
            form = forms.load_form(row.bpmn_id, self.forms_dir)
            schema = forms.resolve_schema(
                form.schema,
                forms.OptionSource(self.users_for_options(session), task.data),
            )
            clean = forms.validate(schema, copy.deepcopy(dict(data)))

            log_ = history.EventLog(session, instance)
            now = utcnow()
            if row.claimed_by is None:
                row.claimed_by = actor.username
                log_.append("task_claimed", actor.username, {}, task_id=row.id, bpmn_id=row.bpmn_id)
            log_.append(
                "task_completed",
                actor.username,
                {"data": clean, "name": row.name},
                task_id=row.id,
                bpmn_id=row.bpmn_id,
            )
            row.status = "completed"
            row.completed_at = now
            row.completed_by = actor.username
            record = records.for_instance(session, instance.id)
            if record is not None:
                records.note_task(record, row.bpmn_id, clean, actor.username, now)

            def step() -> None:
                self._apply_data(task, clean, actor)
                task.run()

            self._run_engine(workflow, context, step)
            result = self._after_engine(session, instance, workflow, context, log_, actor)
            self._remember_after_commit(session, instance.id, instance.last_seq, workflow)
            return result

    @staticmethod
    def _apply_data(task: Task, clean: dict[str, Any], actor: Actor) -> None:
        task.data.update(copy.deepcopy(clean))
        spec = _multi_instance_of(task)
        if spec is not None and spec.output_item is not None:
            # One entry per participant in the output collection, tagged with who it is.
            item_name = spec.input_item.bpmn_id if spec.input_item is not None else None
            entry = copy.deepcopy(clean)
            if item_name and item_name in task.data:
                entry[item_name] = task.data[item_name]
            entry["submitted_by"] = actor.username
            task.data[spec.output_item.bpmn_id] = entry

    def fire_due_timers(self, now: datetime | None = None, limit: int = 100) -> list[int]:
        """Fire timers that are due; returns the instances that moved. Several workers may
        run this at once: on PostgreSQL each skips rows another worker holds."""
        now = now or utcnow()
        with self.db.sessions() as session:
            due_ids = session.scalars(
                select(Instance.id)
                .where(Instance.status == "running", Instance.next_timer_at <= now)
                .order_by(Instance.next_timer_at)
                .limit(limit)
            ).all()
        moved: list[int] = []
        for instance_id in due_ids:
            try:
                if self._fire_timer(instance_id, now):
                    moved.append(instance_id)
            except DomainError:
                log.exception("timer of instance %s failed", instance_id)
        return moved

    def _fire_timer(self, instance_id: int, now: datetime) -> bool:
        with self._command() as session:
            query = select(Instance).where(Instance.id == instance_id)
            if is_postgres(session):
                query = query.with_for_update(of=Instance, skip_locked=True)
            instance = session.scalars(query).unique().one_or_none()
            if instance is None:
                return False
            session.refresh(instance)
            if (
                instance.status != "running"
                or not instance.next_timer_at
                or instance.next_timer_at > now
            ):
                return False
            context = CommandContext(session, instance)
            workflow = self._load(session, instance, context)
            waiting = [
                t
                for t in workflow.get_tasks(state=TaskState.WAITING)
                if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)
            ]
            log_ = history.EventLog(session, instance)

            def step() -> None:
                workflow.refresh_timers()
                workflow.do_engine_steps()

            self._run_engine(workflow, context, step)
            fired = [t for t in waiting if t.state != TaskState.WAITING]
            if not fired:
                self.cache.evict(instance_id)
                return False
            for task in fired:
                log_.append(
                    "timer_fired",
                    SYSTEM_ACTOR,
                    {"due": task.internal_data.get("event_value")},
                    task_id=str(task.id),
                    bpmn_id=_element(task),
                )
            self._after_engine(session, instance, workflow, context, log_, SYSTEM)
            self._remember_after_commit(session, instance.id, instance.last_seq, workflow)
            return True

    def deploy(self, actor: Actor, xml: bytes, filename: str) -> specs.Deployed:
        """Validate and store a diagram as a new version (modelers and admins only)."""
        if not (MODELER in actor.roles or ADMIN in actor.roles):
            raise Forbidden("deploying diagrams needs the modeler role")
        with self.db.transaction() as session:
            deployed = specs.deploy(session, xml, filename=filename, deployed_by=actor.username)
            session.expunge_all()
            return deployed

    # ---- reads used by forms ---------------------------------------------------------------

    def task_view(self, task_id: str) -> TaskView:
        """The task, its concrete schema and prefilled data, from the projection."""
        with self.db.sessions() as session:
            row = self._task_row(session, task_id)
            form = forms.load_form(row.bpmn_id, self.forms_dir)
            task_data = dict(row.data or {})
            schema = forms.resolve_schema(
                form.schema, forms.OptionSource(self.users_for_options(session), task_data)
            )
            data = forms.prefill(form, task_data, self._history_source(session))
            context = {name: task_data[name] for name in form.context if name in task_data}
            record = records.for_instance(session, row.instance_id)
            session.expunge_all()
            return TaskView(row, form, schema, data, context, record.number if record else None)


def seed_definitions(
    session: Session, files: Sequence[Any] | None = None, deployed_by: str = SYSTEM_ACTOR
) -> list[Any]:
    """Deploy the bundled diagrams (idempotent: same content, same version)."""
    deployed = []
    for path in files or specs.bundled_files():
        deployed += specs.deploy(
            session, path.read_bytes(), filename=path.name, deployed_by=deployed_by
        ).definitions
    return deployed
