"""Improvements: the list of instances, starting one, and one instance with its diagram."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select

from engine import queries, records, specs
from engine.errors import Forbidden, NotFound
from engine.roles import ADMIN, MODELER
from engine.store import HumanTask, Instance, ProcessDefinition
from web import services, ui

bp = Blueprint("instances", __name__, url_prefix="/instances")

STATUSES = ("running", "completed")


@bp.get("")
@login_required
def index() -> Any:
    status = request.args.get("status")
    status = status if status in STATUSES else None
    with services().db.sessions() as session:
        rows = queries.instances(session, status=status)
        open_counts = dict(
            session.execute(
                select(HumanTask.instance_id, func.count())
                .where(HumanTask.status == "open")
                .group_by(HumanTask.instance_id)
            ).all()
        )
        session.expunge_all()
    return render_template("instances.html", rows=rows, open_counts=open_counts, status=status)


def _require_starter() -> None:
    if not ui.can_start() or current_user.actor.read_only:
        raise Forbidden(_("Starting an improvement needs the improvement owner role."))


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    _require_starter()
    if request.method == "GET":
        return render_template("start.html")
    runtime = services().runtime
    actor = current_user.actor
    result = runtime.start_instance(actor, records.IMPROVEMENT_PROCESS)
    with services().db.sessions() as session:
        for task_id in result.open_tasks:
            row = session.get(HumanTask, task_id)
            if row is not None and runtime.may_work_on(row, actor):
                return redirect(url_for("tasks.view", task_id=row.id))
    return redirect(url_for("instances.show", instance_id=result.instance_id))


@bp.get("/<int:instance_id>")
@login_required
def show(instance_id: int) -> Any:
    runtime = services().runtime
    actor = current_user.actor
    with services().db.sessions() as session:
        view = queries.instance_view(session, instance_id)
        names = ui.instance_element_names(session, view.instance)
        newest = specs.latest(session, view.instance.process_id)
        session.expunge_all()
    # A modeler may move a running instance onto a newer version of its diagram.
    migrate_to = (
        newest.version
        if view.instance.status == "running"
        and newest.version > view.definition.version
        and (MODELER in actor.roles or ADMIN in actor.roles)
        else None
    )
    instance = view.instance
    main_data, other_data = ui.split_instance_data(dict(instance.data or {}))
    active = [(e, ui.element_label(e, names.get(e))) for e in instance.active_elements or []]
    workable = {
        t.id for t in view.open_tasks if runtime.may_work_on(t, actor) and not actor.read_only
    }
    return render_template(
        "instance.html",
        view=view,
        instance=instance,
        record=view.record,
        active=active,
        workable=workable,
        main_data=main_data,
        other_data=other_data,
        events=view.events,
        names=names,
        migrate_to=migrate_to,
    )


@bp.post("/<int:instance_id>/migrate")
@login_required
def migrate(instance_id: int) -> Any:
    version = request.form.get("version", type=int)
    services().runtime.migrate_instance(instance_id, current_user.actor, version)
    with services().db.sessions() as session:
        now_on = queries.instance_view(session, instance_id, with_events=False).definition
        flash(_("The instance now runs on version %(version)s.", version=now_on.version), "success")
    return redirect(url_for("instances.show", instance_id=instance_id))


@bp.get("/<int:instance_id>/diagram.bpmn")
@login_required
def diagram(instance_id: int) -> Any:
    """The instance's diagram; `?definition=<id>` another version of its process (the
    audit console shows each step on the version the instance ran on then)."""
    with services().db.sessions() as session:
        instance = session.get(Instance, instance_id)
        if instance is None:
            raise NotFound(f"no instance {instance_id}")
        definition = instance.definition
        asked = request.args.get("definition", type=int)
        if asked is not None and asked != definition.id:
            other = session.get(ProcessDefinition, asked)
            if other is None or other.process_id != instance.process_id:
                raise NotFound(f"no version {asked} of {instance.process_id}")
            definition = other
        xml = definition.bpmn_xml
    return Response(
        xml, mimetype="application/xml", headers={"Cache-Control": "private, max-age=300"}
    )
