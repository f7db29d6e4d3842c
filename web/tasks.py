"""The task page: context of the instance, then the form generated from the task's schema."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.errors import FieldError, ValidationFailed
from engine.queries.tasks import TaskPage
from web import backend, formdata, ui

bp = Blueprint("tasks", __name__, url_prefix="/tasks")


def _render(
    page: TaskPage,
    may_work: bool,
    values: dict[str, Any],
    errors: tuple[FieldError, ...] = (),
    status: int = 200,
) -> Any:
    task = page.task
    locale = ui.form_locale()
    texts = formdata.texts_by_path(errors, locale)
    fields = formdata.build_fields(page.schema, values, texts, locale)
    claimed_by_other = task.claimed_by not in (None, current_user.username)
    editable = may_work and task.status == "open" and not claimed_by_other
    other_errors = formdata.unplaced(texts, formdata.field_paths(fields))
    context = dict(page.context or {})
    shown_context = {k: v for k, v in context.items() if k not in page.hidden_context}
    # Side by side only when both sides are narrow; tables get the full width.
    wide = any(f.widget == "table" for f in fields) or any(
        ui.is_dict_list(v) or isinstance(v, dict) for v in shown_context.values()
    )
    return (
        render_template(
            "task.html",
            view=page,
            task=task,
            title=ui.pick(page.form.title, ui.task_title(task)),
            description=ui.pick(page.form.description),
            context=shown_context,
            notice=page.notice,
            fields=fields,
            errors=errors,
            other_errors=other_errors,
            editable=editable,
            may_work=may_work,
            claimed_by_other=claimed_by_other,
            stacked=wide or not shown_context,
        ),
        status,
    )


@bp.get("/<task_id>")
@login_required
def view(task_id: str) -> Any:
    page, may_work = backend().queries.task_page(current_user.actor, task_id)
    return _render(page, may_work, page.data)


@bp.post("/<task_id>")
@login_required
def complete(task_id: str) -> Any:
    page, may_work = backend().queries.task_page(current_user.actor, task_id)
    data = formdata.parse_form(page.schema, request.form, request.files)
    try:
        backend().runtime.complete_task(task_id, current_user.actor, data)
    except ValidationFailed as exc:
        # A file is posted again with the corrected form (a page cannot keep it).
        shown = {k: v for k, v in data.items() if not isinstance(v, formdata.Upload)}
        return _render(page, may_work, shown, formdata.errors_of(exc), status=422)
    flash(_("Task completed."), "success")
    return redirect(url_for("inbox.index"))
