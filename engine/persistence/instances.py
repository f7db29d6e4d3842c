"""An instance as a command holds it: its row locked, its stored state, its chain's
end, and the workflows kept in memory between commands.

Statements are built once (building one per call costs more than SQLite takes to run
it) and rows are read by column name. Writes go through `Writes`, sent together at
the end of the command.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from engine.errors import Conflict, NotFound
from engine.persistence.database import Writes, is_postgres
from engine.persistence.models import HumanTask, Instance, WorkflowState, table
from engine.persistence.records import RECORD_TABLE, RecordRow, labelled_columns, row_from

INSTANCE = table(Instance)
HUMAN_TASK = table(HumanTask)
WORKFLOW_STATE = table(WorkflowState)


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
    record: RecordRow | None = None
    incident: dict[str, Any] | None = None


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


_INSTANCE_COLUMNS = [
    INSTANCE.c.id.label("instance_id"),
    INSTANCE.c.process_id.label("instance_process_id"),
    INSTANCE.c.definition_id,
    INSTANCE.c.called_definitions,
    INSTANCE.c.status.label("instance_status"),
    INSTANCE.c.last_seq,
    INSTANCE.c.last_hash,
    INSTANCE.c.snapshot_seq,
    INSTANCE.c.next_timer_at,
    INSTANCE.c.incident,
]
_TASK_COLUMNS = [
    HUMAN_TASK.c.id.label("task_id"),
    HUMAN_TASK.c.bpmn_id,
    HUMAN_TASK.c.name.label("task_name"),
    HUMAN_TASK.c.role,
    HUMAN_TASK.c.assignee,
    HUMAN_TASK.c.claimed_by,
    HUMAN_TASK.c.status.label("task_status"),
]
_TASK_AND_INSTANCE = (
    select(*_TASK_COLUMNS, *_INSTANCE_COLUMNS, *labelled_columns())
    .select_from(HUMAN_TASK)
    .join(INSTANCE, HUMAN_TASK.c.instance_id == INSTANCE.c.id)
    .outerjoin(RECORD_TABLE, RECORD_TABLE.c.instance_id == INSTANCE.c.id)
    .where(HUMAN_TASK.c.id == bindparam("task_id"))
)
_LOCK_TASK_AND_INSTANCE = _TASK_AND_INSTANCE.with_for_update(of=[HUMAN_TASK, INSTANCE])
_INSTANCE_AND_RECORD = (
    select(*_INSTANCE_COLUMNS, *labelled_columns())
    .select_from(INSTANCE)
    .outerjoin(RECORD_TABLE, RECORD_TABLE.c.instance_id == INSTANCE.c.id)
    .where(INSTANCE.c.id == bindparam("instance_id"))
)
_LOCK_INSTANCE = _INSTANCE_AND_RECORD.with_for_update(of=INSTANCE)
_LOCK_INSTANCE_SKIP_LOCKED = _INSTANCE_AND_RECORD.with_for_update(of=INSTANCE, skip_locked=True)
# SET columns come from the parameters given; the row is named by `row_id`.
UPDATE_INSTANCE = update(INSTANCE).where(INSTANCE.c.id == bindparam("row_id"))
UPDATE_TASK = update(HUMAN_TASK).where(HUMAN_TASK.c.id == bindparam("row_id"))
_INSERT_STATE = WORKFLOW_STATE.insert().inline()
_UPDATE_STATE = update(WORKFLOW_STATE).where(WORKFLOW_STATE.c.instance_id == bindparam("row_id"))
_STATE_OF = select(WORKFLOW_STATE.c.seq, WORKFLOW_STATE.c.state).where(
    WORKFLOW_STATE.c.instance_id == bindparam("instance_id")
)


def _locked(values: Any) -> LockedInstance:
    return LockedInstance(
        id=values["instance_id"],
        process_id=values["instance_process_id"],
        definition_id=values["definition_id"],
        called_definitions=dict(values["called_definitions"] or {}),
        status=values["instance_status"],
        last_seq=values["last_seq"],
        last_hash=values["last_hash"],
        snapshot_seq=values["snapshot_seq"],
        next_timer_at=values["next_timer_at"],
        record=row_from(values),
        incident=values["incident"],
    )


def lock_instance(
    session: Session, instance_id: int, *, skip_locked: bool = False
) -> LockedInstance | None:
    """The instance with its record, locked on PostgreSQL (SQLite's writer holds the
    whole database already); None when there is no such row or another holds it."""
    query = _INSTANCE_AND_RECORD
    if is_postgres(session):
        query = _LOCK_INSTANCE_SKIP_LOCKED if skip_locked else _LOCK_INSTANCE
    values = session.connection().execute(query, {"instance_id": instance_id}).mappings().first()
    return _locked(values) if values is not None else None


def check_task_id(task_id: str) -> None:
    try:
        UUID(task_id)
    except (ValueError, TypeError, AttributeError) as exc:
        raise NotFound(f"no task {task_id}", reason="no_task") from exc


def lock_open_task(session: Session, task_id: str) -> tuple[OpenTask, LockedInstance]:
    """The task, its instance and its record in one statement, the task and instance rows
    locked on PostgreSQL. A task that is no longer open is a conflict."""
    check_task_id(task_id)
    query = _LOCK_TASK_AND_INSTANCE if is_postgres(session) else _TASK_AND_INSTANCE
    values = session.connection().execute(query, {"task_id": task_id}).mappings().first()
    if values is None:
        raise NotFound(f"no task {task_id}", reason="no_task")
    row = OpenTask(
        id=values["task_id"],
        bpmn_id=values["bpmn_id"],
        name=values["task_name"],
        role=values["role"],
        assignee=values["assignee"],
        claimed_by=values["claimed_by"],
        status=values["task_status"],
    )
    if row.status != "open":
        raise Conflict(
            f"task {row.bpmn_id} is already {row.status}",
            reason="task_done",
            params={"status": row.status},
        )
    return row, _locked(values)


def stored_state(session: Session, instance_id: int) -> tuple[int, str] | None:
    """The latest snapshot of the instance's serialized state and the seq it reflects."""
    state = session.connection().execute(_STATE_OF, {"instance_id": instance_id}).first()
    return (state.seq, state.state) if state is not None else None


