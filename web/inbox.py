"""The inbox: open tasks of my roles and mine, with claim / unclaim."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request
from flask_babel import gettext as _
from flask_login import current_user, login_required

from web import backend
from web.redirects import safe_next

bp = Blueprint("inbox", __name__)


def _back() -> str:
    return safe_next(request.form.get("next") or request.args.get("next"))


@bp.get("/")
@login_required
def index() -> Any:
    actor = current_user.actor
    queries = backend().queries
    tasks = queries.inbox(actor)
    numbers = queries.record_numbers({t.instance_id for t in tasks})
    return render_template("inbox.html", tasks=tasks, numbers=numbers, read_only=actor.read_only)


@bp.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str) -> Any:
    backend().runtime.claim_task(task_id, current_user.actor)
    flash(_("Task claimed: nobody else can work on it until you release it."), "success")
    return redirect(_back())


@bp.post("/tasks/<task_id>/unclaim")
@login_required
def unclaim(task_id: str) -> Any:
    backend().runtime.unclaim_task(task_id, current_user.actor)
    flash(_("Task released."), "success")
    return redirect(_back())
