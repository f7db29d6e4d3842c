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

import copy
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
from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from engine import forms, history, records, replay, services, specs, stepping
from engine.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from engine.roles import ADMIN, AUDITOR, MODELER, role_for_lane
from engine.serializer import StateSerializer
from engine.store import (
    Database,
    HumanTask,
    ImprovementRecord,
    Instance,
    MetricValue,
    User,
    WorkflowState,
    is_postgres,
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
        self.calls: list[tuple[Task, services.ServiceCall]] = []

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

    def record(self, task: Task, call: services.ServiceCall) -> None:
        self.calls.append((task, call))


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
    """The service layer: use-case functions that own their transaction."""

    def __init__(
        self,
        db: Database,
        *,
        cache: WorkflowCache | None = None,
        forms_dir: Path = forms.FORMS_DIR,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
    ) -> None:
        self.db = db
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

    def _lock_instance(
        self, session: Session, instance_id: int, *, skip_locked: bool = False
    ) -> Instance | None:
        query = select(Instance).where(Instance.id == instance_id)
        if is_postgres(session):
            query = query.with_for_update(of=Instance, skip_locked=skip_locked)
        instance = session.scalars(query).unique().one_or_none()
        if instance is None:
            return None
        # The row may have changed between an earlier read and the lock.
        session.refresh(instance)
        session.info.setdefault("csi_touched", set()).add(instance.id)
        return instance

    def _load(self, session: Session, instance: Instance, host: DatabaseServices) -> BpmnWorkflow:
        """The cached workflow when it is current, else the snapshot plus the events since."""
        workflow = self.cache.get(instance.id, instance.last_seq)
        if workflow is None:
            state = session.get(WorkflowState, instance.id)
            if state is None:
                raise NotFound(f"instance {instance.id} has no state")
            parsed = specs.spec_for_instance(
                session, instance.definition_id, instance.called_definitions or {}
            )
            workflow = self.serializer.loads(state.state, parsed)
            if state.seq < instance.last_seq:
                replay.catch_up(session, instance, workflow, state.seq)
        workflow.script_engine = stepping.SafeScriptEngine(host)
        return workflow

    def _remember_after_commit(
        self, session: Session, instance: Instance, workflow: BpmnWorkflow
    ) -> None:
        workflow.script_engine = stepping.SafeScriptEngine(None)
        cache, instance_id, seq = self.cache, instance.id, instance.last_seq

        @sa_event.listens_for(session, "after_commit", once=True)
        def _remember(_session: Session) -> None:
            cache.put(instance_id, seq, workflow)

    # ---- who may do what -------------------------------------------------------------------

    def _require_writer(self, actor: Actor) -> None:
        if actor.read_only:
            raise Forbidden("this account may read but not change anything")

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

    def _task_row(self, session: Session, task_id: str) -> HumanTask:
        try:
            UUID(task_id)
        except (ValueError, TypeError) as exc:
            raise NotFound(f"no task {task_id}") from exc
        row = session.get(HumanTask, task_id)
        if row is None:
            raise NotFound(f"no task {task_id}")
        return row

    def _locked_open_task(
        self, session: Session, task_id: str, actor: Actor
    ) -> tuple[HumanTask, Instance]:
        """The task and its instance in one statement, both rows locked on PostgreSQL
        (and read afresh: another command may have just committed them)."""
        try:
            UUID(task_id)
        except (ValueError, TypeError) as exc:
            raise NotFound(f"no task {task_id}") from exc
        query = (
            select(HumanTask, Instance)
            .join(Instance, HumanTask.instance_id == Instance.id)
            .where(HumanTask.id == task_id)
            .options(lazyload("*"))
            .execution_options(populate_existing=True)
        )
        if is_postgres(session):
            query = query.with_for_update()
        found = session.execute(query).one_or_none()
        if found is None:
            raise NotFound(f"no task {task_id}")
        row, instance = found
        session.info.setdefault("csi_touched", set()).add(instance.id)
        if row.status != "open":
            raise Conflict(f"task {row.bpmn_id} is already {row.status}")
        self._check_actor(row, actor)
        if row.claimed_by not in (None, actor.username):
            raise Conflict(f"task {row.bpmn_id} is claimed by {row.claimed_by}")
        return row, instance

    # ---- after the engine moved -------------------------------------------------------------

    def _finish(
        self,
        session: Session,
        instance: Instance,
        workflow: BpmnWorkflow,
        host: DatabaseServices,
        events: history.EventLog,
        main_event: tuple[str, str | None, str | None, dict[str, Any]],
        actor: Actor,
        id_base: int,
        record: ImprovementRecord | None,
    ) -> CommandResult:
        """Record what the command did (its main event with a checkpoint, then each
        service result), update the projections and the state, and remember the workflow
        for the next command once the transaction commits."""
        now = utcnow()
        seen = stepping.observe(workflow)
        type_, task_id, bpmn_id, payload = main_event
        main = events.append(
            type_,
            actor.username,
            {**payload, "id_base": id_base, "after": seen.checkpoint()},
            task_id=task_id,
            bpmn_id=bpmn_id,
        )
        for task, call in host.calls:
            events.append(
                "service_completed",
                actor.username,
                {"operation": call.operation, "result": call.result},
                task_id=str(task.id),
                bpmn_id=stepping.element(task),
            )
            for reading in call.extra.get("metric_values", []):
                session.add(
                    MetricValue(
                        code=reading["code"],
                        value=reading["value"],
                        period=str(reading.get("period") or ""),
                        instance_id=instance.id,
                        recorded_by=reading.get("recorded_by"),
                        # replay reads the history as it stood before this event
                        recorded_at=main.at,
                    )
                )
        self._sync_tasks(session, instance, seen.ready, now)
        instance.completed_elements = seen.completed_elements
        instance.active_elements = seen.active_elements
        instance.next_timer_at = seen.next_timer_at
        instance.data = seen.data
        instance.updated_at = now
        if seen.completed:
            instance.status = "completed"
            instance.completed_at = now
            events.append(
                "instance_completed",
                actor.username,
                {"data_sha256": stepping.data_digest(seen.data)},
            )
        if record is not None:
            records.sync(record, instance)
        self._save_state(session, instance, workflow, first=type_ == "instance_started")
        self._remember_after_commit(session, instance, workflow)
        started = None
        if seen.completed and seen.data.get("next_cycle"):
            started = self._start_next_cycle(session, instance, record, actor)
        return CommandResult(
            instance.id, instance.status, [e.seq for e in events.appended], seen.open_tasks, started
        )

    def _sync_tasks(
        self, session: Session, instance: Instance, ready_tasks: list[Task], now: datetime
    ) -> None:
        ready = {str(t.id): t for t in ready_tasks}
        open_rows = {
            row.id: row
            for row in session.scalars(
                select(HumanTask).where(
                    HumanTask.instance_id == instance.id, HumanTask.status == "open"
                )
            )
        }
        for task_id, row in open_rows.items():
            # Rows this command already closed are still 'open' in the database: the
            # session does not flush before it queries.
            if task_id not in ready and row.status == "open":
                row.status = "cancelled"
                row.completed_at = now
        for task_id, task in ready.items():
            if task_id in open_rows:
                continue
            bpmn_id = stepping.element(task) or task.task_spec.name
            assignee = stepping.assignee_of(task)
            due = _duration(stepping.properties(task).get("due_in"))
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

    def _form_inputs(self, bpmn_id: str, task: Task) -> dict[str, Any]:
        try:
            names = forms.inputs_of(forms.load_form(bpmn_id, self.forms_dir))
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

    def _save_state(
        self, session: Session, instance: Instance, workflow: BpmnWorkflow, first: bool
    ) -> None:
        due = (
            first
            or instance.status != "running"
            or instance.last_seq - instance.snapshot_seq >= self.snapshot_every
        )
        if not due:
            return
        text = self.serializer.dumps(workflow)
        values = {"seq": instance.last_seq, "state": text, "saved_at": utcnow()}
        if first:
            session.add(WorkflowState(instance_id=instance.id, **values))
        else:
            session.execute(
                update(WorkflowState)
                .where(WorkflowState.instance_id == instance.id)
                .values(**values)
            )
        instance.snapshot_seq = instance.last_seq

    # ---- commands --------------------------------------------------------------------------

    def start_instance(
        self,
        actor: Actor,
        process_id: str = records.IMPROVEMENT_PROCESS,
        data: Mapping[str, Any] | None = None,
    ) -> CommandResult:
        self._require_writer(actor)
        with self._command() as session:
            return self._start(session, actor, process_id, data if data is not None else {})

    def _start(
        self,
        session: Session,
        actor: Actor,
        process_id: str,
        data: Any,
        parent_id: int | None = None,
    ) -> CommandResult:
        if not isinstance(data, dict):
            raise ValidationFailed("initial data must be an object", {"data": ["not an object"]})
        try:
            data = json.loads(json.dumps(data))
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
        instance = Instance(
            process_id=process_id,
            definition_id=definition.id,
            called_definitions=called,
            status="running",
            last_seq=0,
            last_hash=history.GENESIS_HASH,
            snapshot_seq=0,
            data={},
            started_by=actor.username,
            started_at=utcnow(),
            parent_instance_id=parent_id,
        )
        session.add(instance)
        session.flush()
        session.info["csi_touched"].add(instance.id)
        record = (
            records.create(session, instance, actor.username)
            if process_id == records.IMPROVEMENT_PROCESS
            else None
        )
        host = DatabaseServices(session)
        workflow = stepping.start(parsed, instance.id, data, host)
        events = history.EventLog(session, instance)
        payload = {
            "process_id": process_id,
            "definition": {
                "id": definition.id,
                "version": definition.version,
                "hash": definition.content_hash,
            },
            "called": called,
            "data": data,
            "record_number": record.number if record else None,
        }
        return self._finish(
            session,
            instance,
            workflow,
            host,
            events,
            ("instance_started", None, None, payload),
            actor,
            0,
            record,
        )

    def _start_next_cycle(
        self, session: Session, instance: Instance, record: Any, actor: Actor
    ) -> int:
        """4.8: the next cycle starts from this one's metrics, with the measured values as
        the new baselines."""
        data = instance.data
        current = {g.get("metric"): g.get("current") for g in data.get("gaps") or []}
        targets = [
            {
                "code": t.get("code"),
                "baseline": current.get(t.get("code"), t.get("baseline")),
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
            events = history.EventLog(session, instance)
            if claim and row.claimed_by is None:
                row.claimed_by = actor.username
                events.append(
                    "task_claimed", actor.username, {}, task_id=row.id, bpmn_id=row.bpmn_id
                )
            elif not claim and row.claimed_by == actor.username:
                row.claimed_by = None
                events.append(
                    "task_unclaimed", actor.username, {}, task_id=row.id, bpmn_id=row.bpmn_id
                )
            if events.appended and cached is not None:
                # A claim moves no workflow: the cached copy stays valid for the new seq.
                self._remember_after_commit(session, instance, cached)
            return CommandResult(instance.id, instance.status, [e.seq for e in events.appended])

    def complete_task(self, task_id: str, actor: Actor, data: Mapping[str, Any]) -> CommandResult:
        with self._command() as session:
            row, instance = self._locked_open_task(session, task_id, actor)
            id_base = instance.last_seq
            host = DatabaseServices(session)
            workflow = self._load(session, instance, host)
            task = stepping.ready_task(workflow, task_id)
            form = forms.load_form(row.bpmn_id, self.forms_dir)
            schema = forms.resolve_schema(
                form.schema, forms.OptionSource(self.users_for_options(session), task.data)
            )
            clean = forms.validate(schema, copy.deepcopy(dict(data)))
            # A field left out clears what an earlier pass stored under that name (a
            # second review without a comment must not keep the first one's).
            clean = {name: clean.get(name) for name in form.schema.get("properties", {})}

            events = history.EventLog(session, instance)
            now = utcnow()
            if row.claimed_by is None:
                row.claimed_by = actor.username
                events.append(
                    "task_claimed", actor.username, {}, task_id=row.id, bpmn_id=row.bpmn_id
                )
            row.status = "completed"
            row.completed_at = now
            row.completed_by = actor.username
            record = records.for_instance(session, instance.id)
            if record is not None:
                records.note_task(record, row.bpmn_id, clean, actor.username, now)

            stepping.complete(workflow, instance.id, id_base, task, clean, actor.username)
            payload = {"data": clean, "name": row.name}
            return self._finish(
                session,
                instance,
                workflow,
                host,
                events,
                ("task_completed", row.id, row.bpmn_id, payload),
                actor,
                id_base,
                record,
            )

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
            if not instance.next_timer_at or instance.next_timer_at > now:
                return False
            id_base = instance.last_seq
            host = DatabaseServices(session)
            workflow = self._load(session, instance, host)
            fired = stepping.fire_timers(workflow, instance.id, id_base)
            if not fired:
                self.cache.evict(instance.id)
                return False
            events = history.EventLog(session, instance)
            payload = {
                "fired": [str(t.id) for t in fired],
                "due": [t.internal_data.get("event_value") for t in fired],
            }
            main = ("timer_fired", str(fired[0].id), stepping.element(fired[0]), payload)
            record = records.for_instance(session, instance.id)
            self._finish(session, instance, workflow, host, events, main, SYSTEM, id_base, record)
            return True

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

        return forms.HistorySource(latest)

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
