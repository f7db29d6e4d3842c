"""User administration (Admin role only): list users, create one, edit one."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from engine import passwords
from engine.commands import users
from engine.errors import ValidationFailed
from engine.notifications.notices import INVALID_EMAIL
from web import backend, ui

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def _admins_only() -> Any:
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    backend().policy.require_administer(current_user.actor)
    return None


def _error_text(code: str) -> str:
    return {
        users.REQUIRED: _("This field is required."),
        users.INVALID_USERNAME: _(
            "Use 2 to 64 lowercase letters, digits, dots, hyphens or underscores."
        ),
        users.TAKEN: _("This username is taken."),
        passwords.TOO_SHORT: _(
            "The password needs at least %(n)d characters.", n=passwords.MIN_LENGTH
        ),
        passwords.SAME_AS_USERNAME: _("The password may not be the username."),
        users.TOO_LONG: _("The text is too long."),
        users.UNKNOWN_ROLE: _("Choose roles from the list."),
        users.OWN_ADMIN_ROLE: _("You cannot remove your own administrator role."),
        users.OWN_ACTIVE: _("You cannot deactivate yourself."),
        INVALID_EMAIL: _("Enter an e-mail address such as name@example.com."),
    }.get(code, code)


def _role_groups() -> list[tuple[str, list[Any]]]:
    """The pack's roles by the process whose lanes name them, then the system's."""
    book = backend().pack.roles
    groups: dict[str, list[Any]] = {}
    for role in book.lane_roles.values():
        groups.setdefault(role.process, []).append(role)
    named = [(ui.process_label(process), roles) for process, roles in groups.items()]
    return [*named, (_("System"), [r for r in book.all.values() if r.key not in book.lane_roles])]


def _posted() -> dict[str, Any]:
    return {
        "username": request.form.get("username", "").strip(),
        "display_name": request.form.get("display_name", ""),
        "roles": request.form.getlist("roles"),
        "active": request.form.get("active") == "on",
        "password": request.form.get("password", ""),
        "email": request.form.get("email", "").strip(),
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
            min_password=passwords.MIN_LENGTH,
        ),
        status,
    )


@bp.get("/users")
def user_list() -> Any:
    rows = backend().queries.users(current_user.actor)
    return render_template("admin_users.html", users=rows, all_roles=backend().pack.roles.all)


@bp.route("/users/new", methods=["GET", "POST"])
def user_new() -> Any:
    if request.method == "GET":
        return _render(
            {"username": "", "display_name": "", "roles": [], "active": True, "email": ""}
        )
    values = _posted()
    try:
        backend().runtime.create_user(current_user.actor, **values)
    except ValidationFailed as exc:
        return _render(values, errors=exc.details, status=422)
    flash(_("User %(name)s created.", name=values["username"]), "success")
    return redirect(url_for("admin.user_list"))


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id: int) -> Any:
    user = backend().queries.user(current_user.actor, user_id)
    stored = {
        "username": user.username,
        "display_name": user.display_name,
        "roles": list(user.roles),
        "active": user.active,
        "email": user.email or "",
    }
    if request.method == "GET":
        return _render(stored, user_id)
    values = {**_posted(), "username": stored["username"]}
    try:
        backend().runtime.update_user(
            current_user.actor,
            user_id,
            display_name=values["display_name"],
            roles=values["roles"],
            active=values["active"],
            password=values["password"] or None,
            email=values["email"],
        )
    except ValidationFailed as exc:
        return _render(values, user_id, errors=exc.details, status=422)
    flash(_("User %(name)s saved.", name=stored["username"]), "success")
    return redirect(url_for("admin.user_list"))
