"""A task with its form, for the form page and `GET /api/v1/tasks/<id>`: its concrete
schema (option lists resolved) and prefilled data, from the projection only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.forms.library import Form, FormLibrary
from engine.forms.options import resolve_schema
from engine.forms.prefill import prefill
from engine.pack import Pack
from engine.persistence.instances import check_task_id
from engine.persistence.lookups import lookups, option_source
from engine.persistence.models import HumanTask, Instance
from engine.queries.instances import record_of, task_row
from engine.queries.views import TaskRow
from engine.workflow import definitions, expressions


@dataclass(frozen=True)
class TaskPage:
    task: TaskRow
    form: Form
    schema: dict[str, Any]
    data: dict[str, Any]
    context: dict[str, Any]
    record_number: str | None
    # The form's notice when its condition holds: (its texts by locale, what it shows).
    notice: tuple[Mapping[str, str], Any] | None = None

    @property
    def hidden_context(self) -> frozenset[str]:
        """What the notice already says is not repeated beside the form."""
        if self.notice is None or self.form.notice is None:
            return frozenset()
        names = set(expressions.names_in(str(self.form.notice.get("when") or "True")))
        if self.form.notice.get("show"):
            names.add(str(self.form.notice["show"]))
        return frozenset(names)


def task_page(session: Session, pack: Pack, forms: FormLibrary, task_id: str) -> TaskPage:
    check_task_id(task_id)
    row = session.get(HumanTask, task_id)
    instance = session.get(Instance, row.instance_id) if row is not None else None
    if row is None or instance is None:
        raise NotFound(f"no task {task_id}", reason="no_task")
    form = definitions.forms_of_instance(
        session, forms, instance.definition_id, instance.called_definitions or {}
    ).get(row.bpmn_id)
    task_data = dict(row.data or {})
    schema = resolve_schema(form.schema, option_source(session, task_data))
    data = prefill(form, task_data, lookups(session), pack.prefills)
    context = {name: task_data[name] for name in form.context if name in task_data}
    record = record_of(session, row.instance_id)
    return TaskPage(
        task_row(row),
        form,
        schema,
        data,
        context,
        record.number if record else None,
        _notice(form, task_data),
    )


def _notice(form: Form, data: Mapping[str, Any]) -> tuple[Mapping[str, str], Any] | None:
    notice = form.notice
    if not notice:
        return None
    try:
        holds = bool(expressions.evaluate_over(str(notice.get("when") or "True"), data))
    except Exception:
        return None
    if not holds:
        return None
    shown = data.get(str(notice["show"])) if notice.get("show") else None
    return notice.get("text") or {}, shown
