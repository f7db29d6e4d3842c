"""Read side: what the inbox, instance pages and the API show, from projection tables only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine import history, records
from engine.errors import NotFound
from engine.runtime import Actor
from engine.store import Event, HumanTask, ImprovementRecord, Instance, ProcessDefinition

INBOX_PAGE = 50


def _inbox_order(task: HumanTask) -> tuple[bool, Any, Any]:
    return (task.due_at is None, task.due_at or task.created_at, task.created_at)


def inbox(
    session: Session, actor: Actor, instance_id: int | None = None, limit: int = INBOX_PAGE
) -> list[HumanTask]:
    """Open tasks of my roles that are unassigned or assigned to me, soonest due first.

    One indexed query per role (ix_human_task_inbox serves role + due order directly),
    merged here: an IN over several roles would sort every open task of them all."""
    found: dict[str, HumanTask] = {}
    for role in sorted(actor.roles):
        query = (
            select(HumanTask)
            .where(
                HumanTask.status == "open",
                HumanTask.role == role,
                or_(HumanTask.assignee.is_(None), HumanTask.assignee == actor.username),
            )
            .order_by(HumanTask.due_at.is_(None), HumanTask.due_at, HumanTask.created_at)
            .limit(limit)
        )
        if instance_id is not None:
            query = query.where(HumanTask.instance_id == instance_id)
        for task in session.scalars(query):
            found[task.id] = task
    return sorted(found.values(), key=_inbox_order)[:limit]


def task_dict(task: HumanTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "bpmn_id": task.bpmn_id,
        "name": task.name,
        "lane": task.role,
        "lane_name": task.lane,
        "process_id": task.process_id,
        "instance_id": task.instance_id,
        "assignee": task.assignee,
        "claimed_by": task.claimed_by,
        "label": task.label,
        "status": task.status,
        "created_at": task.created_at.isoformat(),
        "due_at": task.due_at.isoformat() if task.due_at else None,
        "completed_at": task.completed_at.isoformat() if task.completed_at else None,
        "completed_by": task.completed_by,
    }


@dataclass
class InstanceView:
    instance: Instance
    definition: ProcessDefinition
    record: ImprovementRecord | None
    open_tasks: list[HumanTask]
    done_tasks: list[HumanTask]
    events: list[Event]


def instance_view(session: Session, instance_id: int, with_events: bool = True) -> InstanceView:
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"no instance {instance_id}")
    tasks = list(
        session.scalars(
            select(HumanTask)
            .where(HumanTask.instance_id == instance_id)
            .order_by(HumanTask.created_at, HumanTask.id)
        ).unique()
    )
    events = (
        list(
            session.scalars(
                select(Event).where(Event.instance_id == instance_id).order_by(Event.seq)
            )
        )
        if with_events
        else []
    )
    return InstanceView(
        instance,
        instance.definition,
        records.for_instance(session, instance_id),
        [t for t in tasks if t.status == "open"],
        [t for t in tasks if t.status == "completed"],
        events,
    )


def instance_dict(view: InstanceView) -> dict[str, Any]:
    instance = view.instance
    return {
        "id": instance.id,
        "process_id": instance.process_id,
        "definition": {
            "id": view.definition.id,
            "version": view.definition.version,
            "content_hash": view.definition.content_hash,
        },
        "status": instance.status,
        "record_number": view.record.number if view.record else None,
        "record_status": view.record.status if view.record else None,
        "started_by": instance.started_by,
        "started_at": instance.started_at.isoformat(),
        "completed_at": instance.completed_at.isoformat() if instance.completed_at else None,
        "next_timer_at": instance.next_timer_at.isoformat() if instance.next_timer_at else None,
        "data": instance.data,
        "completed_elements": instance.completed_elements,
        "active_elements": instance.active_elements,
        "open_tasks": [task_dict(t) for t in view.open_tasks],
        "last_seq": instance.last_seq,
    }


def instances(
    session: Session, status: str | None = None, limit: int = 200
) -> list[tuple[Instance, ImprovementRecord | None]]:
    query = (
        select(Instance, ImprovementRecord)
        .outerjoin(ImprovementRecord, ImprovementRecord.instance_id == Instance.id)
        .order_by(Instance.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(Instance.status == status)
    return [(i, r) for i, r in session.execute(query).unique()]


def event_dicts(session: Session, instance_id: int) -> list[dict[str, Any]]:
    if session.get(Instance, instance_id) is None:
        raise NotFound(f"no instance {instance_id}")
    rows = session.scalars(
        select(Event).where(Event.instance_id == instance_id).order_by(Event.seq)
    )
    return [history.describe(e) for e in rows]
