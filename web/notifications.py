"""A person's notifications and their own notification settings; the header's counts
of open and overdue tasks. Also words the messages the worker sends, in the
recipient's language (`composer`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.errors import ValidationFailed
from engine.notifications.delivery import Composer, Message, Notice
from engine.notifications.notices import INVALID_EMAIL
from engine.settings import LOCALES
from web import backend

bp = Blueprint("notifications", __name__)


def notice_kind_label(kind: str) -> str:
    return {
        "task_arrived": _("New task"),
        "due_tomorrow": _("Due tomorrow"),
        "overdue": _("Overdue"),
    }.get(kind, kind)


def delivery_status_label(status: str) -> str:
    return {
        "pending": _("Waiting"),
        "sent": _("Sent"),
        "failed": _("Given up"),
        "off": _("Not sent"),
    }.get(status, status)


@bp.app_context_processor
def _header_counts() -> dict[str, Any]:
    """Open and overdue tasks of the current user and unread notices: two counts on
    indexed columns, per page."""
    if not current_user.is_authenticated:
        return {
            "notice_kind_label": notice_kind_label,
            "delivery_status_label": delivery_status_label,
        }
    runtime = backend().runtime
    queries = runtime.queries.notifications
    open_tasks, overdue = queries.task_counts(current_user.actor, runtime.clock())
    return {
        "my_open_tasks": open_tasks,
        "my_overdue_tasks": overdue,
        "my_unread_notices": queries.unread(current_user.actor),
        "notice_kind_label": notice_kind_label,
        "delivery_status_label": delivery_status_label,
    }


@bp.get("/notifications")
@login_required
def index() -> Any:
    notices = backend().queries.notifications.mine(current_user.actor)
    return render_template("notifications.html", notices=notices)


@bp.post("/notifications/read")
@login_required
def mark_read() -> Any:
    backend().runtime.mark_notifications_read(current_user.actor)
    flash(_("All notifications marked as read."), "success")
    return redirect(url_for("notifications.index"))


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def my_settings() -> Any:
    me = backend().queries.user_named(current_user.username)
    values: dict[str, Any] = {
        "email": (me.email if me else None) or "",
        "email_notifications": bool(me.email_notifications) if me else True,
    }
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = {
            "email": request.form.get("email", "").strip(),
            "email_notifications": request.form.get("email_notifications") == "on",
        }
        try:
            backend().runtime.set_my_email(
                current_user.actor, values["email"], bool(values["email_notifications"])
            )
        except ValidationFailed as exc:
            errors = {
                f: [
                    _("Enter an e-mail address such as name@example.com.")
                    if c == INVALID_EMAIL
                    else c
                    for c in codes
                ]
                for f, codes in exc.details.items()
            }
            status = 422
        else:
            flash(_("Your settings are saved."), "success")
            return redirect(url_for("notifications.my_settings"))
    return render_template("my_settings.html", values=values, errors=errors), status


def composer(app: Flask) -> Composer:
    """Messages in the recipient's language (their own choice, else the installation's),
    with the task named as the inbox names it."""
    from web import ui
    from web.ui import pick

    def compose(notice: Notice) -> Message:
        locale = notice.locale if notice.locale in LOCALES else app.config["CSI_LOCALE"]
        with app.app_context(), force_locale(locale):
            g.locale = locale
            name = notice.task_name
            if notice.bpmn_id and not ui.is_zh():
                forms = backend().runtime.forms
                if forms.has(notice.bpmn_id):
                    name = pick(forms.get(notice.bpmn_id).title) or name
            case = " · ".join(p for p in (notice.record_number, notice.task_label) if p)
            subject = {
                "task_arrived": _("New task: %(task)s", task=name),
                "due_tomorrow": _("Due tomorrow: %(task)s", task=name),
                "overdue": _("Overdue: %(task)s", task=name),
            }.get(notice.kind, name)
            if case:
                subject = f"{subject} ({case})"
            # The template alone, without the pages' context processors: no request
            # and no signed-in user stand behind a message.
            body = app.jinja_env.get_template("notify_email.txt").render(
                _=_,
                notice=notice,
                subject=subject,
                due=ui.fmt_datetime(notice.due_at) if notice.due_at else "",
                pack_title=pick(backend().pack.title),
            )
            return Message(subject, body)

    return compose
