"""Plain view objects the read side returns: no database session behind them, nothing
lazy to load, safe to hand to a template or to JSON."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar, cast

V = TypeVar("V")


@cache
def _field_names(cls: Any) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def view_of(cls: type[V], row: Any, **extra: Any) -> V:
    """A view of an ORM row (or any object) with the view's fields, by name."""
    names: tuple[str, ...] = _field_names(cast(Hashable, cls))
    values = {n: getattr(row, n) for n in names if n not in extra and hasattr(row, n)}
    return cls(**values, **extra)


@dataclass(frozen=True)
class TaskRow:
    id: str
    instance_id: int
    process_id: str
    bpmn_id: str
    name: str
    lane: str | None
    role: str | None
    assignee: str | None
    claimed_by: str | None
    label: str
    status: str
    created_at: datetime
    due_at: datetime | None
    completed_at: datetime | None
    completed_by: str | None

    @property
    def overdue(self) -> bool:
        due = self.due_at
        if due is None or self.status != "open":
            return False
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        return due < datetime.now(UTC)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "bpmn_id": self.bpmn_id,
            "name": self.name,
            "lane": self.role,
            "lane_name": self.lane,
            "process_id": self.process_id,
            "instance_id": self.instance_id,
            "assignee": self.assignee,
            "claimed_by": self.claimed_by,
            "label": self.label,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "completed_by": self.completed_by,
        }


@dataclass(frozen=True)
class DefinitionRow:
    id: int
    process_id: str
    name: str
    version: int
    content_hash: str
    filename: str
    called_processes: list[Any]
    deployed_at: datetime
    deployed_by: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "process_id": self.process_id,
            "name": self.name,
            "version": self.version,
            "content_hash": self.content_hash,
            "filename": self.filename,
            "called_processes": self.called_processes,
            "deployed_at": self.deployed_at.isoformat(),
            "deployed_by": self.deployed_by,
        }


@dataclass(frozen=True)
class InstanceRow:
    id: int
    process_id: str
    definition_id: int
    called_definitions: dict[str, Any]
    status: str
    last_seq: int
    data: dict[str, Any]
    completed_elements: list[Any]
    active_elements: list[Any]
    next_timer_at: datetime | None
    started_by: str | None
    started_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    parent_instance_id: int | None
    # why the worker could not move it on (engine.commands.timers), None: nothing to say
    incident: dict[str, Any] | None = None


@dataclass(frozen=True)
class RecordSummary:
    """The register's row of an instance (its content is in the instance data)."""

    id: int
    number: str
    instance_id: int
    status: str
    source: str | None
    reference: str | None
    description: str | None
    raised_by: str | None
    raised_on: datetime
    closed_on: datetime | None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UserRow:
    id: int
    username: str
    display_name: str
    roles: tuple[str, ...]
    active: bool
    locale: str | None
    created_at: datetime
    generation: int = 0  # of its sessions and tokens (engine.commands.users)
    email: str | None = None
    email_notifications: bool = True

    def has_role(self, role: str) -> bool:
        return role in self.roles
