"""The inbox's projection: one `human_task` row per user task that is or was READY.

A command opens a row for each task that became ready and cancels the rows of tasks
that went away without being completed (a boundary event, a gateway that moved on).
Each row holds what the inbox and the task page read, so neither ever loads
workflow state: who may do it (role from the lane, assignee from the diagram's
`assignee` expression), when it is due (`due_in`), a label naming which case it is
about (the process's `task_label`), and the instance variables its form reads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from SpiffWorkflow.task import Task
from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from engine.audit.chain import plain
from engine.forms.versions import VersionForms
from engine.notifications import outbox
from engine.persistence.database import Writes
from engine.persistence.instances import HUMAN_TASK, UPDATE_TASK
from engine.roles import RoleBook
from engine.workflow import durations, expressions, stepping
from engine.workflow.model import ProcessModel

log = logging.getLogger(__name__)

_CANCEL_TASKS = (
    update(HUMAN_TASK)
    .where(HUMAN_TASK.c.id.in_(bindparam("ids", expanding=True)), HUMAN_TASK.c.status == "open")
    .values(status="cancelled", completed_at=bindparam("at"))
)
# inline: no RETURNING of generated keys, which nothing reads (and a pipeline cannot yet)
_INSERT_TASKS = insert(HUMAN_TASK).inline()
# A row written anew after a migration keeps these as they were.
_KEPT_ON_MIGRATION = {"id", "instance_id", "claimed_by", "status", "created_at", "due_at"}


class TaskRows:
    """Builds the rows of one instance's tasks, with what the pack and diagrams declare."""

    def __init__(
        self, roles: RoleBook, forms: VersionForms, models: Mapping[str, ProcessModel]
    ) -> None:
        self.roles = roles
        self.forms = forms
        self.models = models

    def values(self, instance_id: int, task: Task, now: datetime) -> dict[str, Any]:
        bpmn_id = stepping.element(task) or task.task_spec.name
        assignee = stepping.assignee_of(task)
        reads = self.forms.inputs_of(bpmn_id)
        due_at = _due_at(now, stepping.properties(task).get("due_in"))
        return {
            "id": str(task.id),
            "instance_id": instance_id,
            "process_id": task.workflow.spec.name,
            "bpmn_id": bpmn_id,
            "name": task.task_spec.bpmn_name or task.task_spec.name,
            "lane": task.task_spec.lane,
            "role": self.roles.for_lane(task.task_spec.lane),
            "assignee": assignee,
            "claimed_by": None,
            "label": self.label(task, assignee),
            "status": "open",
            "created_at": now,
            "due_at": due_at,
            "completed_at": None,
            "completed_by": None,
            "data": plain({k: v for k, v in task.data.items() if k in reads}),
        }

    def label(self, task: Task, assignee: str | None) -> str:
        """Which case the task is about: its process's `task_label` over the task's data
        (one text or a list), then the person it is assigned to."""
        parts: list[str] = []
        model = self.models.get(task.workflow.spec.name)
        expression = model.task_label if model is not None else None
        if expression:
            try:
                value = expressions.evaluate_over(
                    expression, task.data, stepping.allowance_of(task)
                )
            except Exception as exc:  # a label must never stop a command
                log.info("task_label of %s: %s", task.workflow.spec.name, exc)
                value = None
            values = value if isinstance(value, list | tuple) else [value]
            parts += [str(v) for v in values if v not in (None, "")]
        if assignee:
            parts.append(assignee)
        return " · ".join(parts)[:250]


def sync_tasks(
    session: Session,
    rows: TaskRows,
    instance_id: int,
    was_open: set[str],
    seen: stepping.Observation,
    now: datetime,
    completed: str | None,
    *,
    migrated: bool = False,
    actor: str | None = None,
) -> None:
    """Open a row for each task that became ready, and tell its people (the outbox, in
    the same transaction); cancel the rows of tasks that went away without being
    completed. After a migration, a task that stays open may now be another element,
    with another name or in another lane: its row is written anew (claims stay)."""
    still_open = set(seen.open_tasks)
    gone = sorted(was_open - still_open - ({completed} if completed else set()))
    writes = Writes.of(session)
    if gone:
        writes.add(_CANCEL_TASKS, {"ids": gone, "at": now})
    fresh = [t for t in seen.ready if str(t.id) not in was_open]
    if fresh:
        opened = [rows.values(instance_id, t, now) for t in fresh]
        writes.add(_INSERT_TASKS, opened)
        for statement, params in outbox.task_arrived(session, opened, actor):
            writes.add(statement, params)
    if migrated:
        for task in seen.ready:
            if str(task.id) in was_open:
                values = rows.values(instance_id, task, now)
                changed = {k: v for k, v in values.items() if k not in _KEPT_ON_MIGRATION}
                writes.add(UPDATE_TASK, {"row_id": values["id"], **changed})


def _due_at(now: datetime, due_in: str | None) -> datetime | None:
    """When a task that opens at `now` is due. Deployment refuses a `due_in` out of
    bounds; one a version deployed before the bound holds leaves the task undated."""
    if not due_in:
        return None
    try:
        return durations.due(now, due_in)
    except durations.InvalidDuration as exc:
        log.warning("due_in %r: %s", due_in[:80], exc.message)
        return None
