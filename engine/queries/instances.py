"""Instances as pages and the API show them: the inbox, one instance with its tasks,
records and history, lists. Read from projection tables only, never from workflow
state; each function takes an open reader session."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from engine.access import Actor, Participation
from engine.audit.chain import describe as describe_event
from engine.errors import NotFound
from engine.persistence.models import Event, HumanTask, Instance, ProcessDefinition, Record
from engine.queries.views import DefinitionRow, InstanceRow, RecordSummary, TaskRow, view_of

INBOX_PAGE = 50


def task_row(task: HumanTask) -> TaskRow:
    return view_of(TaskRow, task)


def _inbox_order(task: TaskRow) -> tuple[bool, Any, Any]:
    return (task.due_at is None, task.due_at or task.created_at, task.created_at)


_TASK_ROW_COLUMNS = [getattr(HumanTask, f.name) for f in fields(TaskRow)]
# Built once: building the statement costs more than running it (the inbox is the page
# everyone opens first). One indexed query per role: ix_human_task_inbox serves role +
# due order directly; an IN over several roles would sort every open task of them all.
_INBOX = (
    select(*_TASK_ROW_COLUMNS)
    # Only tasks of an instance that is there: a task row left behind by a deleted
    # instance (a damaged database) leads nowhere.
    .join(Instance, Instance.id == HumanTask.instance_id)
    .where(
        HumanTask.status == "open",
        HumanTask.role == bindparam("role"),
        or_(HumanTask.assignee.is_(None), HumanTask.assignee == bindparam("username")),
    )
    .order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.created_at)
    .limit(bindparam("limit"))
)
_INBOX_OF_INSTANCE = _INBOX.where(HumanTask.instance_id == bindparam("instance_id"))


def inbox(
    session: Session, actor: Actor, instance_id: int | None = None, limit: int = INBOX_PAGE
) -> list[TaskRow]:
    """Open tasks of my roles that are unassigned or assigned to me, soonest due first."""
    statement = _INBOX if instance_id is None else _INBOX_OF_INSTANCE
    found: dict[str, TaskRow] = {}
    connection = session.connection()
    for role in sorted(actor.roles):
        params = {"role": role, "username": actor.username, "limit": limit}
        if instance_id is not None:
            params["instance_id"] = instance_id
        for row in connection.execute(statement, params).mappings():
            found[row["id"]] = TaskRow(**row)
    return sorted(found.values(), key=_inbox_order)[:limit]


def instance_exists(session: Session, instance_id: int) -> bool:
    return session.scalar(select(Instance.id).where(Instance.id == instance_id)) is not None


def record_numbers(session: Session, instance_ids: set[int]) -> dict[int, str]:
    if not instance_ids:
        return {}
    rows = session.execute(
        select(Record.instance_id, Record.number).where(
            Record.instance_id.in_(sorted(instance_ids))
        )
    )
    return {instance_id: number for instance_id, number in rows}


def record_of(session: Session, instance_id: int) -> RecordSummary | None:
    record = session.scalar(select(Record).where(Record.instance_id == instance_id))
    return view_of(RecordSummary, record, fields=dict(record.fields or {})) if record else None


def instance_row(session: Session, instance_id: int) -> InstanceRow:
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"no instance {instance_id}")
    return view_of(InstanceRow, instance)


def definition_row(session: Session, definition_id: int) -> DefinitionRow | None:
    definition = session.get(ProcessDefinition, definition_id)
    return view_of(DefinitionRow, definition) if definition is not None else None


def definitions_of(session: Session, instance: InstanceRow) -> list[DefinitionRow]:
    """The definition an instance is pinned to, then those of the processes it calls."""
    found = []
    for definition_id in [instance.definition_id, *(instance.called_definitions or {}).values()]:
        definition = definition_row(session, definition_id)
        if definition is not None:
            found.append(definition)
    return found


def participation(session: Session, instance_id: int) -> Participation:
    """Who took part in an instance, and who may work on its open tasks."""
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"no instance {instance_id}")
    people: set[str] = {instance.started_by} if instance.started_by else set()
    people |= {
        a
        for (a,) in session.execute(
            select(Event.actor).where(Event.instance_id == instance_id).distinct()
        )
        if a
    }
    open_tasks: list[tuple[str | None, str | None]] = []
    for role, assignee, claimed_by, completed_by, status in session.execute(
        select(
            HumanTask.role,
            HumanTask.assignee,
            HumanTask.claimed_by,
            HumanTask.completed_by,
            HumanTask.status,
        ).where(HumanTask.instance_id == instance_id)
    ):
        people |= {p for p in (assignee, claimed_by, completed_by) if p}
        if status == "open":
            open_tasks.append((role, assignee))
    return Participation(frozenset(people), tuple(open_tasks))


@dataclass(frozen=True)
class InstanceView:
    instance: InstanceRow
    definition: DefinitionRow
    record: RecordSummary | None
    open_tasks: list[TaskRow]
    done_tasks: list[TaskRow]
    events: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        instance = self.instance
        return {
            "id": instance.id,
            "process_id": instance.process_id,
            "definition": {
                "id": self.definition.id,
                "version": self.definition.version,
                "content_hash": self.definition.content_hash,
            },
            "status": instance.status,
            "record_number": self.record.number if self.record else None,
            "record_status": self.record.status if self.record else None,
            "started_by": instance.started_by,
            "started_at": instance.started_at.isoformat(),
            "completed_at": instance.completed_at.isoformat() if instance.completed_at else None,
            "next_timer_at": instance.next_timer_at.isoformat() if instance.next_timer_at else None,
            "data": instance.data,
            "completed_elements": instance.completed_elements,
            "active_elements": instance.active_elements,
            "open_tasks": [t.as_dict() for t in self.open_tasks],
            "last_seq": instance.last_seq,
            "incident": instance.incident,
        }


def instance_view(session: Session, instance_id: int, with_events: bool = True) -> InstanceView:
    instance = instance_row(session, instance_id)
    tasks = [
        task_row(t)
        for t in session.scalars(
            select(HumanTask)
            .where(HumanTask.instance_id == instance_id)
            .order_by(HumanTask.created_at, HumanTask.id)
        )
    ]
    definition = definition_row(session, instance.definition_id)
    if definition is None:  # definitions are never deleted: a damaged database
        raise NotFound(f"the definition of instance {instance_id} is missing")
    return InstanceView(
        instance,
        definition,
        record_of(session, instance_id),
        [t for t in tasks if t.status == "open"],
        [t for t in tasks if t.status == "completed"],
        event_dicts(session, instance_id) if with_events else [],
    )


@dataclass(frozen=True)
class InstanceListRow:
    instance: InstanceRow
    record: RecordSummary | None
    open_tasks: int


def instances(
    session: Session, status: str | None = None, limit: int = 200
) -> list[InstanceListRow]:
    open_counts = (
        select(func.count(HumanTask.id))
        .where(HumanTask.instance_id == Instance.id, HumanTask.status == "open")
        .scalar_subquery()
    )
    query = (
        select(Instance, Record, open_counts)
        .outerjoin(Record, Record.instance_id == Instance.id)
        .order_by(Instance.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(Instance.status == status)
    return [
        InstanceListRow(
            view_of(InstanceRow, i),
            view_of(RecordSummary, r, fields=dict(r.fields or {})) if r else None,
            int(n or 0),
        )
        for i, r, n in session.execute(query)
    ]


def event_dicts(session: Session, instance_id: int) -> list[dict[str, Any]]:
    if session.get(Instance, instance_id) is None:
        raise NotFound(f"no instance {instance_id}")
    rows = session.scalars(
        select(Event).where(Event.instance_id == instance_id).order_by(Event.seq)
    )
    return [describe_event(e) for e in rows]


def diagram_xml(session: Session, instance_id: int, definition_id: int | None) -> str:
    """The XML of the instance's definition, or of another version of its process."""
    instance = instance_row(session, instance_id)
    wanted = definition_id if definition_id is not None else instance.definition_id
    definition = session.get(ProcessDefinition, wanted)
    if definition is None or definition.process_id != instance.process_id:
        raise NotFound(f"no version {wanted} of {instance.process_id}")
    return definition.bpmn_xml


def latest_version(session: Session, process_id: str) -> int | None:
    return session.scalar(
        select(func.max(ProcessDefinition.version)).where(
            ProcessDefinition.process_id == process_id
        )
    )
