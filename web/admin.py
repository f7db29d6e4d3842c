"""User administration (Admin role only): list users, create one, edit one."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine import users
from engine.errors import Forbidden, ValidationFailed
from engine.roles import ADMIN, ALL_ROLES, LANE_ROLES
from web import services, ui

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.record_once(lambda state: ui.install(state.app))


@bp.before_request
def _admins_only() -> Any:
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    if not current_user.has_role(ADMIN):
        raise Forbidden(_("User administration is for administrators."))
    return None


def _error_text(code: str) -> str:
    return {
        users.REQUIRED: _("This field is required."),
        users.INVALID_USERNAME: _(
            "Use 2 to 64 lowercase letters, digits, dots, hyphens or underscores."
        ),
        users.TAKEN: _("This username is taken."),
        users.TOO_SHORT: _("The password needs at least %(n)d characters.", n=users.MIN_PASSWORD),
        users.TOO_LONG: _("The text is too long."),
        users.UNKNOWN_ROLE: _("Choose roles from the list."),
        users.OWN_ADMIN_ROLE: _("You cannot remove your own administrator role."),
        users.OWN_ACTIVE: _("You cannot deactivate yourself."),
    }.get(code, code)


def _role_groups() -> list[tuple[str, list[Any]]]:
    lanes = list(LANE_ROLES.values())
    return [
        (_("Service improvement"), [r for r in lanes if r.process == "service_improvement"]),
        (_("Change management"), [r for r in lanes if r.process == "change_management"]),
        (_("System"), [r for r in ALL_ROLES.values() if r.key not in LANE_ROLES]),
    ]


def _posted() -> dict[str, Any]:
    return {
        "username": request.form.get("username", "").strip(),
        "display_name": request.form.get("display_name", ""),
        "roles": request.form.getlist("roles"),
        "active": request.form.get("active") == "on",
        "password": request.form.get("password", ""),
    }


def _render(
    values: dict[str, Any],
    user_id: int | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> Any:
    messages = {field: [_error_text(c) for c in codes] for field, codes in (errors or {}).items()}
    return (
        render_template(
            "admin_user.html",
            values=values,
            user_id=user_id,
            is_self=values.get("username") == current_user.username,
            errors=messages,
            role_groups=_role_groups(),
            min_password=users.MIN_PASSWORD,
        ),
        status,
    )


@bp.get("/users")
def user_list() -> Any:
    with services().db.sessions() as session:
        rows = users.list_users(session, current_user.actor)
        session.expunge_all()
    return render_template("admin_users.html", users=rows, all_roles=ALL_ROLES)


@bp.route("/users/new", methods=["GET", "POST"])
def user_new() -> Any:
    if request.method == "GET":
        return _render({"username": "", "display_name": "", "roles": [], "active": True})
    values = _posted()
    try:
        with services().db.transaction() as session:
            users.create_user(session, current_user.actor, **values)
    except ValidationFailed as exc:
        return _render(values, errors=exc.details, status=422)
    flash(_("User %(name)s created.", name=values["username"]), "success")
    return redirect(url_for("admin.user_list"))


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id: int) -> Any:
    with services().db.sessions() as session:
        user = users.get_user(session, current_user.actor, user_id)
        stored = {
            "username": user.username,
            "display_name": user.display_name,
            "roles": list(user.roles or []),
            "active": bool(user.active),
        }
    if request.method == "GET":
        return _render(stored, user_id)
    values = {**_posted(), "username": stored["username"]}
    try:
        with services().db.transaction() as session:
            users.update_user(
                session,
                current_user.actor,
                user_id,
                display_name=values["display_name"],
                roles=values["roles"],
                active=values["active"],
                password=values["password"] or None,
            )
    except ValidationFailed as exc:
        return _render(values, user_id, errors=exc.details, status=422)
    flash(_("User %(name)s saved.", name=stored["username"]), "success")
    return redirect(url_for("admin.user_list"))
