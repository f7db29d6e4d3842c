"""The task page: context of the instance, then the form generated from the task's schema."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.errors import Forbidden, ValidationFailed
from engine.runtime import TaskView
from web import formdata, services, ui

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


def _view_or_403(task_id: str) -> tuple[TaskView, bool]:
    """The task and whether the current user may complete it; 403 for someone who may
    neither work on it nor read everything."""
    runtime = services().runtime
    view = runtime.task_view(task_id)
    actor = current_user.actor
    may_work = runtime.may_work_on(view.task, actor) and not actor.read_only
    if not may_work and not ui.can_read_all():
        raise Forbidden(_("This task belongs to another role or person."))
    return view, may_work


def _render(
    view: TaskView,
    may_work: bool,
    values: dict[str, Any],
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> Any:
    task = view.task
    locale = ui.form_locale()
    fields = formdata.build_fields(view.schema, values, errors, locale)
    claimed_by_other = task.claimed_by not in (None, current_user.username)
    editable = may_work and task.status == "open" and not claimed_by_other
    other_errors: list[tuple[str, list[str]]] = []
    if errors:
        known = formdata.field_paths(fields)
        other_errors = [
            (path or _("Form"), [formdata.error_text(m) for m in messages])
            for path, messages in errors.items()
            if path not in known
        ]
    context = dict(view.context or {})
    rejected = context.get("decision") == "reject" and bool(context.get("comment"))
    # Side by side only when both sides are narrow; tables get the full width.
    wide = any(f.widget == "table" for f in fields) or any(
        ui.is_dict_list(v) or isinstance(v, dict) for v in context.values()
    )
    return (
        render_template(
            "task.html",
            view=view,
            task=task,
            title=ui.pick(view.form.title, ui.task_title(task)),
            description=ui.pick(view.form.description),
            context=context,
            rejected=rejected,
            fields=fields,
            errors=errors or {},
            other_errors=other_errors,
            editable=editable,
            may_work=may_work,
            claimed_by_other=claimed_by_other,
            stacked=wide or not context,
        ),
        status,
    )


@bp.get("/<task_id>")
@login_required
def view(task_id: str) -> Any:
    task_view, may_work = _view_or_403(task_id)
    return _render(task_view, may_work, task_view.data)


@bp.post("/<task_id>")
@login_required
def complete(task_id: str) -> Any:
    task_view, may_work = _view_or_403(task_id)
    data = formdata.parse_form(task_view.schema, request.form)
    try:
        services().runtime.complete_task(task_id, current_user.actor, data)
    except ValidationFailed as exc:
        details = exc.details if isinstance(exc.details, dict) else {"": [exc.message]}
        return _render(task_view, may_work, data, details, status=422)
    flash(_("Task completed."), "success")
    return redirect(url_for("inbox.index"))