def save_state(
    session: Session, instance: LockedInstance, state: str, at: datetime, *, first: bool
) -> None:
    values = {"seq": instance.last_seq, "state": state, "saved_at": at}
    if first:
        Writes.of(session).add(_INSERT_STATE, {"instance_id": instance.id, **values})
    else:
        Writes.of(session).add(_UPDATE_STATE, {"row_id": instance.id, **values})
    instance.snapshot_seq = instance.last_seq


def update_instance(session: Session, instance_id: int, values: Mapping[str, Any]) -> None:
    Writes.of(session).add(UPDATE_INSTANCE, {"row_id": instance_id, **values})


def update_task(session: Session, task_id: str, values: Mapping[str, Any]) -> None:
    Writes.of(session).add(UPDATE_TASK, {"row_id": task_id, **values})


# -- workflows kept between commands ----------------------------------------------------------

Kept = TypeVar("Kept")


class WorkflowCache(Generic[Kept]):
    """Workflows kept in memory between commands, keyed by instance and valid for one seq:
    a command that finds the row at another seq (another worker moved it) loads anew."""

    def __init__(self, capacity: int = 512) -> None:
        self.capacity = capacity
        self._items: OrderedDict[int, tuple[int, Kept]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, instance_id: int, seq: int) -> Kept | None:
        with self._lock:
            hit = self._items.get(instance_id)
            if hit is None or hit[0] != seq:
                return None
            self._items.move_to_end(instance_id)
            return hit[1]

    def put(self, instance_id: int, seq: int, kept: Kept) -> None:
        if self.capacity <= 0:
            return
        with self._lock:
            self._items[instance_id] = (seq, kept)
            self._items.move_to_end(instance_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def evict(self, instance_id: int) -> None:
        with self._lock:
            self._items.pop(instance_id, None)
