"""Periodic review schedules (2.5.1 定期进行服务改进评审) and the notifications that
could not be delivered: administrators only, by the access policy."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine.access import Actor
from engine.commands import schedules
from engine.errors import ValidationFailed
from engine.recurrence import NAMED
from web import backend, ui

bp = Blueprint("schedules", __name__, url_prefix="/admin")


@bp.before_request
def _admins_only() -> Any:
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    backend().policy.require_administer(current_user.actor)
    return None


def _error_text(code: str) -> str:
    return {
        schedules.REQUIRED: _("This field is required."),
        schedules.TOO_LONG: _("The text is too long."),
        schedules.INVALID_PERIOD: _(
            "Give monthly, quarterly, yearly or a repeating interval such as "
            "R/2027-01-01T00:00:00+08:00/P3M (at least a day long)."
        ),
        schedules.UNKNOWN_PROCESS: _("Choose a process from the list."),
        schedules.UNKNOWN_USER: _("Choose active users from the list."),
        schedules.OWNER_MAY_NOT_START: _("The owner must be a user who may start this process."),
    }.get(code, code)


def _processes() -> list[tuple[str, str]]:
    models = backend().queries.process_models()
    startable = {m.process_id for m in backend().queries.startable(current_user.actor, models)}
    return [(pid, ui.process_label(pid)) for pid in models if pid in startable]


def _people() -> tuple[list[Any], list[Any]]:
    """(who may own a review: users who may start the main process; everyone active)."""
    users = [u for u in backend().queries.users(current_user.actor) if u.active]
    model = backend().queries.process_models().get(backend().pack.main_process or "")
    lanes = model.starter_lanes if model is not None else ()
    policy = backend().policy
    owners = [u for u in users if policy.may_start(Actor(u.username, frozenset(u.roles)), lanes)]
    return owners, users


def _posted() -> dict[str, Any]:
    return {
        "name": request.form.get("name", ""),
        "process_id": request.form.get("process_id", ""),
        "period": request.form.get("period", ""),
        "owner": request.form.get("owner", ""),
        "process_owners": request.form.getlist("process_owners"),
        "description": request.form.get("description", ""),
        "active": request.form.get("active") == "on",
    }


def _render(
    values: dict[str, Any],
    schedule_id: int | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> Any:
    messages = {
        field: [_error_text(codes[0])] + [c for c in codes[1:]]
        for field, codes in (errors or {}).items()
    }
    owners, people = _people()
    return (
        render_template(
            "admin_schedule.html",
            values=values,
            schedule_id=schedule_id,
            errors=messages,
            processes=_processes(),
            owners=owners,
            people=people,
            named=list(NAMED),
        ),
        status,
    )


@bp.get("/schedules")
def schedule_list() -> Any:
    queries = backend().queries.notifications
    return render_template("admin_schedules.html", schedules=queries.schedules(current_user.actor))


@bp.route("/schedules/new", methods=["GET", "POST"])
def schedule_new() -> Any:
    if request.method == "GET":
        return _render(
            {
                "name": "",
                "process_id": backend().pack.main_process or "",
                "period": "quarterly",
                "owner": "",
                "process_owners": [],
                "description": "",
                "active": True,
            }
        )
    values = _posted()
    try:
        backend().runtime.save_schedule(current_user.actor, None, values)
    except ValidationFailed as exc:
        return _render(values, errors=exc.details, status=422)
    flash(_("Schedule %(name)s saved.", name=values["name"]), "success")
    return redirect(url_for("schedules.schedule_list"))


@bp.route("/schedules/<int:schedule_id>", methods=["GET", "POST"])
def schedule_edit(schedule_id: int) -> Any:
    row = backend().queries.notifications.schedule(current_user.actor, schedule_id)
    if request.method == "GET":
        stored = {
            "name": row.name,
            "process_id": row.process_id,
            "period": row.period,
            "owner": row.owner,
            "process_owners": list(row.process_owners),
            "description": row.description,
            "active": row.active,
        }
        return _render(stored, schedule_id)
    values = _posted()
    try:
        backend().runtime.save_schedule(current_user.actor, schedule_id, values)
    except ValidationFailed as exc:
        return _render(values, schedule_id, errors=exc.details, status=422)
    flash(_("Schedule %(name)s saved.", name=values["name"]), "success")
    return redirect(url_for("schedules.schedule_list"))


@bp.post("/schedules/<int:schedule_id>/active")
def schedule_active(schedule_id: int) -> Any:
    active = request.form.get("active") == "1"
    backend().runtime.set_schedule_active(current_user.actor, schedule_id, active)
    flash(_("Schedule activated.") if active else _("Schedule deactivated."), "success")
    return redirect(url_for("schedules.schedule_list"))


@bp.get("/notifications")
def delivery_failures() -> Any:
    queries = backend().queries.notifications
    return render_template(
        "admin_notifications.html",
        failures=queries.failures(current_user.actor),
        retrying=queries.retrying(current_user.actor),
    )
