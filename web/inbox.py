"""The inbox: open tasks of my roles and mine, with claim / unclaim."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from engine import queries
from engine.store import ImprovementRecord
from web import services, ui

bp = Blueprint("inbox", __name__)
bp.record_once(lambda state: ui.install(state.app))


def record_numbers(session: Any, instance_ids: set[int]) -> dict[int, str]:
    if not instance_ids:
        return {}
    rows = session.execute(
        select(ImprovementRecord.instance_id, ImprovementRecord.number).where(
            ImprovementRecord.instance_id.in_(sorted(instance_ids))
        )
    )
    return {instance_id: number for instance_id, number in rows}


def _back() -> str:
    target = request.form.get("next") or request.args.get("next")
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("inbox.index")


@bp.get("/")
@login_required
def index() -> Any:
    actor = current_user.actor
    with services().db.sessions() as session:
        tasks = queries.inbox(session, actor)
        numbers = record_numbers(session, {t.instance_id for t in tasks})
        session.expunge_all()
    return render_template(
        "inbox.html",
        tasks=tasks,
        numbers=numbers,
        read_only=actor.read_only,
    )


@bp.post("/tasks/<task_id>/claim")
@login_required
def claim(task_id: str) -> Any:
    services().runtime.claim_task(task_id, current_user.actor)
    flash(_("Task claimed: nobody else can work on it until you release it."), "success")
    return redirect(_back())


@bp.post("/tasks/<task_id>/unclaim")
@login_required
def unclaim(task_id: str) -> Any:
    services().runtime.unclaim_task(task_id, current_user.actor)
    flash(_("Task released."), "success")
    return redirect(_back())
